// Which optional APIs this cluster serves (keda.sh, monitoring.coreos.com, gateway API,
// traefik.io). Objects of an absent API are skipped and the app's conditions say so; a
// periodic re-discovery picks up add-ons installed later.
import type { KubeClient } from './kube-client.ts';

interface ApiGroupList {
  groups?: Array<{ name: string; versions?: Array<{ groupVersion: string }> }>;
}

/** Every group/version served, e.g. apps/v1, keda.sh/v1alpha1 (core: v1). */
export async function discoverGroupVersions(client: KubeClient): Promise<Set<string>> {
  const list = await client.request<ApiGroupList>('GET', '/apis', {
    verb: 'get',
    resource: 'discovery',
    timeoutMs: 15_000,
  });
  const served = new Set<string>(['v1']);
  for (const g of list.groups ?? []) for (const v of g.versions ?? []) served.add(v.groupVersion);
  return served;
}
