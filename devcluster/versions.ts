// Every pinned version of the embedded control plane, in one place. Changing any of them
// changes the build key, so a new cache folder is built next to the old one.
import { createHash } from 'node:crypto';

export const VERSIONS = {
  kubernetes: 'v1.36.3',
  etcd: 'v3.6.16',
  kwok: 'v0.8.0',
  helm: 'v3.22.0',
  // Upstream CRDs, taken from these Go modules' zips.
  keda: 'v2.21.0',
  prometheusOperator: 'v0.85.0',
  gatewayApi: 'v1.6.3',
} as const;

/** Published k8s.io/<staging> modules carry v0.<minor>.<patch> for Kubernetes v1.<minor>.<patch>. */
export function stagingVersion(kubernetes: string): string {
  const match = /^v1\.(\d+)\.(\d+)$/.exec(kubernetes);
  if (!match) throw new Error(`not a Kubernetes release version: ${kubernetes}`);
  return `v0.${match[1]}.${match[2]}`;
}

/** Folder name under the cache: readable, and unique for this set of versions. */
export function buildKey(versions: Readonly<Record<string, string>> = VERSIONS): string {
  const hash = createHash('sha256').update(JSON.stringify(versions)).digest('hex').slice(0, 10);
  return `k8s-${versions['kubernetes'] ?? 'unknown'}-${hash}`;
}
