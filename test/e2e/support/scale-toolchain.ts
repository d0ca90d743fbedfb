// The kind suite's scale-out add-ons, built from the Go module proxy with the devcluster's build
// machinery (a wrapper module, the one shared Go build cache, -trimpath -s -w) into a cache
// folder per add-on and version, once, so pinning one never rebuilds the kind binaries, the
// node image or another add-on. Today: metrics-server, which gives the web tier's HPA its CPU
// figures, and KEDA's metrics adapter, which gives KEDA's HPA the queue's backlog (workers
// 1 -> N). Cold and warm costs are in BENCHMARKS.md ("Scale-out add-on builds").
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { renderGoMod } from '../../../devcluster/gomod.ts';
import { withLock } from '../../../devcluster/lock.ts';
import { cacheRoot } from '../../../devcluster/paths.ts';
import {
  buildTarget,
  GO_DIRECTIVE,
  kedaLdflags,
  trimmedKedaTree,
  type Log,
  type Target,
} from '../../../devcluster/toolchain.ts';
import { ADDON_BINARY_VERSIONS } from '../../../devcluster/versions.ts';
import { SCALE_VERSIONS as V } from './versions.ts';

export const SCALE_BINARIES = ['metrics-server', 'keda-adapter'] as const;
export type ScaleBinary = (typeof SCALE_BINARIES)[number];

/** The adapter is KEDA's own: always the version of the operator the devcluster builds. */
const KEDA_VERSION = ADDON_BINARY_VERSIONS['keda-operator'];

const VERSION: Record<ScaleBinary, string> = {
  'metrics-server': V.metricsServer,
  'keda-adapter': KEDA_VERSION,
};

export const scaleDir = (name: ScaleBinary): string =>
  join(cacheRoot(), 'scale-addons', `${name}-${VERSION[name]}`);
export const scaleBin = (name: ScaleBinary): string => join(scaleDir(name), 'bin', name);

export function scaleTargets(): Record<ScaleBinary, Target> {
  return {
    'metrics-server': {
      name: 'metrics-server',
      version: V.metricsServer,
      // The command's package only: `go get -tool` of it resolves just what it imports.
      packages: { 'metrics-server': 'sigs.k8s.io/metrics-server/cmd/metrics-server' },
      goMod: async () =>
        renderGoMod({ module: 'e2e.local/metrics-server', go: GO_DIRECTIVE, require: {} }),
      // As its Makefile does: the version goes into client-go's version package.
      ldflags: async () => [`-X k8s.io/client-go/pkg/version.gitVersion=${V.metricsServer}`],
      nice: true,
    },
    'keda-adapter': {
      name: 'keda-adapter',
      version: KEDA_VERSION,
      // cmd/adapter of the trimmed copy the operator is built from (cluster:build), with the
      // same flags: the packages they share (KEDA's apis, util and metrics service, the
      // client libraries) come from the Go build cache; what is new is the API server side
      // (k8s.io/apiserver, sigs.k8s.io/custom-metrics-apiserver).
      packages: { 'keda-adapter': './cmd/adapter' },
      sourceTree: trimmedKedaTree,
      ldflags: kedaLdflags,
      nice: true,
    },
  };
}

/**
 * Builds whichever of `only` is missing (one at a time: each `go build` already uses every
 * core), under a lock per add-on so two suites on one machine build it once. Returns each
 * one's wall seconds, 0 when it was cached.
 */
export async function ensureScaleBinaries(
  log: Log,
  only: readonly ScaleBinary[] = SCALE_BINARIES,
): Promise<Record<string, number>> {
  const took: Record<string, number> = {};
  const targets = scaleTargets();
  for (const name of only) {
    const dir = scaleDir(name);
    await mkdir(dir, { recursive: true });
    const start = performance.now();
    const cached = existsSync(scaleBin(name));
    await withLock(
      join(dir, '.lock'),
      () => buildTarget(targets[name], log, { root: dir, out: () => scaleBin(name) }),
      3_600_000,
    );
    took[name] = cached ? 0 : (performance.now() - start) / 1000;
  }
  return took;
}
