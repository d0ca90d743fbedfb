#!/usr/bin/env bash
# Idempotent setup behind `npm start` and `npm test` (their pre-scripts), so a fresh clone
# needs nothing else: Debian packages for the real engines, npm packages (Node 22 comes
# from the npm registry's `node` package), and the embedded control plane's binaries (and
# promtool/prometheus), built once from the Go module proxy into ~/.cache/scalable-operator.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v redis-sentinel >/dev/null || need_apt+=(redis-sentinel)
command -v patroni >/dev/null || need_apt+=(patroni)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_apt+=(postgresql)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v prometheus-redis-exporter >/dev/null || need_apt+=(prometheus-redis-exporter)
command -v prometheus-postgres-exporter >/dev/null || need_apt+=(prometheus-postgres-exporter)
# jemalloc: the operator image preloads it; bench:operator does too when it is here.
ldconfig -p 2>/dev/null | grep -q libjemalloc.so.2 || need_apt+=(libjemalloc2)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${need_apt[*]}; run: sudo apt-get install -y ${need_apt[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  # The Debian packages start their own servers; the tests start theirs on random ports.
  systemctl disable --now redis-server postgresql prometheus-redis-exporter \
    prometheus-postgres-exporter >/dev/null 2>&1 || true
fi

# Install from the lock file when node_modules is missing or older than it. Not `npm ci`:
# vite (under vitest) names a Windows-only optional dependency that this registry does not
# serve, so the lock cannot record it and `npm ci` refuses the lock as out of sync;
# `npm install` installs exactly the locked versions and leaves the lock unchanged.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm install (from package-lock.json)"
  npm install --no-audit --no-fund
fi

if [ "${SCALABLE_SKIP_CLUSTER_BUILD:-}" != 1 ]; then
  npm run -s cluster:build
fi
