// Validates a rendered object against the OpenAPI schema of its kind, using the models
// generated from Kubernetes' and the add-on projects' own schemas (kubernetes-models).
import type { K8sObject } from '../../operator/tiers/shared/chart.ts';

type Model = new (data: unknown) => { validate(): void };

/** apiVersion -> module exporting one class per kind. */
function moduleFor(apiVersion: string): string {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  if (group === '') return `kubernetes-models/${version}`;
  if (group!.endsWith('.k8s.io') && !group!.startsWith('gateway.')) {
    return `kubernetes-models/${group}/${version}`;
  }
  const addOns: Record<string, string> = {
    'gateway.networking.k8s.io': '@kubernetes-models/gateway-api',
    'keda.sh': '@kubernetes-models/keda',
    'monitoring.coreos.com': '@kubernetes-models/prometheus-operator',
    'traefik.io': '@kubernetes-models/traefik',
    'cert-manager.io': '@kubernetes-models/cert-manager',
  };
  const pkg = addOns[group!] ?? 'kubernetes-models';
  return `${pkg}/${group}/${version}`;
}

/** Throws with the schema's message when the object does not conform; unknown kinds fail too. */
export async function validateAgainstOpenApi(obj: K8sObject): Promise<void> {
  const mod = (await import(moduleFor(obj.apiVersion))) as Record<string, Model>;
  const Cls = mod[obj.kind];
  if (!Cls) throw new Error(`no OpenAPI model for ${obj.apiVersion} ${obj.kind}`);
  new Cls(obj).validate();
}
