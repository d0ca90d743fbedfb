// Where the embedded control plane keeps its binaries, state and logs: all outside the repo.
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  ADDON_BINARY_VERSIONS,
  buildKey,
  crdKey,
  kubeScoreKey,
  prometheusKey,
  versitygwKey,
} from './versions.ts';

/** Root of everything cached; SCALABLE_CACHE_DIR overrides ~/.cache/scalable-operator. */
export function cacheRoot(): string {
  const override = process.env['SCALABLE_CACHE_DIR'];
  if (override) return override;
  const xdg = process.env['XDG_CACHE_HOME'];
  return join(xdg && xdg !== '' ? xdg : join(homedir(), '.cache'), 'scalable-operator');
}

/** Folder of one build: binaries, wrapper Go modules, CRDs and kwok stages. */
export function buildDir(): string {
  return join(cacheRoot(), buildKey());
}

export const BINARIES = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kubectl',
  'kwok',
  'helm',
  // The KEDA operator, run beside the control plane by the queue tier's integration test.
  'keda-operator',
] as const;
export type Binary = (typeof BINARIES)[number];

export function binDir(): string {
  return join(buildDir(), 'bin');
}

export function binPath(name: Binary): string {
  const addOn = (ADDON_BINARY_VERSIONS as Partial<Record<Binary, string>>)[name];
  return join(binDir(), addOn === undefined ? name : `${name}-${addOn}`);
}

export const PROMETHEUS_BINARIES = ['promtool', 'prometheus'] as const;
export type PrometheusBinary = (typeof PROMETHEUS_BINARIES)[number];

/** Folder of the Prometheus build: beside the control plane's, built and cached on its own. */
export function prometheusDir(): string {
  return join(cacheRoot(), prometheusKey());
}

export function prometheusBinPath(name: PrometheusBinary): string {
  return join(prometheusDir(), 'bin', name);
}

/** Folder of the kube-score build, cached on its own like Prometheus. */
export function kubeScoreDir(): string {
  return join(cacheRoot(), kubeScoreKey());
}

export function kubeScoreBinPath(): string {
  return join(kubeScoreDir(), 'bin', 'kube-score');
}

/** Folder of the versitygw build (the backup tests' S3 store), cached on its own. */
export function versitygwDir(): string {
  return join(cacheRoot(), versitygwKey());
}

export function versitygwBinPath(): string {
  return join(versitygwDir(), 'bin', 'versitygw');
}

/** Upstream CRD manifests copied out of the Go module cache, one folder per project. */
export function crdDir(): string {
  return join(buildDir(), crdKey());
}

/** kwok Stage objects copied out of the kwok module at build time. */
export function stagesPath(): string {
  return join(buildDir(), 'kwok-stages.yaml');
}

/** Marker written last by the build: its presence means the build is complete. */
export function buildStampPath(): string {
  return join(buildDir(), 'build.json');
}

/**
 * Home of one cluster's state, logs and lock. SCALABLE_CLUSTER_HOME gives a second cluster its
 * own home while sharing the binaries of the cache (e.g. two sessions on one machine).
 */
export function clusterHome(): string {
  const override = process.env['SCALABLE_CLUSTER_HOME'];
  return override && override !== '' ? override : cacheRoot();
}

/** The running cluster's state (certs, etcd data, pids); removed by cluster:down. */
export function clusterDir(): string {
  return join(clusterHome(), 'cluster');
}

/** Component logs, one folder per start; kept after cluster:down so failures can be read. */
export function logsRoot(): string {
  return join(clusterHome(), 'logs');
}
