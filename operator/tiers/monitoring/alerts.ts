// Alerts for the failure modes of each tier that is on (the chapter's "metrics"): what a
// page should say when one of the architecture's promises breaks. Every alert names the app,
// tier and (database) shard, and links its section of docs/runbooks.md.
// Series come from the PodMonitors (redis_exporter, postgres_exporter, Patroni,
// pgbouncer_exporter), kube-state-metrics and the kubelet: what kube-prometheus-stack
// scrapes out of the box.
import type { AppModel, PoolerModel } from '../../api/model.ts';
import { patroniConfig } from '../database/patroni-config.ts';
import { appDatabaseName, tierName as databaseName } from '../database/names.ts';
import { poolerOf } from '../pooler/names.ts';
import { cacheNames } from '../cache/build.ts';
import { deadLetterStreamOf, groupOf, streamOf, workerName } from '../queue/workers.ts';
import { nameOf } from '../shared/meta.ts';
import { SENTINEL_QUORUM } from '../../engines/redis/config.ts';
import { RUNBOOK_BASE, SERIES_LABELS } from './names.ts';
import { BY_SHARD, BY_TIER, nsSeries, selector, tierSeries } from './promql.ts';
import { RECORD } from './recording.ts';

export type Severity = 'critical' | 'warning' | 'info';

export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: {
    readonly summary: string;
    readonly description: string;
    readonly runbook_url: string;
  };
}

/** Thresholds, in one place: docs/tiers/monitoring.md's alert table and the promtool tests read them. */
export const THRESHOLDS = {
  webRestarts15m: 3,
  cacheHitRatioDrop: 0.9,
  cacheMemory: 0.95,
  sessionsMemory: 0.85,
  dbVolume: 0.8,
  dbConnections: 0.8,
  /** The oldest client waiting for a server connection on a PgBouncer pod, in seconds. */
  poolerWaitSeconds: 1,
  /** Server connections in use, of the pool's size (default_pool_size). */
  poolerPoolUsed: 0.9,
  /** Client connections, of max_client_conn. */
  poolerClients: 0.8,
} as const;

interface AlertSpec {
  readonly alert: string;
  readonly tier: string;
  readonly expr: string;
  readonly for: string;
  readonly severity: Severity;
  readonly summary: string;
  readonly description: string;
  /** Operator-wide: no app labels, so every app's copy is one alert to Alertmanager. */
  readonly global?: boolean;
  /** Labels beyond severity, app and tier (the queue's consumer). */
  readonly labels?: Readonly<Record<string, string>>;
}

function rule(app: AppModel, a: AlertSpec): AlertRule {
  return {
    alert: a.alert,
    expr: a.expr,
    for: a.for,
    labels: {
      severity: a.severity,
      ...(a.global ? {} : { namespace: app.namespace, [SERIES_LABELS.app]: app.name }),
      [SERIES_LABELS.tier]: a.tier,
      ...a.labels,
    },
    annotations: {
      summary: a.summary,
      description: a.description,
      runbook_url: `${RUNBOOK_BASE}#${a.alert.toLowerCase()}`,
    },
  };
}

const pct = (x: number): string => `${Math.round(x * 100)} %`;
const SHARD = `{{ $labels.${SERIES_LABELS.shard} }}`;
const POD = '{{ $labels.pod }}';

function webAlerts(app: AppModel): AlertSpec[] {
  const name = nameOf(app, 'web');
  const where = `${app.namespace}/${app.name}`;
  return [
    {
      alert: 'ScalableWebNoReadyReplicas',
      tier: 'web',
      expr: `max(kube_deployment_status_replicas_available${nsSeries(app, { deployment: name })}) == 0`,
      for: '5m',
      severity: 'critical',
      summary: `${where}: no web pod is ready`,
      description: `Deployment ${name} of app ${where} has had no available replica for 5 minutes: the app serves nothing.`,
    },
    {
      alert: 'ScalableWebAtMaxReplicas',
      tier: 'web',
      expr:
        `max(kube_horizontalpodautoscaler_status_current_replicas${nsSeries(app, { horizontalpodautoscaler: name })})\n` +
        `>= max(kube_horizontalpodautoscaler_spec_max_replicas${nsSeries(app, { horizontalpodautoscaler: name })})`,
      for: '15m',
      severity: 'warning',
      summary: `${where}: web autoscaler pinned at maxReplicas (${app.web.autoscaling.maxReplicas})`,
      description: `The HorizontalPodAutoscaler ${name} of app ${where} has run at its maximum of ${app.web.autoscaling.maxReplicas} replicas for 15 minutes: load exceeds what the web tier may scale to.`,
    },
    {
      alert: 'ScalableWebPodsRestarting',
      tier: 'web',
      expr: `sum by (namespace, pod) (increase(kube_pod_container_status_restarts_total${nsSeries(
        app,
        {
          pod: `~${name}-[a-z0-9]+-[a-z0-9]+`,
          container: 'web',
        },
      )}[15m]))\n>= ${THRESHOLDS.webRestarts15m}`,
      for: '5m',
      severity: 'warning',
      summary: `${where}: web pod ${POD} keeps restarting`,
      description: `Web pod ${POD} of app ${where} restarted ${THRESHOLDS.webRestarts15m} or more times in 15 minutes (crashes or liveness failures).`,
    },
  ];
}

function cacheAlerts(app: AppModel, cache: NonNullable<AppModel['cache']>): AlertSpec[] {
  const where = `${app.namespace}/${app.name}`;
  const s = tierSeries(app, 'cache');
  const on = `on (${BY_TIER})`;
  // With allkeys-* a full cache is working as designed (it evicts); otherwise writes fail.
  const evictsAll = cache.evictionPolicy.startsWith('allkeys-');
  return [
    {
      alert: 'ScalableCacheEvictionsHitRatioFalling',
      tier: 'cache',
      expr:
        `${RECORD.evictions5m}${s} > 0\n` +
        `and ${on} ${RECORD.hitRatio5m}${s}\n` +
        `  < ${on} ${RECORD.hitRatio1h}${s} * ${THRESHOLDS.cacheHitRatioDrop}`,
      for: '15m',
      severity: 'warning',
      summary: `${where}: cache evicts while its hit ratio falls`,
      description: `The cache of app ${where} evicts keys and its 5-minute hit ratio is more than ${pct(1 - THRESHOLDS.cacheHitRatioDrop)} below its 1-hour ratio: the working set no longer fits cache.memory (${String(cache.memory)}).`,
    },
    {
      alert: 'ScalableCacheMemoryNearMax',
      tier: 'cache',
      expr: `${RECORD.memoryUsed}${s} > ${THRESHOLDS.cacheMemory}`,
      for: '15m',
      severity: evictsAll ? 'info' : 'warning',
      summary: `${where}: cache Redis ${POD} at ${pct(THRESHOLDS.cacheMemory)} of maxmemory`,
      description: evictsAll
        ? `Cache Redis ${POD} of app ${where} uses over ${pct(THRESHOLDS.cacheMemory)} of maxmemory (${String(cache.memory)}); with ${cache.evictionPolicy} it evicts the least useful keys, as designed.`
        : `Cache Redis ${POD} of app ${where} uses over ${pct(THRESHOLDS.cacheMemory)} of maxmemory (${String(cache.memory)}); with ${cache.evictionPolicy} only keys with a TTL can be evicted, then writes fail.`,
    },
    {
      alert: 'ScalableCacheNoMaster',
      tier: 'cache',
      // Exporters answer (targets up) but no Redis behind them says it is master.
      expr: `count(up${s}) unless count(redis_instance_info${tierSeries(app, 'cache', { role: 'master' })})`,
      for: '1m',
      severity: 'critical',
      summary: `${where}: the cache has no Redis master`,
      description: `No Redis of the cache of app ${where} reports role master for 1 minute: cache reads and writes fail${cache.replicas > 0 ? ' (Sentinel has not promoted a replica)' : ''}.`,
    },
    ...(cache.replicas > 0
      ? [
          <AlertSpec>{
            alert: 'ScalableCacheSentinelQuorumLost',
            tier: 'cache',
            expr: `max(kube_statefulset_status_replicas_ready${nsSeries(app, { statefulset: cacheNames(app).sentinel })}) < ${SENTINEL_QUORUM}`,
            for: '1m',
            severity: 'critical',
            summary: `${where}: Sentinel quorum lost`,
            description: `Fewer than ${SENTINEL_QUORUM} Sentinels of app ${where} are ready: a failed cache master will not be replaced, and clients cannot discover the master.`,
          },
        ]
      : []),
  ];
}

function sessionsAlerts(app: AppModel, sessions: NonNullable<AppModel['sessions']>): AlertSpec[] {
  const where = `${app.namespace}/${app.name}`;
  const s = tierSeries(app, 'sessions');
  return [
    {
      alert: 'ScalableSessionsMemoryNearMax',
      tier: 'sessions',
      expr: `${RECORD.memoryUsed}${s} > ${THRESHOLDS.sessionsMemory}`,
      for: '10m',
      severity: 'warning',
      summary: `${where}: session store at ${pct(THRESHOLDS.sessionsMemory)} of maxmemory`,
      description: `The session Redis of app ${where} uses over ${pct(THRESHOLDS.sessionsMemory)} of sessions.memory (${String(sessions.memory)}). It never evicts (noeviction): when full, new logins fail.`,
    },
    {
      alert: 'ScalableSessionsAOFWriteErrors',
      tier: 'sessions',
      expr: `min(redis_aof_last_write_status${s}) < 1 or min(redis_aof_last_bgrewrite_status${s}) < 1`,
      for: '1m',
      severity: 'critical',
      summary: `${where}: session store cannot write its append-only file`,
      description: `The session Redis of app ${where} reports a failed append-only-file write or rewrite: sessions written now may be lost on a restart, and Redis refuses writes while it cannot persist.`,
    },
  ];
}

function databaseAlerts(app: AppModel, db: NonNullable<AppModel['database']>): AlertSpec[] {
  const where = `${app.namespace}/${app.name}`;
  const s = tierSeries(app, 'database');
  const patroni = tierSeries(app, 'database', { endpoint: 'patroni' });
  const on = `on (${BY_SHARD})`;
  // The bound Patroni itself uses: a replica further behind is never promoted.
  const maxLag = patroniConfig(app, 0).bootstrap.dcs.maximum_lag_on_failover;
  const pvcs = `~data-${databaseName(app)}-[0-9]+-[0-9]+`;
  const volume = (metric: string) => `${metric}${nsSeries(app, { persistentvolumeclaim: pvcs })}`;
  return [
    {
      alert: 'ScalableDatabaseNoPrimary',
      tier: 'database',
      // Patroni answers on the shard's pods, but none of them holds the leader lock.
      expr: `count by (${BY_SHARD}) (up${patroni})\nunless ${on} (max by (${BY_SHARD}) (patroni_primary${s}) == 1)`,
      for: '1m',
      severity: 'critical',
      summary: `${where}: database shard ${SHARD} has no primary`,
      description: `No Patroni member of shard ${SHARD} of app ${where} is primary for 1 minute: writes to the shard fail.`,
    },
    {
      alert: 'ScalableDatabaseReplicationLag',
      tier: 'database',
      expr:
        `max by (${BY_SHARD}) (patroni_xlog_location${s})\n` +
        `- ${on} group_right max by (${BY_SHARD}, pod) (patroni_xlog_replayed_location${s} and on (pod) patroni_primary${s} == 0)\n` +
        `> ${maxLag}`,
      for: '5m',
      severity: 'warning',
      summary: `${where}: replica ${POD} of shard ${SHARD} lags`,
      description: `Replica ${POD} of shard ${SHARD} of app ${where} is more than ${maxLag} bytes of WAL behind its primary (Patroni's maximum_lag_on_failover): reads from it are stale and it cannot be promoted.`,
    },
    ...(db.synchronous
      ? [
          <AlertSpec>{
            alert: 'ScalableDatabaseNoSyncStandby',
            tier: 'database',
            expr: `count by (${BY_SHARD}) (patroni_primary${s} == 1)\nunless ${on} (max by (${BY_SHARD}) (patroni_sync_standby${s}) == 1)`,
            for: '5m',
            severity: 'critical',
            summary: `${where}: shard ${SHARD} has no synchronous standby`,
            description: `Shard ${SHARD} of app ${where} runs with database.synchronous but no replica is a synchronous standby: commits are acknowledged without a second copy, and a failover may lose them.`,
          },
        ]
      : []),
    {
      alert: 'ScalableDatabaseVolumeFull',
      tier: 'database',
      expr: `max by (namespace, persistentvolumeclaim) (${volume('kubelet_volume_stats_used_bytes')}\n/ ${volume('kubelet_volume_stats_capacity_bytes')}) > ${THRESHOLDS.dbVolume}`,
      for: '10m',
      severity: 'warning',
      summary: `${where}: database volume {{ $labels.persistentvolumeclaim }} over ${pct(THRESHOLDS.dbVolume)}`,
      description: `Volume {{ $labels.persistentvolumeclaim }} of app ${where} is over ${pct(THRESHOLDS.dbVolume)} full (database.storage.size ${String(db.storage.size)}): a full volume stops Postgres.`,
    },
    {
      alert: 'ScalableDatabaseConnectionsNearMax',
      tier: 'database',
      expr:
        `sum by (${BY_SHARD}, pod) (pg_stat_activity_count${s})\n` +
        `/ max by (${BY_SHARD}, pod) (pg_settings_max_connections${s}) > ${THRESHOLDS.dbConnections}`,
      for: '10m',
      severity: 'warning',
      summary: `${where}: ${POD} of shard ${SHARD} near max_connections`,
      description: `Postgres ${POD} of shard ${SHARD} of app ${where} uses over ${pct(THRESHOLDS.dbConnections)} of max_connections: new connections will soon be refused.`,
    },
  ];
}

/**
 * Per shard's PgBouncer pods (pgbouncer_exporter: SHOW POOLS, DATABASES, LISTS, CONFIG of
 * each pod). The app's own pool is database = user = the app's database name; the auth
 * role's pool and the admin console are left out.
 */
function poolerAlerts(app: AppModel, pooler: PoolerModel): AlertSpec[] {
  const where = `${app.namespace}/${app.name}`;
  const db = appDatabaseName(app);
  const s = tierSeries(app, 'pooler');
  const appPool = tierSeries(app, 'pooler', { database: db, user: db });
  const by = `${BY_SHARD}, pod`;
  const on = `on (${by})`;
  return [
    {
      alert: 'ScalablePoolerClientsWaiting',
      tier: 'pooler',
      expr: `max by (${by}) (pgbouncer_pools_client_maxwait_seconds${appPool}) >= ${THRESHOLDS.poolerWaitSeconds}`,
      for: '5m',
      severity: 'warning',
      summary: `${where}: clients of shard ${SHARD} wait for a Postgres connection on ${POD}`,
      description: `On PgBouncer pod ${POD} of shard ${SHARD} of app ${where} the oldest waiting client has waited ${THRESHOLDS.poolerWaitSeconds} s or more, for 5 minutes: every server connection of the pool (defaultPoolSize ${pooler.defaultPoolSize}, reservePoolSize ${pooler.reservePoolSize}) is taken and transactions queue behind it.`,
    },
    {
      alert: 'ScalablePoolerPoolSaturated',
      tier: 'pooler',
      expr:
        `max by (${by}) (pgbouncer_pools_server_active_connections${appPool})\n` +
        `/ ${on} max by (${by}) (pgbouncer_databases_pool_size${tierSeries(app, 'pooler', { name: db })})\n` +
        `>= ${THRESHOLDS.poolerPoolUsed}`,
      for: '15m',
      severity: 'warning',
      summary: `${where}: the pool of shard ${SHARD} on ${POD} is ${pct(THRESHOLDS.poolerPoolUsed)} in use`,
      description: `PgBouncer pod ${POD} of shard ${SHARD} of app ${where} has had ${pct(THRESHOLDS.poolerPoolUsed)} or more of its ${pooler.defaultPoolSize} server connections (defaultPoolSize) in a transaction for 15 minutes: a little more load and clients wait.`,
    },
    {
      alert: 'ScalablePoolerClientConnectionsNearMax',
      tier: 'pooler',
      expr:
        `max by (${by}) (pgbouncer_used_clients${s})\n` +
        `/ ${on} max by (${by}) (pgbouncer_config_max_client_connections${s})\n` +
        `> ${THRESHOLDS.poolerClients}`,
      for: '10m',
      severity: 'warning',
      summary: `${where}: ${POD} of shard ${SHARD} near its client connection limit`,
      description: `PgBouncer pod ${POD} of shard ${SHARD} of app ${where} holds over ${pct(THRESHOLDS.poolerClients)} of its ${pooler.maxClientConnections} client connections (maxClientConnections): new app connections will soon be refused.`,
    },
  ];
}

/** KEDA names the HorizontalPodAutoscaler it creates for a ScaledObject keda-hpa-<name>. */
export const kedaHpaName = (scaledObject: string): string => `keda-hpa-${scaledObject}`;

/** Per consumer: its group's lag, its dead-letter stream, its workers against maxReplicas. */
function queueAlerts(app: AppModel, queue: NonNullable<AppModel['queue']>): AlertSpec[] {
  const where = `${app.namespace}/${app.name}`;
  return queue.consumers.flatMap((c): AlertSpec[] => {
    const workers = workerName(app, c);
    const stream = streamOf(c);
    const group = groupOf(c);
    const dead = deadLetterStreamOf(c);
    const labels = { consumer: c.name };
    const lag = tierSeries(app, 'queue', { stream, group });
    const by = `${BY_TIER}, stream, group`;
    const deadLen = `max by (${BY_TIER}, stream) (redis_stream_length${tierSeries(app, 'queue', { stream: dead })}`;
    const hpa = kedaHpaName(workers);
    return [
      {
        alert: 'ScalableQueueLagGrowing',
        tier: 'queue',
        labels,
        // Lag: entries not yet delivered to the group (redis_exporter >= 1.52 on Redis 7).
        expr: `max by (${by}) (deriv(redis_stream_group_lag${lag}[5m])) > 0`,
        for: '10m',
        severity: 'warning',
        summary: `${where}: queue consumer ${c.name} falls behind on stream ${stream}`,
        description: `The lag of consumer group ${group} on stream ${stream} (consumer ${c.name}, workers ${workers}) of app ${where} has grown for 10 minutes: the workers do not keep up (maxReplicas ${c.maxReplicas}) or none is running.`,
      },
      {
        alert: 'ScalableQueueDeadLetters',
        tier: 'queue',
        labels,
        // Longer than 10 minutes ago, or there and non-empty where it was absent then.
        expr: `${deadLen})
> (${deadLen} offset 10m) or ${deadLen}) * 0)`,
        for: '0m',
        severity: 'warning',
        summary: `${where}: messages of consumer ${c.name} go to the dead-letter stream ${dead}`,
        description: `The dead-letter stream ${dead} of app ${where} grew in the last 10 minutes: workers ${workers} (consumer ${c.name}) failed messages ${c.maxDeliveries} times each. They stay there until someone looks.`,
      },
      {
        alert: 'ScalableQueueWorkersAtMax',
        tier: 'queue',
        labels,
        expr: `max(kube_horizontalpodautoscaler_status_current_replicas${nsSeries(app, { horizontalpodautoscaler: hpa })}) >= ${c.maxReplicas}`,
        for: '15m',
        severity: 'warning',
        summary: `${where}: workers of consumer ${c.name} pinned at maxReplicas (${c.maxReplicas})`,
        description: `KEDA has run the workers ${workers} (consumer ${c.name}, stream ${stream}) of app ${where} at their maximum of ${c.maxReplicas} replicas for 15 minutes: the backlog needs more workers than the queue may scale to.`,
      },
    ];
  });
}

/** The operator's own health as it touches this app (metrics of operator/runtime/metrics.ts). */
function operatorAlerts(app: AppModel): AlertSpec[] {
  const where = `${app.namespace}/${app.name}`;
  return [
    {
      alert: 'ScalableOperatorReconcileErrors',
      tier: 'operator',
      expr: `sum(rate(scalable_reconcile_total${selector({ result: 'error' })}[5m])) > 0`,
      for: '15m',
      severity: 'warning',
      summary: 'scalable-operator: reconciles keep failing',
      global: true,
      description: `The operator has failed reconciles continuously for 15 minutes; changes to ScalableApps (${where} among them) may not be applied.`,
    },
    {
      alert: 'ScalableAppNotReady',
      tier: 'operator',
      expr: `max(scalable_app_ready${selector({ namespace: app.namespace, name: app.name })}) == 0`,
      for: '15m',
      severity: 'warning',
      summary: `${where}: not Ready for 15 minutes`,
      description: `ScalableApp ${where} has not been Ready for 15 minutes: kubectl describe sapp ${app.name} -n ${app.namespace} names the tier that is not.`,
    },
  ];
}

export interface AlertGroup {
  readonly name: string;
  readonly rules: readonly AlertRule[];
}

/** One group per tier that is on, then the operator's. */
export function alertGroups(app: AppModel): AlertGroup[] {
  const pooler = poolerOf(app);
  const groups: Array<[string, AlertSpec[]]> = [
    ['web', webAlerts(app)],
    ['cache', app.cache ? cacheAlerts(app, app.cache) : []],
    ['sessions', app.sessions ? sessionsAlerts(app, app.sessions) : []],
    ['database', app.database ? databaseAlerts(app, app.database) : []],
    ['pooler', pooler ? poolerAlerts(app, pooler) : []],
    ['queue', app.queue ? queueAlerts(app, app.queue) : []],
    ['operator', operatorAlerts(app)],
  ];
  return groups
    .filter(([, specs]) => specs.length > 0)
    .map(([tier, specs]) => ({
      name: `${app.namespace}.${app.name}.${tier}.alerts`,
      rules: specs.map((a) => rule(app, a)),
    }));
}
