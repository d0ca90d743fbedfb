// Every pinned version of the embedded control plane, in one place. Changing a binary's
// version changes the build key, so a new cache folder is built next to the old one; changing
// a CRD version only re-copies the CRDs and re-seeds etcd.
import { createHash } from 'node:crypto';

export const BINARY_VERSIONS = {
  kubernetes: 'v1.36.3',
  etcd: 'v3.6.16',
  kwok: 'v0.8.0',
  helm: 'v3.22.0',
} as const;

/** Upstream CRDs, taken from these Go modules' zips. */
export const CRD_VERSIONS = {
  keda: 'v2.21.0',
  prometheusOperator: 'v0.85.0',
  gatewayApi: 'v1.6.3',
  traefik: 'v3.7.13',
} as const;

/**
 * Prometheus for the monitoring tests (promtool, and a server the engine test runs), kept out
 * of BINARY_VERSIONS so that pinning it never rebuilds the control plane. The module proxy
 * publishes Prometheus v3.X.Y as github.com/prometheus/prometheus v0.3XX.Y.
 */
export const PROMETHEUS = {
  module: 'github.com/prometheus/prometheus',
  version: 'v0.316.0',
  release: '3.16.0',
  /** Leaves out every service-discovery plugin (cloud SDKs): the tests use static configs. */
  tags: 'remove_all_sd',
} as const;

/**
 * kube-score, the manifest linter `npm run lint` runs on the rendered examples; like
 * Prometheus, built and cached on its own so that pinning it never rebuilds the control plane.
 */
export const KUBE_SCORE = {
  module: 'github.com/zegl/kube-score',
  version: 'v1.20.0',
} as const;

/**
 * versitygw, the S3-compatible store the backup engine tests archive to (Apache-2.0, a POSIX
 * directory as its backend, TLS with a given key pair); cached on its own like kube-score.
 */
export const VERSITYGW = {
  module: 'github.com/versity/versitygw',
  version: 'v1.8.0',
} as const;

export const VERSIONS = { ...BINARY_VERSIONS, ...CRD_VERSIONS } as const;

/**
 * Add-on binaries, each at the version of its CRDs. Not part of the build key: adding or
 * bumping one builds only it (its file name carries its version), never Kubernetes again.
 */
export const ADDON_BINARY_VERSIONS = { 'keda-operator': CRD_VERSIONS.keda } as const;

/** Published k8s.io/<staging> modules carry v0.<minor>.<patch> for Kubernetes v1.<minor>.<patch>. */
export function stagingVersion(kubernetes: string): string {
  const match = /^v1\.(\d+)\.(\d+)$/.exec(kubernetes);
  if (!match) throw new Error(`not a Kubernetes release version: ${kubernetes}`);
  return `v0.${match[1]}.${match[2]}`;
}

const shortHash = (v: unknown) =>
  createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 10);

/** Folder name of a build under the cache: readable, and unique for these binary versions. */
export function buildKey(versions: Readonly<Record<string, string>> = BINARY_VERSIONS): string {
  return `k8s-${versions['kubernetes'] ?? 'unknown'}-${shortHash(versions)}`;
}

/** Folder name of the Prometheus build under the cache. */
export function prometheusKey(p: typeof PROMETHEUS = PROMETHEUS): string {
  return `prometheus-${p.release}-${shortHash(p)}`;
}

/** Folder name of the kube-score build under the cache. */
export function kubeScoreKey(k: typeof KUBE_SCORE = KUBE_SCORE): string {
  return `kube-score-${k.version}-${shortHash(k)}`;
}

/** Folder name of the versitygw build under the cache. */
export function versitygwKey(v: typeof VERSITYGW = VERSITYGW): string {
  return `versitygw-${v.version}-${shortHash(v)}`;
}

/** Folder name of one set of upstream CRDs (and the etcd seed holding them) inside a build. */
export function crdKey(versions: Readonly<Record<string, string>> = CRD_VERSIONS): string {
  return `crds-${shortHash(versions)}`;
}
