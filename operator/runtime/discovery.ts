// Which kinds this cluster serves, per resource rather than per group-version: an add-on may
// serve monitoring.coreos.com/v1 with only some of its CRDs (OTel or Alloy setups install
// ServiceMonitors but not PodMonitors), and a kind counted as served that is not would leave
// its informer retrying a 404 forever. Objects of a kind that is not served are skipped and
// the app's conditions say so; a periodic re-discovery picks up add-ons installed later.
import type { KindInfo } from '../reconcile/kinds.ts';
import { apiVersionOf } from '../reconcile/kinds.ts';
import { isNotFound } from './kube-client.ts';
import type { KubeClient } from './kube-client.ts';

interface ApiResourceList {
  resources?: Array<{ name: string }>;
}

/** Key of a served resource: apiVersion and plural, e.g. monitoring.coreos.com/v1|podmonitors. */
export const resourceKey = (info: KindInfo): string => `${apiVersionOf(info)}|${info.plural}`;

/**
 * The served resources among `kinds`: one request per group-version they span (core: /api/v1),
 * so the cost does not grow with what else the cluster serves. A group-version the server does
 * not know (404) serves none of them.
 */
export async function discoverResources(
  client: KubeClient,
  kinds: readonly KindInfo[],
): Promise<Set<string>> {
  const versions = [...new Set(kinds.map(apiVersionOf))];
  const served = new Set<string>();
  await Promise.all(
    versions.map(async (gv) => {
      const path = gv.includes('/') ? `/apis/${gv}` : `/api/${gv}`;
      let list: ApiResourceList;
      try {
        list = await client.request<ApiResourceList>('GET', path, {
          verb: 'get',
          resource: 'discovery',
          timeoutMs: 15_000,
        });
      } catch (err) {
        if (isNotFound(err)) return;
        throw err;
      }
      for (const r of list.resources ?? []) served.add(`${gv}|${r.name}`);
    }),
  );
  return served;
}
