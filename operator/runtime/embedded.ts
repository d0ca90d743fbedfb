// `npm start` without a KUBECONFIG: the embedded control plane (devcluster/), the CRD and
// the examples, so the operator has something to do. Development only.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureCluster, kubectl } from '../../devcluster/index.ts';
import { waitEstablished } from '../../devcluster/crds.ts';
import { defaultPolicyNames, patroniClusterRole } from '../admission.ts';

const REPO = join(import.meta.dirname, '..', '..');

export { kubectl };

/**
 * What the chart installs cluster-wide that the operator relies on, without the chart: the CRD
 * (SCALABLE_CRD_FILE overrides the repo's, e.g. while iterating on the schema), Established,
 * and the ClusterRole database tiers bind Patroni to (its default name). The admission
 * policies are not installed here: tests that need them install them (operator/admission.ts).
 */
export async function installCrd(kubeconfig: string): Promise<void> {
  const file =
    process.env['SCALABLE_CRD_FILE'] ?? join(REPO, 'crds', 'scalableapps.scalable.dev.yaml');
  await kubectl(kubeconfig, ['apply', '--server-side', '--force-conflicts', '-f', file]);
  await kubectl(
    kubeconfig,
    ['apply', '--server-side', '--force-conflicts', '-f', '-'],
    JSON.stringify(patroniClusterRole(defaultPolicyNames())),
  );
  await waitEstablished(kubeconfig, ['scalableapps.scalable.dev'], 60_000);
}

/** Namespaces the examples name, then the examples themselves. */
export async function applyExamples(kubeconfig: string): Promise<string[]> {
  const files = ['minimal.yaml', 'full.yaml'].map((f) => join(REPO, 'manifests', 'examples', f));
  const namespaces = new Set<string>();
  for (const f of files) {
    for (const m of readFileSync(f, 'utf8').matchAll(/^\s+namespace:\s*(\S+)\s*$/gm))
      if (m[1]) namespaces.add(m[1]);
  }
  for (const ns of namespaces) {
    await kubectl(kubeconfig, ['create', 'namespace', ns]).catch(() => undefined);
  }
  await kubectl(kubeconfig, ['apply', '--server-side', ...files.flatMap((f) => ['-f', f])]);
  return files;
}

export async function startEmbedded(log: (m: string) => void): Promise<string> {
  const cluster = await ensureCluster({ log });
  await installCrd(cluster.kubeconfigPath);
  const files = await applyExamples(cluster.kubeconfigPath);
  log(`applied ${files.map((f) => f.split('/').pop()).join(', ')}`);
  return cluster.kubeconfigPath;
}
