#!/usr/bin/env bash
# Idempotent setup behind `npm start` and `npm test` (their pre-scripts), so a fresh clone
# needs nothing else: a few Debian packages, npm packages (Node 22 comes from the npm
# registry's `node` package), and the embedded control plane's binaries (and
# promtool/prometheus), built once from the Go module proxy into ~/.cache/scalable-operator.
# The engine tests run Patroni, Postgres, Redis and the exporters from the project's images
# (the engines project's global setup builds them; scripts/images.sh starts dockerd).
set -euo pipefail
cd "$(dirname "$0")/.."

# `setup.sh start` (npm start's pre-script): against a cluster KUBECONFIG names (or from inside
# a pod) the operator needs its npm packages only, not the host engines or the embedded control
# plane (minutes of Go builds, root for apt): the same test operator/main.ts makes.
mode="${1:-test}"
given_cluster=""
if [ "$mode" = start ] && { [ -n "${KUBECONFIG:-}" ] || [ -n "${KUBERNETES_SERVICE_HOST:-}" ]; }; then
  given_cluster=1
fi

need_apt=()
# redis-server: the integration test of the queue's KEDA scaler (test/integration/queue-keda)
# runs one on a loopback address of its own, beside the control plane.
command -v redis-server >/dev/null || need_apt+=(redis-server)
# openssl: the devcluster's PKI, and the TLS engine tests read served certificates with it.
command -v openssl >/dev/null || need_apt+=(openssl)
# jemalloc: the operator image preloads it; bench:operator does too when it is here.
ldconfig -p 2>/dev/null | grep -q libjemalloc.so.2 || need_apt+=(libjemalloc2)
if [ -n "$given_cluster" ]; then
  need_apt=()
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${need_apt[*]}; run: sudo apt-get install -y ${need_apt[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  # The Debian package starts its own server; the tests start theirs on their own addresses.
  systemctl disable --now redis-server >/dev/null 2>&1 || true
fi

# Install from the lock file when node_modules is missing or older than it. Not `npm ci`:
# vite (under vitest) names a Windows-only optional dependency that this registry does not
# serve, so the lock cannot record it and `npm ci` refuses the lock as out of sync;
# `npm install` installs exactly the locked versions and leaves the lock unchanged.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm install (from package-lock.json)"
  npm install --no-audit --no-fund
fi

# `npm test` needs the project's images too (the engines project's global setup builds them).
# On empty caches that is minutes of downloads and dpkg (debootstrap, apt in each Dockerfile)
# that leave the CPU to the control plane's Go builds: start it beside them. The global setup
# then finds every image built (a cache check of seconds); if this build fails, it builds
# again in the open and fails there, so only its log is shown here.
images_pid=""
images_log=""
if [ "$mode" = test ] && [ "${SCALABLE_SKIP_CLUSTER_BUILD:-}" != 1 ]; then
  images_log="$(mktemp -t scalable-images.XXXXXX.log)"
  bash scripts/images.sh >"$images_log" 2>&1 &
  images_pid=$!
  trap 'kill "$images_pid" 2>/dev/null || true' EXIT
fi

if [ -n "$given_cluster" ]; then
  echo "setup: KUBECONFIG names the cluster: npm packages only (no host packages, no embedded control plane build)"
elif [ "${SCALABLE_SKIP_CLUSTER_BUILD:-}" != 1 ]; then
  npm run -s cluster:build
fi

if [ -n "$images_pid" ]; then
  if wait "$images_pid"; then
    tail -n 1 "$images_log"
  else
    echo "setup: building the images beside the control plane failed (the tests build them again):" >&2
    tail -n 20 "$images_log" >&2
  fi
  trap - EXIT
  rm -f "$images_log"
fi
