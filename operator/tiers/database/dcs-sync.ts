// Patroni reads synchronous mode and the memory parameters from patroni.yml only when a
// cluster is bootstrapped; afterwards they live in its dynamic config, the `config`
// annotation of the ConfigMap <app>-db-<i>-config that Patroni itself owns. So a spec change
// (e.g. synchronous: true on a running app, and with it primary_start_timeout 0: a crashed
// primary fails over instead of restarting in place) reaches Patroni only through that
// annotation; Patroni applies it on its next loop. Other keys (patronictl edits) are kept.
import type { AppModel } from '../../api/model.ts';
import { ConflictError } from '../tier.ts';
import type { ClusterAccess, HookWrite } from '../tier.ts';
import { shardIndexes } from './names.ts';
import { dcsConfigMapName, dcsConfigUpdate } from './patroni-config.ts';

/** Brings each running shard's dynamic config in line with the spec; returns the writes. */
export async function syncPatroniConfig(
  app: AppModel,
  cluster: ClusterAccess,
): Promise<HookWrite[]> {
  if (!app.database) return [];
  const updated: HookWrite[] = [];
  for (const shard of shardIndexes(app)) {
    const name = dcsConfigMapName(app, shard);
    const cm = await cluster.get('v1', 'ConfigMap', app.namespace, name);
    if (!cm) continue; // not bootstrapped yet: patroni.yml still rules
    const meta = (cm['metadata'] ?? {}) as {
      annotations?: Record<string, string>;
      resourceVersion?: string;
    };
    const next = dcsConfigUpdate(app, shard, meta.annotations?.['config']);
    if (next === undefined) continue;
    try {
      // The resourceVersion makes a concurrent change by Patroni conflict instead of vanish.
      await cluster.mergePatch('v1', 'ConfigMap', app.namespace, name, {
        metadata: { resourceVersion: meta.resourceVersion, annotations: { config: next } },
      });
      updated.push({ action: 'Updated', kind: 'ConfigMap', name, why: 'Patroni dynamic config' });
    } catch (err) {
      if (err instanceof ConflictError) throw new Error(`${name} changed meanwhile; retrying`);
      throw err;
    }
  }
  return updated;
}
