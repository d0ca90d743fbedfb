#!/usr/bin/env bash
# Assembles a kind node image offline, the way kind's own builder does (pkg/build/nodeimage),
# from locally built binaries instead of pulled images:
#   1. a base image: kind's images/base (its files from the kind module zip) on a Debian trixie
#      base, with our containerd 2.x + crictl and Debian's runc and CNI plugins;
#   2. component images (kube-apiserver, ..., etcd, coredns, pause) and the add-on images
#      (flannel, kube-router, local-path-provisioner, a helper), each FROM the Debian
#      base with its binary copied in, tagged as kubeadm and the manifests name them;
#   3. the node: the base plus the Kubernetes binaries in /usr/bin, /kind/version, the add-on
#      manifests kind applies (/kind/manifests/default-{cni,storage}.yaml), every image
#      imported into the node's containerd and pinned, committed with kind's entrypoint.
# Called by test/e2e/support/node-image.ts, which passes everything in the environment below
# and skips the call when the image with that content key already exists.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${BASE:?}" "${KIND_BIN:?}" "${K8S_BIN:?}" "${KIND_FILES:?}" "${MANIFESTS:?}" "${OUT:?}"
: "${K8S_VERSION:?}" "${ETCD_TAG:?}" "${COREDNS_VERSION:?}" "${PAUSE_VERSION:?}"
: "${FLANNEL_IMAGE:?}" "${KUBE_ROUTER_IMAGE:?}" "${LOCAL_PATH_IMAGE:?}" "${HELPER_IMAGE:?}"
key="${OUT##*:}"
log() { echo "node-image: $*" >&2; }
t0=$SECONDS

ctx="$(mktemp -d /var/tmp/scalable-kind-node.XXXXXX)"
cid=""
# Runs a command with its stderr shown only on failure (the classic builder's deprecation
# notice, containerd's cgroup v1 notice on every ctr call).
quiet() {
  "$@" 2>"$ctx/quiet.err" || {
    cat "$ctx/quiet.err" >&2
    return 1
  }
}
dbuild() { quiet docker build "$@"; }
cleanup() {
  [ -n "$cid" ] && docker rm -f -v "$cid" >/dev/null 2>&1 || true
  rm -rf "$ctx"
}
trap cleanup EXIT

# --- 1. base ---------------------------------------------------------------------------------
base_tag="scalable-e2e/kind-base:$key"
mkdir -p "$ctx/base/bin"
cp -r "$KIND_FILES" "$ctx/base/files"
chmod -R u+w "$ctx/base/files"
cp "$KIND_BIN"/{containerd,ctr,containerd-shim-runc-v2,crictl} "$ctx/base/bin/"
cp "$here/restrict-oom-score-adj.sh" "$ctx/base/"
# Rootless fuse-overlayfs is not shipped; sandbox image = kubeadm's pause.
python3 - "$ctx/base/files/etc/containerd/config.toml" "$PAUSE_VERSION" <<'PY'
import re, sys
path, pause = sys.argv[1], sys.argv[2]
text = open(path).read()
text = re.sub(r'\[proxy_plugins\][\s\S]*?address = "[^"]*"\n', '', text)
text = re.sub(r'sandbox_image = "[^"]*"', f'sandbox_image = "registry.k8s.io/pause:{pause}"', text)
open(path, 'w').write(text)
PY
rm -f "$ctx/base/files/etc/systemd/system/containerd-fuse-overlayfs.service"
cat >"$ctx/base/Dockerfile" <<'DOCKERFILE'
ARG BASE
FROM $BASE
# kind's package list (less fuse-overlayfs, nfs and iscsi), plus Debian's runc and CNI plugins;
# the packages first, kind's files after, so dpkg never meets a changed conffile.
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      systemd conntrack iptables nftables iproute2 ethtool util-linux mount kmod \
      libseccomp2 pigz e2fsprogs bash ca-certificates curl jq procps \
      runc containernetworking-plugins >/dev/null \
    && rm -rf /var/lib/apt/lists/* \
    && find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete \
    && rm -f /lib/systemd/system/multi-user.target.wants/* \
    && rm -f /etc/systemd/system/*.wants/* \
    && rm -f /lib/systemd/system/local-fs.target.wants/* \
    && rm -f /lib/systemd/system/sockets.target.wants/*udev* \
    && rm -f /lib/systemd/system/sockets.target.wants/*initctl* \
    && rm -f /lib/systemd/system/basic.target.wants/* \
    && echo "ReadKMsg=no" >> /etc/systemd/journald.conf \
    && ln -sf /usr/lib/systemd/systemd /sbin/init
COPY files/ /
COPY bin/ /usr/local/bin/
COPY restrict-oom-score-adj.sh /kind/bin/
RUN chmod 755 /usr/local/bin/* /kind /kind/bin /kind/bin/* \
    && mkdir -p /opt/cni/bin /etc/kubernetes/manifests /etc/systemd/system/containerd.service.d \
    && cp /usr/lib/cni/* /opt/cni/bin/ \
    && printf '[Service]\nExecStartPre=/kind/bin/restrict-oom-score-adj.sh\n' \
         > /etc/systemd/system/containerd.service.d/10-restrict-oom-score-adj.conf \
    && ctr oci spec \
        | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
        | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json \
    && containerd --version && runc --version | head -1 \
    && systemctl enable kubelet.service containerd.service undo-mount-hacks.service \
    && systemctl mask systemd-binfmt.service
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]
DOCKERFILE
log "base $base_tag (FROM $BASE)"
dbuild -q --build-arg "BASE=$BASE" -t "$base_tag" "$ctx/base" >/dev/null

# --- 2. component and add-on images ----------------------------------------------------------
# A Debian with the network tools kube-proxy, flannel and kube-router call (iptables-nft, nft,
# ipset, conntrack, ip), shared by the three.
netbase="scalable-e2e/netbase:$key"
printf 'ARG BASE\nFROM $BASE\nRUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iptables nftables conntrack ipset iproute2 kmod >/dev/null && rm -rf /var/lib/apt/lists/*\n' |
  dbuild -q --build-arg "BASE=$BASE" -t "$netbase" - >/dev/null

# image <tag> <from> <binary source> <path in image> [entrypoint]
image() {
  local tag="$1" from="$2" src="$3" dest="$4" d
  d="$(mktemp -d "$ctx/img.XXXXXX")"
  cp "$src" "$d/bin"
  {
    echo "FROM $from"
    echo "COPY bin $dest"
    [ -n "${5:-}" ] && echo "ENTRYPOINT [\"$dest\"]"
    true
  } >"$d/Dockerfile"
  dbuild -q -t "$tag" "$d" >/dev/null
  images+=("$tag")
}
images=()
reg=registry.k8s.io
for c in kube-apiserver kube-controller-manager kube-scheduler; do
  image "$reg/$c:$K8S_VERSION" "$BASE" "$K8S_BIN/$c" "/usr/local/bin/$c"
done
image "$reg/kube-proxy:$K8S_VERSION" "$netbase" "$K8S_BIN/kube-proxy" /usr/local/bin/kube-proxy
image "$reg/etcd:$ETCD_TAG" "$BASE" "$K8S_BIN/etcd" /usr/local/bin/etcd
image "$reg/coredns/coredns:$COREDNS_VERSION" "$BASE" "$KIND_BIN/coredns" /coredns entrypoint
image "$reg/pause:$PAUSE_VERSION" scratch "$KIND_BIN/pause" /pause entrypoint
image "$KUBE_ROUTER_IMAGE" "$netbase" "$KIND_BIN/kube-router" /usr/local/bin/kube-router entrypoint
image "$LOCAL_PATH_IMAGE" "$BASE" "$KIND_BIN/local-path-provisioner" /usr/local/bin/local-path-provisioner entrypoint
# flannel: flanneld where upstream's image has it, and the CNI plugin the initContainer copies.
d="$(mktemp -d "$ctx/img.XXXXXX")"
cp "$KIND_BIN/flanneld" "$KIND_BIN/flannel" "$d/"
printf 'FROM %s\nCOPY flanneld /opt/bin/flanneld\nCOPY flannel /flannel\nENTRYPOINT ["/opt/bin/flanneld"]\n' "$netbase" >"$d/Dockerfile"
dbuild -q -t "$FLANNEL_IMAGE" "$d" >/dev/null
images+=("$FLANNEL_IMAGE")
docker tag "$BASE" "$HELPER_IMAGE"
images+=("$HELPER_IMAGE")
log "images built ($((SECONDS - t0)) s)"

# --- 3. node ---------------------------------------------------------------------------------
cid="$(docker run -d --entrypoint=sleep --security-opt seccomp=unconfined "$base_tag" infinity)"
for b in kubelet kubeadm kubectl; do docker cp "$K8S_BIN/$b" "$cid:/usr/bin/$b"; done
docker exec "$cid" sh -c 'chown root:root /usr/bin/kube* && chmod 755 /usr/bin/kube* && mkdir -p /kind/manifests'
docker exec "$cid" sh -c "printf %s '$K8S_VERSION' > /kind/version"
docker cp "$MANIFESTS/default-cni.yaml" "$cid:/kind/manifests/default-cni.yaml"
docker cp "$MANIFESTS/default-storage.yaml" "$cid:/kind/manifests/default-storage.yaml"
got="$(docker exec "$cid" kubeadm version -o short)"
[ "$got" = "$K8S_VERSION" ] || { log "kubeadm reports $got, expected $K8S_VERSION"; exit 1; }
# Every image kubeadm will ask for must be there (etcd comes from the cluster config's tag).
for want in $(docker exec "$cid" kubeadm config images list --kubernetes-version "$K8S_VERSION" | grep -v /etcd:); do
  printf '%s\n' "${images[@]}" | grep -qx "$want" || { log "kubeadm wants $want, not built"; exit 1; }
done

docker exec "$cid" bash -c 'nohup containerd >/tmp/containerd.log 2>&1 &'
for _ in $(seq 1 60); do docker exec "$cid" ctr version >/dev/null 2>&1 && break; sleep 1; done
docker save "${images[@]}" |
  quiet docker exec -i "$cid" ctr -n k8s.io images import --all-platforms --no-unpack --digests - >/dev/null
for i in "${images[@]}"; do
  full="$i"
  [[ "$i" == */*/* || "$i" == registry.k8s.io/* ]] || full="docker.io/$i"
  quiet docker exec "$cid" ctr -n k8s.io images label "$full" io.cri-containerd.pinned=pinned >/dev/null
done
docker exec "$cid" bash -c 'pkill containerd; for _ in $(seq 1 30); do pgrep containerd >/dev/null || exit 0; sleep 1; done'
docker commit \
  --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' \
  --change 'ENV HTTP_PROXY="" HTTPS_PROXY="" NO_PROXY=""' \
  "$cid" "$OUT" >/dev/null
log "built $OUT in $((SECONDS - t0)) s"
