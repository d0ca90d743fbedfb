// The I/O of `scalable switchover`: the app, one shard's pods, Patroni's keys and the primary
// Service's endpoints, read from the API server; and the one write, the request in
// `<scope>-failover`, under a precondition on the version that was judged.
import { APP_KIND, pathOf } from '../../reconcile/kinds.ts';
import { ApiError, isConflict, isNotFound } from '../../ports/kube-api.ts';
import type { KubeApi } from '../../ports/kube-api.ts';
import { DATABASE_LABEL, SCOPE_LABEL } from '../../tiers/database/names.ts';
import { nameOf } from '../../tiers/shared/meta.ts';
import { AppNotFound } from '../status/gather.ts';
import { snapshotOf } from './decide.ts';
import type { Json, ShardSnapshot } from './decide.ts';

const TIMEOUT_MS = 15_000;

/** The shard's Patroni scope (StatefulSet, primary Service): `<app>-db-<shard>`. */
export const scopeOf = (app: string, shard: number): string => nameOf({ name: app }, 'db', shard);

const obj = (v: unknown): Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {};

/** The app's shard count, or why it has no shard to switch over. */
export async function readApp(
  client: KubeApi,
  namespace: string,
  name: string,
): Promise<{ shards: number } | { error: string }> {
  let app: Json;
  try {
    app = await client.request<Json>('GET', pathOf(APP_KIND, namespace, name), {
      verb: 'get',
      resource: APP_KIND.plural,
      timeoutMs: TIMEOUT_MS,
    });
  } catch (err) {
    if (isNotFound(err)) throw new AppNotFound(namespace, name);
    throw err;
  }
  const db = obj(obj(app['spec'])['database']);
  if (Object.keys(db).length === 0 || db['enabled'] === false)
    return { error: `scalableapp ${namespace}/${name} has no database (spec.database)` };
  const shards = typeof db['shards'] === 'number' ? db['shards'] : 1;
  return { shards };
}

const cmPath = (namespace: string, name: string) =>
  `/api/v1/namespaces/${namespace}/configmaps/${name}`;

export class Reader {
  private rwReadable = true;

  constructor(
    private readonly client: KubeApi,
    private readonly namespace: string,
    private readonly app: string,
    private readonly scope: string,
  ) {}

  /** Whether the primary Service's endpoints could be read (else -rw is not waited for). */
  get endpointsReadable(): boolean {
    return this.rwReadable;
  }

  private async configMap(name: string): Promise<Json | undefined> {
    try {
      return await this.client.request<Json>('GET', cmPath(this.namespace, name), {
        verb: 'get',
        resource: 'configmaps',
        timeoutMs: TIMEOUT_MS,
      });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Ready endpoints of the primary Service, by pod; null once they proved unreadable. */
  private async endpoints(): Promise<string[] | null> {
    if (!this.rwReadable) return null;
    let list: Json;
    try {
      list = await this.client.request<Json>(
        'GET',
        `/apis/discovery.k8s.io/v1/namespaces/${this.namespace}/endpointslices`,
        {
          verb: 'list',
          resource: 'endpointslices',
          timeoutMs: TIMEOUT_MS,
          query: { labelSelector: `kubernetes.io/service-name=${this.scope}` },
        },
      );
    } catch (err) {
      if (err instanceof ApiError && (err.code === 403 || err.code === 404)) {
        this.rwReadable = false;
        return null;
      }
      throw err;
    }
    const pods = ((list['items'] ?? []) as Json[]).flatMap((slice) =>
      ((slice['endpoints'] ?? []) as Json[]).flatMap((e) => {
        // An unset ready condition means ready (discovery.k8s.io/v1).
        if (obj(e['conditions'])['ready'] === false) return [];
        const name = obj(e['targetRef'])['name'];
        return typeof name === 'string' ? [name] : [];
      }),
    );
    return [...new Set(pods)].sort();
  }

  /**
   * The shard now. `<scope>-failover` is read before the lock: the new leader clears the
   * request only once it holds the lock (decide.ts, outcomeOf).
   */
  async snapshot(): Promise<ShardSnapshot> {
    const failover = await this.configMap(`${this.scope}-failover`);
    const [leader, config, sync, podList, rw] = await Promise.all([
      this.configMap(`${this.scope}-leader`),
      this.configMap(`${this.scope}-config`),
      this.configMap(`${this.scope}-sync`),
      this.client.request<Json>('GET', `/api/v1/namespaces/${this.namespace}/pods`, {
        verb: 'list',
        resource: 'pods',
        timeoutMs: TIMEOUT_MS,
        query: { labelSelector: `${DATABASE_LABEL}=${this.app},${SCOPE_LABEL}=${this.scope}` },
      }),
      this.endpoints(),
    ]);
    return snapshotOf({
      scope: this.scope,
      pods: (podList['items'] ?? []) as Json[],
      leader,
      config,
      sync,
      failover,
      rw,
    });
  }

  /**
   * Writes the request as Patroni's own manual_failover does: `leader` and `member` (and no
   * stale schedule), on the version of `<scope>-failover` that was judged (a request written
   * by someone else since is a conflict, not overwritten). Patroni acts on it only while
   * `leader` still holds the lock. Returns false on a conflict.
   */
  async request(snapshot: ShardSnapshot, from: string, to: string): Promise<boolean> {
    const annotations = { leader: from, member: to };
    try {
      if (snapshot.failover) {
        await this.client.request('PATCH', cmPath(this.namespace, `${this.scope}-failover`), {
          verb: 'patch',
          resource: 'configmaps',
          contentType: 'application/merge-patch+json',
          timeoutMs: TIMEOUT_MS,
          body: {
            metadata: {
              resourceVersion: snapshot.failover.resourceVersion,
              annotations: { ...annotations, scheduled_at: null },
            },
          },
        });
      } else {
        await this.client.request('POST', `/api/v1/namespaces/${this.namespace}/configmaps`, {
          verb: 'create',
          resource: 'configmaps',
          timeoutMs: TIMEOUT_MS,
          body: {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: {
              name: `${this.scope}-failover`,
              namespace: this.namespace,
              // The labels Patroni lists its keys by: without them it never sees the request.
              labels: { [DATABASE_LABEL]: this.app, [SCOPE_LABEL]: this.scope },
              annotations,
            },
          },
        });
      }
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }
}
