// The operator as the chart installed it: its pods and which of them leads.
import { OPERATOR_NAMESPACE } from './cluster.ts';
import { getJson, pods, type List, type Pod } from './kube.ts';

export async function operatorPods(): Promise<Pod[]> {
  return (await pods(OPERATOR_NAMESPACE, 'app.kubernetes.io/name=scalable-operator')).filter(
    (p) => !p.metadata.deletionTimestamp,
  );
}

/** The operator pod holding the leader Lease, if any. */
export async function leader(): Promise<string | undefined> {
  const leases = await getJson<List<{ spec: { holderIdentity?: string } }>>([
    'get',
    'leases',
    '-n',
    OPERATOR_NAMESPACE,
  ]);
  const names = (await operatorPods()).map((p) => p.metadata.name);
  const holders = leases.items.map((l) => l.spec.holderIdentity ?? '');
  return names.find((n) => holders.some((h) => h.includes(n)));
}
