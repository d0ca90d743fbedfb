#!/usr/bin/env bash
# `npm test` (after its pre-script, setup.sh): typecheck and lint, then every project but the
# kind suite in one vitest run, then the kind suite. The kind suite's own binaries (kind,
# kubelet, kubeadm, kube-proxy, pause: Go builds of about ten minutes on empty caches) are
# built during the first run, in the background and niced: that run mostly waits on real
# engines and control planes, so the builds use its idle CPU instead of adding to CI's time.
# With warm caches the build is a check that finds everything built.
set -euo pipefail
cd "$(dirname "$0")/.."

npm run -s typecheck
npm run -s lint

log="$(mktemp -t scalable-e2e-build.XXXXXX.log)"
nice -n 10 npm run -s e2e:build >"$log" 2>&1 &
build=$!
# Never leave the build running when the first run fails or is interrupted.
trap 'kill "$build" 2>/dev/null || true' EXIT

first=0
npx vitest run --project unit --project engines --project integration --project images || first=$?

built=0
wait "$build" || built=$?
trap - EXIT
if [ "$built" != 0 ]; then
  echo "test: the kind suite's binaries did not build (npm run e2e:build):" >&2
  cat "$log" >&2
fi
tail -n 3 "$log"
rm -f "$log"
[ "$first" = 0 ] || exit "$first"
[ "$built" = 0 ] || exit "$built"

npx vitest run --project e2e
