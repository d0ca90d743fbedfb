#!/usr/bin/env bash
# Make sure a Docker daemon answers, starting one when none does (and saying so).
# Used by scripts/images.sh and by anything else that needs containers (kind e2e).
#
#   bash scripts/dockerd.sh          # idempotent; exits 0 when `docker info` works
#
# - Installs Debian's docker.io when dockerd is missing (root only).
# - Starts `dockerd` in the background (no systemd here), logging to $DOCKERD_LOG
#   (default /var/log/scalable-dockerd.log), data in $DOCKER_DATA_ROOT (default dockerd's).
# - On machines whose capability bounding set lacks CAP_SYS_RESOURCE (some VMs: even root
#   cannot hold it), `--privileged` containers fail; the daemon then gets the runc wrapper
#   scripts/runtime/runc-nosysres as its default runtime. Elsewhere plain runc is used.
# - A daemon someone else started is left exactly as it is.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if docker info >/dev/null 2>&1; then exit 0; fi

if ! command -v dockerd >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "dockerd.sh: no Docker daemon and no dockerd; run: sudo apt-get install -y docker.io" >&2
    exit 1
  fi
  echo "dockerd.sh: installing Debian's docker.io" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io jq >/dev/null
fi
if [ "$(id -u)" != 0 ]; then
  echo "dockerd.sh: no Docker daemon answers and starting one needs root" >&2
  exit 1
fi

args=()
[ -n "${DOCKER_DATA_ROOT:-}" ] && args+=(--data-root "$DOCKER_DATA_ROOT")
capbnd="$(awk '/^CapBnd:/ {print $2}' /proc/self/status)"
# CAP_SYS_RESOURCE is capability 24.
if (((0x$capbnd >> 24 & 1) == 0)); then
  command -v jq >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null
  echo "dockerd.sh: CAP_SYS_RESOURCE is not in the bounding set; default runtime: runc-nosysres" >&2
  args+=(--add-runtime "nosysres-runc=$here/runtime/runc-nosysres" --default-runtime nosysres-runc)
fi

# A dockerd that died leaves its pid file behind, and a new one refuses to start over it.
pidfile=/var/run/docker.pid
if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "dockerd.sh: removing the stale $pidfile (pid $(cat "$pidfile") is not running)" >&2
  rm -f "$pidfile"
fi

log="${DOCKERD_LOG:-/var/log/scalable-dockerd.log}"
echo "dockerd.sh: starting dockerd (log: $log)" >&2
nohup setsid dockerd "${args[@]}" >>"$log" 2>&1 </dev/null &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    echo "dockerd.sh: dockerd is up ($(docker info --format '{{.ServerVersion}} {{.Driver}}'))" >&2
    exit 0
  fi
  sleep 1
done
echo "dockerd.sh: dockerd did not answer within 60 s; last lines of $log:" >&2
tail -20 "$log" >&2
exit 1
