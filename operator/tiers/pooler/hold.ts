// App pods are pointed at the pooler only once it serves. Turning database.pooler on renders
// the PgBouncer Deployments and, in the same apply, the shard map and DATABASE_HOST naming
// their Services: every app pod would then connect to Services with no ready endpoint for as
// long as PgBouncer takes to start (its image pulled, its pods scheduled) and fail meanwhile.
// So the adjust hooks of the tiers that point pods at the database (the shard map of the
// database tier, DATABASE_HOST of the web and worker Deployments) keep the shards' -rw
// Services until every shard's pooler has a ready pod; once the live map names the pooler it
// stays wired (a pooler pod restarting later is the pooler's own redundancy's business, and
// moving every client back and forth would cost more than it saves).
import type { AppModel } from '../../api/model.ts';
import type { ShardMap } from '../../../sdk/src/contract/shard-map.ts';
import type { K8sObject } from '../shared/chart.ts';
import { withContainers } from '../shared/chart.ts';
import type { LiveView } from '../tier.ts';
import { serviceHost, shardIndexes, shardMapName, shardName } from '../database/names.ts';
import { isShardMapObject, shardMapIn, withShardMap } from '../database/shard-map.ts';
import { poolerName, poolerOf, poolerServiceName } from './names.ts';

const num = (v: unknown): number => (typeof v === 'number' ? v : 0);

/** The live shard map's primaries, as published (none when absent or unparsable). */
function livePrimaries(app: AppModel, live: LiveView): string[] {
  const cm = live.object({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: shardMapName(app), namespace: app.namespace },
  });
  return (shardMapIn(cm)?.shards ?? []).map((s) => s.primary);
}

/**
 * Whether app pods may connect through the pooler (which is on): the live map already names
 * it, or every shard's PgBouncer Deployment has a ready pod.
 */
function poolerServing(app: AppModel, live: LiveView): boolean {
  const poolerHosts = new Set(
    shardIndexes(app).map((i) => serviceHost(app, poolerServiceName(app, i))),
  );
  if (livePrimaries(app, live).some((p) => poolerHosts.has(p))) return true;
  return shardIndexes(app).every((i) => {
    const deploy = live.object({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: poolerName(app, i), namespace: app.namespace },
    });
    return num((deploy?.status as Record<string, unknown> | undefined)?.['readyReplicas']) > 0;
  });
}

/** Whether the pods must still be pointed past the pooler: it is on and not serving yet. */
export const poolerPending = (app: AppModel, live: LiveView): boolean =>
  poolerOf(app) !== undefined && !poolerServing(app, live);

/** `map` with each shard's primary on its -rw Service instead of its pooler. */
export function directMap(app: AppModel, map: ShardMap): ShardMap {
  return {
    ...map,
    shards: map.shards.map((s) => ({
      ...s,
      primary: serviceHost(app, shardName(app, s.index)),
    })),
  };
}

/** An app Deployment whose containers' DATABASE_HOST names shard 0's -rw Service. */
export function withDirectHost(app: AppModel, o: K8sObject): K8sObject {
  type Env = { name: string; value?: string };
  const direct = serviceHost(app, shardName(app, 0));
  return withContainers<{ name: string; env?: Env[] }>(o, (c) =>
    c.env?.some((e) => e.name === 'DATABASE_HOST')
      ? { ...c, env: c.env.map((e) => (e.name === 'DATABASE_HOST' ? { ...e, value: direct } : e)) }
      : c,
  );
}

/** The database tier's adjust step: the shard map names the -rw Services until then. */
export function holdPoolerMap(
  app: AppModel,
  desired: readonly K8sObject[],
  live: LiveView,
): K8sObject[] {
  if (!poolerPending(app, live)) return [...desired];
  return desired.map((o) => {
    const map = isShardMapObject(o) ? shardMapIn(o) : undefined;
    return map ? withShardMap(o, directMap(app, map)) : o;
  });
}

/** The adjust step of a tier whose Deployments carry DATABASE_HOST (web, workers). */
export function holdPoolerHost(
  app: AppModel,
  desired: readonly K8sObject[],
  live: LiveView,
): K8sObject[] {
  if (!poolerPending(app, live)) return [...desired];
  return desired.map((o) => withDirectHost(app, o));
}
