// The operator's ReshardEnv (resharding-run.ts): what one resharding step needs from the
// cluster, for one app. SQL runs inside each shard's primary pod (shard-sql-exec.ts), found by
// Patroni's leader lock; the bucket assignment on record comes from the shards' StatefulSets
// and the app's status; the record of the move is status.resharding, written with a
// precondition on the app's resourceVersion so that a step planned on a stale view never
// lands (reshard-watch.ts retries it on a fresh one).
import type { AppModel } from '../../api/model.ts';
import { API_VERSION, KIND } from '../../api/schema.ts';
import type { PodExec } from '../../ports/pod-exec.ts';
import { ConflictError } from '../tier.ts';
import type { ClusterAccess } from '../tier.ts';
import { leaderConfigMapName } from './rollout-step.ts';
import { leaderRecordOf } from './lease-break.ts';
import { TLS_FILES } from '../shared/tls/objects.ts';
import { POD_LAYOUT } from './patroni-config.ts';
import {
  REPLICATION_USER,
  appDatabaseName,
  podName,
  serviceHost,
  shardIndexes,
  shardMapName,
  shardName,
} from './names.ts';
import { SHARD_MAP_VERSION_ANNOTATION, shardMapIn } from './shard-map.ts';
import {
  assignmentInStatus,
  assignmentOfRecord,
  assignmentOnShards,
  publishedMove,
} from './shard-authority.ts';
import type { Assignment } from './shard-authority.ts';
import type { MapView, ReshardEnv, SchemaCopyRequest, ShardSql } from './resharding-run.ts';
import type { ReshardingStatus } from './resharding.ts';
import {
  POSTGRES_CONTAINER,
  execShardSql,
  schemaCopyCommand,
  sourceConninfo,
} from './shard-sql-exec.ts';
import type { PodRef, SourceEndpoint } from './shard-sql-exec.ts';

type Json = Record<string, unknown>;

/**
 * How long after the cutover's map became the record the operator counts it read by every
 * app pod: the kubelet refreshes a ConfigMap volume within its sync period (1 min by default)
 * plus its cache's delay, and the SDK re-reads the file every 5 s and on every change.
 */
export const DEFAULT_ACK_DELAY_MS = 150_000;

/**
 * What every app pod reads, as far as the operator can tell: the move's map version once the
 * live map holds it and the ack delay has passed since it became the record; before that,
 * the version the live map had (undefined: no live map).
 */
export function acknowledgedVersion(
  r: ReshardingStatus | undefined,
  published: Assignment | undefined,
  nowMs: number,
  ackDelayMs: number,
): number | undefined {
  if (!published) return undefined;
  const at = r?.publishedAt ? Date.parse(r.publishedAt) : NaN;
  if (r && published.version >= r.mapVersion && nowMs - at >= ackDelayMs) return r.mapVersion;
  return r && published.version >= r.mapVersion ? r.mapVersion - 1 : published.version;
}

export interface OperatorEnvOptions {
  readonly app: AppModel;
  readonly cluster: ClusterAccess;
  readonly exec: PodExec;
  /** The app's status when this step began. */
  readonly status: Readonly<Json>;
  /** The app's resourceVersion when this step began (status writes are conditional on it). */
  readonly resourceVersion: string | undefined;
  /** The record as the runner holds it now (the publish adds its time to it). */
  readonly current: () => ReshardingStatus | undefined;
  readonly now?: () => number;
  readonly ackDelayMs?: number;
  /** Shard groups that may hold the record (held-shards.ts): more than the spec's when shrinking. */
  readonly recordShards?: number;
}

/** The source's primary Service as the target's subscription and schema copy reach it. */
export const sourceEndpoint = (app: AppModel, shard: number): SourceEndpoint => ({
  host: serviceHost(app, shardName(app, shard)),
  database: appDatabaseName(app),
  ...(app.database?.tls ? { caFile: `${POD_LAYOUT.caDir}/${TLS_FILES.ca}` } : {}),
});

export function operatorReshardEnv(opts: OperatorEnvOptions): ReshardEnv & {
  /** The version the shards' StatefulSets record (the final clear waits for the flip there). */
  shardsRecordVersion(): Promise<number | undefined>;
  /** shard() over another exec (the watch's, which remembers a failed exec). */
  shardVia(exec: PodExec, index: number): ShardSql;
  /** The app's resourceVersion after this env's last status write (undefined: none). */
  writtenVersion(): string | undefined;
} {
  const { app, cluster, exec } = opts;
  const now = opts.now ?? Date.now;
  const database = appDatabaseName(app);
  let resourceVersion = opts.resourceVersion;
  let written: string | undefined;
  const primaries = new Map<number, Promise<PodRef | undefined>>();

  /** The member holding the shard's leader lock: Patroni names its pod there. */
  const primaryOf = (shard: number): Promise<PodRef | undefined> => {
    let p = primaries.get(shard);
    if (!p) {
      p = cluster
        .get('v1', 'ConfigMap', app.namespace, leaderConfigMapName(shardName(app, shard)))
        .then((cm) => {
          const leader = cm ? leaderRecordOf(cm).leader : undefined;
          return leader ? { namespace: app.namespace, pod: leader } : undefined;
        });
      primaries.set(shard, p);
    }
    return p;
  };

  /** The metadata of the shard StatefulSets that may hold the record, by index. */
  const shardObjects = (): Promise<(Json | undefined)[]> =>
    Promise.all(
      Array.from({ length: Math.max(shardIndexes(app).length, opts.recordShards ?? 0) }, (_, i) =>
        cluster
          .get('apps/v1', 'StatefulSet', app.namespace, shardName(app, i))
          .then((sts) => sts?.['metadata'] as Json | undefined),
      ),
    );

  const onShards = (metas: readonly (Json | undefined)[]): Assignment | undefined =>
    assignmentOnShards(
      metas.map((meta, index) => {
        const annotations = meta?.['annotations'] as Record<string, string> | undefined;
        return { index, ...(annotations ? { annotations } : {}) };
      }),
      SHARD_MAP_VERSION_ANNOTATION,
    );

  /**
   * Every pod's map lists the move's targets: the live map does, and has since the newest
   * target's StatefulSet was created (the same reconcile publishes the map that lists it)
   * longer ago than a kubelet takes to refresh a ConfigMap volume.
   */
  const targetsListed = (
    live: { readonly shards: readonly { readonly index: number }[] } | undefined,
    metas: readonly (Json | undefined)[],
    ackDelay: number,
  ): boolean => {
    const targets = [...new Set((opts.current()?.moves ?? []).map((m) => m.target))];
    if (!live || !targets.every((t) => live.shards.some((s) => s.index === t))) return false;
    return targets.every((t) => {
      const at = metas[t]?.['creationTimestamp'];
      return typeof at === 'string' && now() - Date.parse(at) >= ackDelay;
    });
  };

  const writeRecord = async (record: ReshardingStatus | undefined) => {
    try {
      const res = await cluster.mergePatch(
        API_VERSION,
        KIND,
        app.namespace,
        app.name,
        {
          ...(resourceVersion ? { metadata: { resourceVersion } } : {}),
          status: { resharding: record ?? null },
        },
        'status',
      );
      resourceVersion = String((res['metadata'] as Json | undefined)?.['resourceVersion'] ?? '');
      written = resourceVersion;
    } catch (e) {
      if (e instanceof ConflictError)
        throw new ConflictError(
          `status.resharding not written: the app changed since this step read it (${e.message})`,
        );
      throw e;
    }
  };

  return {
    database,
    replicationRole: REPLICATION_USER,
    shard: (index) => execShardSql(exec, () => primaryOf(index), database),
    // Every member pod the StatefulSet names (a standby's own slots: straySlotsSql).
    members: (index) =>
      Array.from({ length: (app.database?.replicasPerShard ?? 0) + 1 }, (_, n) =>
        execShardSql(
          exec,
          () => Promise.resolve({ namespace: app.namespace, pod: podName(app, index, n) }),
          database,
        ),
      ),
    shardVia: (via, index) => execShardSql(via, () => primaryOf(index), database),
    sourceConninfo: (source) => sourceConninfo(sourceEndpoint(app, source)),

    async copySchema(request: SchemaCopyRequest) {
      const target = await primaryOf(request.target);
      if (!target) throw new Error(`shard ${request.target} has no primary to restore into`);
      const r = await exec({
        ...target,
        container: POSTGRES_CONTAINER,
        command: schemaCopyCommand(sourceEndpoint(app, request.source), request),
        timeoutMs: 600_000,
      });
      if (r.exitCode !== 0)
        throw new Error(
          `schema copy ${request.source} -> ${request.target} failed (exit ${r.exitCode}): ${r.stderr.trim().slice(0, 2000)}`,
        );
    },

    async maps(): Promise<MapView> {
      const cm = await cluster.get('v1', 'ConfigMap', app.namespace, shardMapName(app));
      const live = shardMapIn(cm);
      const published = live ? { version: live.version, ranges: live.ranges } : undefined;
      const metas = await shardObjects();
      const record = assignmentOfRecord(publishedMove(opts.current()), onShards(metas), () =>
        assignmentInStatus(opts.status),
      );
      if (!record)
        throw new Error('no bucket assignment is recorded yet (the shards are being created)');
      const ackDelay = opts.ackDelayMs ?? DEFAULT_ACK_DELAY_MS;
      const acked = acknowledgedVersion(opts.current(), published, now(), ackDelay);
      const listed =
        opts.current()?.phase === 'CatchUp' ? targetsListed(live, metas, ackDelay) : undefined;
      return {
        record,
        ...(published ? { published } : {}),
        ...(acked === undefined ? {} : { acknowledgedVersion: acked }),
        ...(listed === undefined ? {} : { targetsListed: listed }),
      };
    },

    async publishMap(map) {
      const current = opts.current();
      if (!current || map.version !== current.mapVersion)
        throw new Error(`publishMap v${map.version}: no recorded move publishes that version`);
      if (current.publishedAt) return;
      // One status write makes the new assignment the record (shard-hold.ts); the next
      // reconcile stamps it on the shards and publishes the ConfigMap.
      await writeRecord({ ...current, publishedAt: new Date(now()).toISOString() });
    },

    persist: writeRecord,

    async shardsRecordVersion() {
      return onShards(await shardObjects())?.version;
    },

    writtenVersion: () => written,
  };
}
