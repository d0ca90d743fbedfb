// The I/O of `scalable status`: read-only GETs and lists of what the status shows. The app
// and its pods are required; what a user may be refused (nodes, Patroni's ConfigMaps,
// Ingresses) or a cluster may not serve (HTTPRoute) becomes a note and an unknown, never a
// failure.
import { APP_KIND, kindOf, pathOf } from '../../reconcile/kinds.ts';
import type { KindInfo } from '../../reconcile/kinds.ts';
import { ApiError, isNotFound } from '../../ports/kube-api.ts';
import type { KubeApi } from '../../ports/kube-api.ts';
import { DATABASE_LABEL } from '../../tiers/database/names.ts';
import { APP_LABEL } from '../../tiers/shared/meta.ts';
import type { Gathered, Json } from './build.ts';

/** The app does not exist (exit 1 with this message). */
export class AppNotFound extends Error {
  constructor(namespace: string, name: string) {
    super(`scalableapp ${namespace}/${name} not found`);
    this.name = 'AppNotFound';
  }
}

const REQUEST_TIMEOUT_MS = 15_000;

function info(apiVersion: string, kind: string): KindInfo {
  const found = kindOf(apiVersion, kind);
  if (!found) throw new Error(`unknown kind ${apiVersion} ${kind}`);
  return found;
}

const POD = info('v1', 'Pod');
const CONFIG_MAP = info('v1', 'ConfigMap');
const SERVICE = info('v1', 'Service');
const INGRESS = info('networking.k8s.io/v1', 'Ingress');
const HTTP_ROUTE = info('gateway.networking.k8s.io/v1', 'HTTPRoute');

export async function gather(client: KubeApi, namespace: string, name: string): Promise<Gathered> {
  const get = (path: string, resource: string, verb: 'get' | 'list', labelSelector?: string) =>
    client.request<Json>('GET', path, {
      verb,
      resource,
      timeoutMs: REQUEST_TIMEOUT_MS,
      ...(labelSelector ? { query: { labelSelector } } : {}),
    });
  const list = async (kind: KindInfo, selector: string) =>
    ((await get(pathOf(kind, namespace), kind.plural, 'list', selector))['items'] ?? []) as Json[];
  const notes: string[] = [];
  /** A list the user may be refused, or the cluster may not serve: null and a note. */
  const optional = async (what: string, without: string, read: () => Promise<Json[]>) => {
    try {
      return await read();
    } catch (err) {
      if (isNotFound(err)) return [];
      if (err instanceof ApiError && err.code === 403) {
        notes.push(`${without}: ${what} are not readable with these credentials (403)`);
        return null;
      }
      throw err;
    }
  };

  let app: Json;
  try {
    app = await get(pathOf(APP_KIND, namespace, name), APP_KIND.plural, 'get');
  } catch (err) {
    if (isNotFound(err)) throw new AppNotFound(namespace, name);
    throw err;
  }
  const appSelector = `${APP_LABEL}=${name}`;
  const [pods, patroniKeys, ingresses, httpRoutes, services] = await Promise.all([
    list(POD, appSelector),
    optional('configmaps', 'sync standby unknown', () =>
      list(CONFIG_MAP, `${DATABASE_LABEL}=${name}`),
    ),
    optional('ingresses', 'ingress URLs unknown', () => list(INGRESS, appSelector)),
    optional('httproutes', 'route URLs unknown', () => list(HTTP_ROUTE, appSelector)),
    optional('services', 'service URLs unknown', () => list(SERVICE, appSelector)),
  ]);

  const nodeNames = [
    ...new Set(
      pods.flatMap((p) => {
        const n = (p['spec'] as Json | undefined)?.['nodeName'];
        return typeof n === 'string' && n !== '' ? [n] : [];
      }),
    ),
  ].sort();
  const nodes: Record<string, Json | null> = {};
  let forbidden = false;
  await Promise.all(
    nodeNames.map(async (n) => {
      try {
        nodes[n] = await get(`/api/v1/nodes/${encodeURIComponent(n)}`, 'nodes', 'get');
      } catch (err) {
        if (err instanceof ApiError && (err.code === 403 || err.code === 404)) {
          forbidden ||= err.code === 403;
          nodes[n] = null;
          return;
        }
        throw err;
      }
    }),
  );
  if (forbidden) notes.push('zone unknown: nodes are not readable with these credentials (403)');
  notes.sort();
  return { app, pods, patroniKeys, ingresses, httpRoutes, services, nodes, notes };
}
