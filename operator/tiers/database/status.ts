// DatabaseReady and status.database / status.shardMap, as pure functions of the model and
// the observed pods. The primary is whichever pod Patroni labelled so, not a StatefulSet
// ordinal: after a failover it is another pod, and the status says which.
import type { AppModel } from '../../api/model.ts';
import { condition } from '../shared/report.ts';
import type { Observed, ObservedObject, TierReport } from '../shared/report.ts';
import {
  DATABASE_LABEL,
  PRIMARY_ROLE,
  REPLICA_ROLE,
  ROLE_LABEL,
  SCOPE_LABEL,
  shardIndexes,
  shardMapName,
  shardName,
} from './names.ts';
import { SHARD_MAP_KEY, shardMapOf, shardsWithoutBuckets } from './shard-map.ts';
import { parseShardMap } from '../../../sdk/src/contract/shard-map.ts';
import type { ShardMap } from '../../../sdk/src/contract/shard-map.ts';

export interface ShardStatus {
  readonly index: number;
  /** Pod that is the primary now (labelled by Patroni and ready). */
  readonly primary?: string;
  readonly readyReplicas: number;
  /** Desired replicas (replicasPerShard). */
  readonly replicas: number;
}

const isReady = (pod: ObservedObject): boolean => {
  const conditions = (pod.status?.['conditions'] ?? []) as Array<{
    type?: string;
    status?: string;
  }>;
  return conditions.some((c) => c.type === 'Ready' && c.status === 'True');
};

export function shardStatuses(app: AppModel, observed: Observed): ShardStatus[] {
  const replicas = app.database?.replicasPerShard ?? 0;
  return shardIndexes(app).map((index) => {
    const scope = shardName(app, index);
    const pods = observed.pods.filter(
      (p) =>
        p.metadata.labels?.[DATABASE_LABEL] === app.name &&
        p.metadata.labels?.[SCOPE_LABEL] === scope &&
        isReady(p),
    );
    const role = (p: ObservedObject) => p.metadata.labels?.[ROLE_LABEL];
    const primary = pods.find((p) => role(p) === PRIMARY_ROLE)?.metadata.name;
    const readyReplicas = pods.filter((p) => role(p) === REPLICA_ROLE).length;
    return { index, ...(primary ? { primary } : {}), readyReplicas, replicas };
  });
}

/** The map app pods read: the live ConfigMap's, else (not created yet) the desired one. */
export function publishedShardMap(app: AppModel, observed?: Observed): ShardMap | undefined {
  const cm = observed?.objects.find(
    (o) => o.kind === 'ConfigMap' && o.metadata.name === shardMapName(app),
  );
  const json = (cm?.['data'] as Record<string, string> | undefined)?.[SHARD_MAP_KEY];
  if (json) {
    try {
      return parseShardMap(json);
    } catch {
      // fall through to the desired map
    }
  }
  return shardMapOf(app);
}

/** status.shardMap: the ConfigMap's name and the published map's version. */
export function shardMapStatus(
  app: AppModel,
  observed?: Observed,
): { version: number; configMapName: string; buckets: number } | undefined {
  const map = publishedShardMap(app, observed);
  return map
    ? { version: map.version, configMapName: shardMapName(app), buckets: map.buckets }
    : undefined;
}

/**
 * DatabaseReady: True when every shard has a ready primary (writes work everywhere);
 * missing replicas keep it True with reason ReplicasDegraded, since the app still works
 * but a failover would lose capacity (or, when synchronous, wait for a standby).
 */
export const DATABASE_READY = 'DatabaseReady';

export function databaseReport(app: AppModel, observed: Observed): TierReport {
  if (!app.database)
    return {
      condition: condition(DATABASE_READY, 'True', 'Disabled', 'the database tier is off'),
    };
  const shards = shardStatuses(app, observed);
  const shardMap = shardMapStatus(app, observed);
  const fields = { database: { shards }, ...(shardMap ? { shardMap } : {}) };
  const noPrimary = shards.filter((s) => !s.primary);
  if (noPrimary.length > 0) {
    const names = noPrimary.map((s) => shardName(app, s.index)).join(', ');
    return {
      condition: condition(DATABASE_READY, 'False', 'NoPrimary', `no ready primary in ${names}`),
      fields,
    };
  }
  const degraded = shards.filter((s) => s.readyReplicas < s.replicas);
  const published = publishedShardMap(app, observed);
  const idle = published ? shardsWithoutBuckets(published) : [];
  const cond =
    idle.length > 0
      ? condition(
          DATABASE_READY,
          'True',
          'ReshardingPending',
          `${idle.map((i) => shardName(app, i)).join(', ')} own no bucket yet: the shard map keeps its ranges until rows are moved (not automated yet)`,
        )
      : degraded.length > 0
        ? condition(
            DATABASE_READY,
            'True',
            'ReplicasDegraded',
            degraded
              .map(
                (s) =>
                  `${shardName(app, s.index)}: ${s.readyReplicas}/${s.replicas} replicas ready`,
              )
              .join('; '),
          )
        : condition(
            DATABASE_READY,
            'True',
            'ShardsReady',
            `${shards.length} shard(s), each with a primary and its replicas ready`,
          );
  return { condition: cond, fields };
}
