#!/usr/bin/env bash
# `npm run images`: build every image the operator runs, one per images/<name>/Dockerfile,
# tagged <prefix>/<name>:<appVersion> (appVersion from charts/scalable-operator/Chart.yaml).
#
# Build context: the repository root for every image (docker build -f images/<name>/Dockerfile .);
# .dockerignore keeps it to what the operator image copies (package files, operator/, sdk/).
#
# Build args passed to every Dockerfile:
#   BASE       the Debian trixie base. debian:trixie-slim when it is here or can be pulled;
#              otherwise a minbase trixie built once with debootstrap from the Debian mirror
#              apt already uses and imported as scalable-local/debian:trixie.
#   NODE_BASE  <prefix>/node:<appVersion>, the Node 22 runtime (built first; images whose
#              Dockerfile names NODE_BASE are built after it).
#
# Environment:
#   SCALABLE_IMAGE_PREFIX  default ghcr.io/scalable-dev
#   SCALABLE_IMAGE_BASE    use this base and skip the lookup above
#   SCALABLE_IMAGES        space-separated subset of image names to build (dependencies are
#                          not added: build node first yourself)
# Layers are cached by the Docker daemon between runs (the classic builder's cache); the
# base is built only when its local tag is missing. The Docker daemon is started when none
# answers (scripts/dockerd.sh says so).
set -euo pipefail
cd "$(dirname "$0")/.."

prefix="${SCALABLE_IMAGE_PREFIX:-ghcr.io/scalable-dev}"
version="$(sed -n "s/^appVersion: *[\"']\{0,1\}\([^\"']*\)[\"']\{0,1\} *\$/\1/p" charts/scalable-operator/Chart.yaml)"
[ -n "$version" ] || { echo "images: no appVersion in charts/scalable-operator/Chart.yaml" >&2; exit 1; }
LOCAL_BASE=scalable-local/debian:trixie

bash scripts/dockerd.sh

log() { echo "images: $*" >&2; }

# The mirror apt uses on this machine (deb822 .sources or one-line sources.list).
debian_mirror() {
  local uri
  uri="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2}' | grep -v security | head -1 || true)"
  [ -n "$uri" ] || uri="$(grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | grep -v security | awk '{print $2}' | head -1 || true)"
  echo "${uri:-http://deb.debian.org/debian}"
}

# A trixie root filesystem like debian:trixie-slim (no docs, man pages or locales; apt keeps
# no lists or archives in images), imported as $LOCAL_BASE.
build_local_base() {
  command -v debootstrap >/dev/null || {
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  local mirror root start
  mirror="$(debian_mirror)"
  root="$(mktemp -d /var/tmp/scalable-trixie.XXXXXX)"
  start=$SECONDS
  log "building $LOCAL_BASE with debootstrap --variant=minbase trixie from $mirror"
  debootstrap --variant=minbase trixie "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -20 "$root.log" >&2
    exit 1
  }
  local security="${mirror%/debian}/debian-security"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $mirror
Suites: trixie trixie-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: trixie-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
CFG
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
  echo 'APT::Install-Recommends "false";' >"$root/etc/apt/apt.conf.d/docker-no-recommends"
  find "$root/usr/share/doc" -mindepth 2 ! -name copyright -delete 2>/dev/null || true
  rm -rf "$root"/usr/share/{man,info,locale,lintian}/* "$root"/var/lib/apt/lists/* \
    "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/log/* \
    "$root"/tmp/* "$root"/var/tmp/*
  : >"$root/etc/machine-id"
  tar --numeric-owner -C "$root" -c . |
    docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["bash"]' \
      --message "debootstrap --variant=minbase trixie $mirror" - "$LOCAL_BASE" >/dev/null
  rm -rf "$root" "$root.log"
  log "built $LOCAL_BASE in $((SECONDS - start)) s"
}

resolve_base() {
  if [ -n "${SCALABLE_IMAGE_BASE:-}" ]; then
    echo "$SCALABLE_IMAGE_BASE"
  elif docker image inspect debian:trixie-slim >/dev/null 2>&1; then
    echo debian:trixie-slim
  elif docker image inspect "$LOCAL_BASE" >/dev/null 2>&1; then
    echo "$LOCAL_BASE"
  elif timeout 30 docker pull -q debian:trixie-slim >/dev/null 2>&1; then
    echo debian:trixie-slim
  else
    log "debian:trixie-slim cannot be pulled (no registry reachable)"
    build_local_base
    echo "$LOCAL_BASE"
  fi
}

base="$(resolve_base)"
log "base $base; tags $prefix/<name>:$version"
node_base="$prefix/node:$version"
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
# Certificates this machine adds to its trust store (e.g. a TLS-inspecting proxy in front of
# the npm registry): the build stages that download from the registry need them too.
extra_ca="$(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true)"

# Build order: images that name NODE_BASE after node; otherwise alphabetical.
all=()
for f in images/*/Dockerfile; do all+=("$(basename "$(dirname "$f")")"); done
wanted=("${all[@]}")
[ -n "${SCALABLE_IMAGES:-}" ] && read -r -a wanted <<<"$SCALABLE_IMAGES"
ordered=()
for n in "${wanted[@]}"; do [ "$n" = node ] && ordered+=(node); done
for n in "${wanted[@]}"; do
  [ "$n" = node ] && continue
  grep -q NODE_BASE "images/$n/Dockerfile" || ordered+=("$n")
done
for n in "${wanted[@]}"; do
  [ "$n" = node ] && continue
  grep -q NODE_BASE "images/$n/Dockerfile" && ordered+=("$n")
done

total=$SECONDS
for name in "${ordered[@]}"; do
  [ -f "images/$name/Dockerfile" ] || { log "no images/$name/Dockerfile"; exit 1; }
  tags=(-t "$prefix/$name:$version")
  # An image for one Postgres major is also tagged <major>-<appVersion>: the operator's
  # default names postgres-patroni:{version}-<appVersion> (operator/api/images.ts).
  major="$(sed -n 's/^ARG PG_MAJOR=\([0-9]*\)$/\1/p' "images/$name/Dockerfile")"
  [ -n "$major" ] && tags+=(-t "$prefix/$name:$major-$version")
  start=$SECONDS
  log "building $prefix/$name:$version"
  nice -n 10 docker build -q -f "images/$name/Dockerfile" \
    --build-arg "BASE=$base" --build-arg "NODE_BASE=$node_base" --build-arg "VERSION=$version" \
    --build-arg "EXTRA_CA_CERTS=$extra_ca" \
    --label "org.opencontainers.image.revision=$revision" \
    "${tags[@]}" . 2> >(grep -v -e 'legacy builder is deprecated' -e 'buildx component' -e 'docs.docker.com/go/buildx' -e '^\s*$' >&2) >/dev/null
  size="$(docker image inspect -f '{{.Size}}' "$prefix/$name:$version")"
  log "built $prefix/$name:$version in $((SECONDS - start)) s ($((size / 1000000)) MB)"
done
log "all ${#ordered[@]} images in $((SECONDS - total)) s"
