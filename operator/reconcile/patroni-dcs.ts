// Patroni reads synchronous mode and the memory parameters from patroni.yml only when a
// cluster is bootstrapped; afterwards they live in its dynamic config, the `config`
// annotation of the ConfigMap <app>-db-<i>-config that Patroni itself owns. So a spec change
// (e.g. synchronous: true on a running app) reaches Postgres only through that annotation;
// Patroni applies it on its next loop. Other keys (patronictl edits) are kept.
import type { AppModel } from '../api/model.ts';
import { ApiError, isNotFound } from '../runtime/kube-client.ts';
import type { KubeClient } from '../runtime/kube-client.ts';
import { dcsConfigMapName, dcsConfigUpdate } from '../tiers/database/patroni-config.ts';
import { shardIndexes } from '../tiers/database/names.ts';
import { kindOf, pathOf } from './kinds.ts';

const CONFIG_MAP = (() => {
  const info = kindOf('v1', 'ConfigMap');
  if (!info) throw new Error('ConfigMap missing from the kinds table');
  return info;
})();

type Json = Record<string, unknown>;

/** Brings each running shard's dynamic config in line with the spec; returns the writes. */
export async function syncPatroniConfig(client: KubeClient, app: AppModel): Promise<string[]> {
  if (!app.database) return [];
  const updated: string[] = [];
  for (const shard of shardIndexes(app)) {
    const name = dcsConfigMapName(app, shard);
    const path = pathOf(CONFIG_MAP, app.namespace, name);
    let cm: Json;
    try {
      cm = await client.request<Json>('GET', path, { verb: 'get', resource: 'configmaps' });
    } catch (err) {
      if (isNotFound(err)) continue; // not bootstrapped yet: patroni.yml still rules
      throw err;
    }
    const meta = (cm['metadata'] ?? {}) as {
      annotations?: Record<string, string>;
      resourceVersion?: string;
    };
    const next = dcsConfigUpdate(app, shard, meta.annotations?.['config']);
    if (next === undefined) continue;
    try {
      // The resourceVersion makes a concurrent change by Patroni conflict instead of vanish.
      await client.request('PATCH', path, {
        verb: 'patch',
        resource: 'configmaps',
        contentType: 'application/merge-patch+json',
        body: {
          metadata: { resourceVersion: meta.resourceVersion, annotations: { config: next } },
        },
      });
      updated.push(name);
    } catch (err) {
      if (err instanceof ApiError && err.code === 409)
        throw new Error(`${name} changed meanwhile; retrying`);
      throw err;
    }
  }
  return updated;
}
