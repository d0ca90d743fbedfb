#!/bin/sh
# containerd's ExecStartPre in the node: where the container's capability bounding set lacks
# CAP_SYS_RESOURCE (some VMs: even root cannot hold it, and dockerd then runs kind's
# --privileged nodes through a runc wrapper that drops it), containerd must not raise pods'
# oom_score_adj. Elsewhere nothing changes.
capbnd="$(awk '/^CapBnd:/ {print $2}' /proc/self/status)"
if [ $(( (0x$capbnd >> 24) & 1 )) -eq 0 ]; then
  sed -i 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' /etc/containerd/config.toml
fi
