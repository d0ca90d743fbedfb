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
import { assignmentOnShards, movedBuckets } from './shard-authority.ts';
import type { Assignment } from './shard-authority.ts';
import {
  SHARD_MAP_KEY,
  SHARD_MAP_VERSION_ANNOTATION,
  shardMapIn,
  shardMapOf,
  shardsWithoutBuckets,
} from './shard-map.ts';
import { PATRONI_TTL_FLOOR } from './lease-break.ts';
import { isReadyPod, planShard, shardPods, shardView } from './rollout.ts';
import { DATA_VERSION_CHECK, MAJOR_VERSION_MISMATCH } from './statefulset.ts';
import { parseShardMap } from '../../../sdk/src/contract/shard-map.ts';
import type { ReshardingStatus } from './resharding.ts';
import type { BucketRange, ShardMap } from '../../../sdk/src/contract/shard-map.ts';

export interface ShardStatus {
  readonly index: number;
  /** Pod that is the primary now (labelled by Patroni and ready). */
  readonly primary?: string;
  readonly readyReplicas: number;
  /** Desired replicas (replicasPerShard). */
  readonly replicas: number;
}

export function shardStatuses(app: AppModel, observed: Observed): ShardStatus[] {
  const replicas = app.database?.replicasPerShard ?? 0;
  return shardIndexes(app).map((index) => {
    const scope = shardName(app, index);
    const pods = observed.pods.filter(
      (p) =>
        p.metadata.labels?.[DATABASE_LABEL] === app.name &&
        p.metadata.labels?.[SCOPE_LABEL] === scope &&
        isReadyPod(p),
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

/** The bucket assignment recorded on the observed shard StatefulSets (shard-authority.ts). */
export function recordedOnShards(app: AppModel, observed?: Observed): Assignment | undefined {
  return assignmentOnShards(
    shardIndexes(app).map((index) => {
      const sts = observed?.objects.find(
        (o) => o.kind === 'StatefulSet' && o.metadata.name === shardName(app, index),
      );
      return {
        index,
        ...(sts?.metadata.annotations ? { annotations: sts.metadata.annotations } : {}),
      };
    }),
    SHARD_MAP_VERSION_ANNOTATION,
  );
}

/**
 * status.shardMap: the ConfigMap's name, the version, and the recorded ranges: a second copy
 * of the record, which outlives the shards' StatefulSets when the database is switched off.
 */
export function shardMapStatus(
  app: AppModel,
  observed?: Observed,
):
  | { version: number; configMapName: string; buckets: number; ranges: readonly BucketRange[] }
  | undefined {
  const map = publishedShardMap(app, observed);
  if (!map) return undefined;
  const record = recordedOnShards(app, observed) ?? { version: map.version, ranges: map.ranges };
  return {
    version: record.version,
    configMapName: shardMapName(app),
    buckets: map.buckets,
    ranges: record.ranges,
  };
}

/** status.resharding as last written (reshard-watch.ts), when there is one. */
export function reshardingOf(
  status: Readonly<Record<string, unknown>> | undefined,
): ReshardingStatus | undefined {
  const r = status?.['resharding'] as ReshardingStatus | undefined;
  return r && typeof r.phase === 'string' ? r : undefined;
}

/** DatabaseReady's message while buckets move: the phase, and the note when it is stuck. */
export const reshardingMessage = (r: ReshardingStatus): string =>
  `moving buckets from ${r.fromShards} to ${r.toShards} shards (shard map v${r.mapVersion}): phase ${r.phase}` +
  (r.note ? `; ${r.note.message}` : '') +
  ' (status.resharding)';

/** Buckets the published map routes away from the shard that holds their rows. */
export function shardMapConflict(app: AppModel, observed: Observed): string[] {
  const record = recordedOnShards(app, observed);
  const cm = observed.objects.find(
    (o) => o.kind === 'ConfigMap' && o.metadata.name === shardMapName(app),
  );
  const published = shardMapIn(cm);
  return record && published ? movedBuckets(published, record) : [];
}

/**
 * DatabaseReady: True when every shard has a ready primary (writes work everywhere);
 * missing replicas keep it True with reason ReplicasDegraded, since the app still works
 * but a failover would lose capacity (or, when synchronous, wait for a standby).
 * False, most urgent first: MultiplePrimaries (two writers), MajorVersionMismatch (a data
 * directory refused before Postgres started), NoPrimary, RollingUpdate (a shard rolls or
 * waits for a switchover before a scale-down: Progressing, not Ready).
 */
export const DATABASE_READY = 'DatabaseReady';

type ContainerStatus = {
  name?: string;
  state?: { terminated?: { message?: string } };
  lastState?: { terminated?: { message?: string } };
};

/** The data-version check's message, when it refused this pod's data directory. */
function versionMismatchOf(pod: ObservedObject): string | undefined {
  const statuses = (pod.status?.['initContainerStatuses'] ?? []) as ContainerStatus[];
  const check = statuses.find((c) => c.name === DATA_VERSION_CHECK);
  const message = (check?.state?.terminated ?? check?.lastState?.terminated)?.message?.trim();
  return message?.startsWith(MAJOR_VERSION_MISMATCH) ? message : undefined;
}

/** Shards with more than one pod labelled primary: never Ready (two writers, split brain). */
function multiplePrimaries(app: AppModel, observed: Observed): string[] {
  return shardIndexes(app).flatMap((i) => {
    const primaries = shardPods(app, i, observed.pods).filter(
      (p) =>
        p.metadata.labels?.[ROLE_LABEL] === PRIMARY_ROLE &&
        (p.metadata as { deletionTimestamp?: string }).deletionTimestamp === undefined,
    );
    return primaries.length > 1
      ? [`${shardName(app, i)}: ${primaries.map((p) => p.metadata.name).join(', ')}`]
      : [];
  });
}

/** What each rolling (or scaling-down) shard waits for or does next. */
function rollouts(app: AppModel, observed: Observed): string[] {
  return shardIndexes(app).flatMap((i) => {
    const sts = observed.objects.find(
      (o) => o.kind === 'StatefulSet' && o.metadata.name === shardName(app, i),
    );
    const plan = planShard(shardView(app, i, sts, observed.pods));
    if (!plan.busy) return [];
    const a = plan.action;
    const next =
      a.type === 'deletePod'
        ? `next: restart ${a.pod} (${a.why})`
        : a.type === 'switchover'
          ? `next: switchover from ${a.from} (${a.why})`
          : a.type === 'scaleDown'
            ? `next: scale down to ${a.replicas} pods (${a.why})`
            : a.type === 'wait'
              ? a.why
              : '';
    return [`${shardName(app, i)}: ${next}`];
  });
}

/**
 * What an app stored with failoverSeconds below 20 on an asynchronous shard gets (the CRD's
 * default was 10 before such specs were refused): Patroni's 20 s lease, said on DatabaseReady.
 */
export function failoverNote(app: AppModel): string | undefined {
  const db = app.database;
  if (!db || db.synchronous || db.failoverSeconds >= PATRONI_TTL_FLOOR) return undefined;
  return `failover takes Patroni's ${PATRONI_TTL_FLOOR} s lease, not failoverSeconds ${db.failoverSeconds}: below ${PATRONI_TTL_FLOOR} s needs synchronous: true (an asynchronous replica promoted early may lack acknowledged writes); set failoverSeconds to ${PATRONI_TTL_FLOOR} or more, or synchronous: true`;
}

export function databaseReport(app: AppModel, observed: Observed): TierReport {
  if (!app.database)
    return {
      condition: condition(DATABASE_READY, 'True', 'Disabled', 'the database tier is off'),
    };
  const shards = shardStatuses(app, observed);
  const shardMap = shardMapStatus(app, observed);
  const fields = { database: { shards }, ...(shardMap ? { shardMap } : {}) };
  const moved = shardMapConflict(app, observed);
  const conflict =
    moved.length > 0
      ? {
          reason: 'ShardMapConflict',
          message: `${shardMapName(app)} routes buckets away from the shard that holds their rows: ${moved.join(', ')}; the operator does not publish over it: restore the recorded ranges (status.shardMap.ranges) or delete the ConfigMap to have them republished`,
        }
      : undefined;
  const not = (reason: string, message: string): TierReport => ({
    condition: condition(DATABASE_READY, 'False', reason, message),
    fields,
    ...(conflict ? { degraded: conflict } : {}),
  });
  const split = multiplePrimaries(app, observed);
  if (split.length > 0)
    return not('MultiplePrimaries', `more than one pod labelled primary in ${split.join('; ')}`);
  const mismatch = observed.pods
    .filter((p) => p.metadata.labels?.[DATABASE_LABEL] === app.name)
    .flatMap((p) => {
      const m = versionMismatchOf(p);
      return m ? [`${p.metadata.name}: ${m}`] : [];
    });
  if (mismatch.length > 0) return not(MAJOR_VERSION_MISMATCH, mismatch.join('; '));
  const noPrimary = shards.filter((s) => !s.primary);
  if (noPrimary.length > 0) {
    const names = noPrimary.map((s) => shardName(app, s.index)).join(', ');
    return not('NoPrimary', `no ready primary in ${names}`);
  }
  const rolling = rollouts(app, observed);
  if (rolling.length > 0) return not('RollingUpdate', rolling.join('; '));
  const degraded = shards.filter((s) => s.readyReplicas < s.replicas);
  const published = publishedShardMap(app, observed);
  const idle = published ? shardsWithoutBuckets(published) : [];
  const moving = reshardingOf(observed.appStatus);
  const cond = moving
    ? condition(
        DATABASE_READY,
        'True',
        moving.note?.reason ?? 'Resharding',
        reshardingMessage(moving),
      )
    : idle.length > 0
      ? condition(
          DATABASE_READY,
          'True',
          'ReshardingPending',
          `${idle.map((i) => shardName(app, i)).join(', ')} own no bucket yet: the shard map keeps its ranges until the operator's resharding has moved their buckets (status.resharding)`,
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
  const note = failoverNote(app);
  const said = note ? { ...cond, message: `${cond.message}; ${note}` } : cond;
  // Serving, but with fewer copies than asked (a member's node lost, say): the app's Degraded
  // says so, as a lost synchronous standby puts the next failure's writes at risk.
  const short =
    degraded.length > 0 && cond.reason === 'ReplicasDegraded'
      ? { reason: 'ReplicasDegraded', message: `database: ${cond.message}` }
      : undefined;
  const worst = conflict ?? short;
  return { condition: said, fields, ...(worst ? { degraded: worst } : {}) };
}
