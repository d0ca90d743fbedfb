// The rendered PrometheusRules and dashboard queries, judged by the real promtool (built by
// the devcluster from the module proxy): `promtool check rules` on every rendered rule,
// `promtool test rules` giving every alert input series where it must fire and where it
// must stay silent (with another app's failures present), and every dashboard query parsed.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { toModel } from '../../operator/api/model.ts';
import { parseApps } from '../../operator/api/parse.ts';
import type { AppModel } from '../../operator/api/model.ts';
import { buildAll } from '../../operator/tiers/index.ts';
import { modelOf } from '../../operator/tiers/shared/test-helpers.ts';
import { alertGroups } from '../../operator/tiers/monitoring/alerts.ts';
import { dashboardRows } from '../../operator/tiers/monitoring/dashboard.ts';
import { patroniConfig } from '../../operator/tiers/database/patroni-config.ts';
import {
  everything,
  exec,
  other,
  promBinary,
  ruleOf,
  series,
  targetOf,
} from './monitoring-fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'scalable-promtool-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function promtool(...args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await exec(promBinary('promtool'), args, { cwd: dir });
    return stdout + stderr;
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    throw new Error(`promtool ${args.join(' ')} failed:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
  }
}

const write = (name: string, doc: unknown): string => {
  writeFileSync(join(dir, name), yaml.dump(doc, { lineWidth: -1, noRefs: true }));
  return name;
};

const SHAPES: Record<string, AppModel> = {
  everything,
  other,
  'cache only, volatile policy': modelOf({
    cache: { evictionPolicy: 'volatile-lru' },
    monitoring: {},
  }),
  'web only': modelOf({ monitoring: {} }),
  'no alerts (recording rules only)': modelOf({
    cache: {},
    sessions: {},
    monitoring: { alerts: false },
  }),
};

describe('promtool check rules', () => {
  it.each(Object.keys(SHAPES))('%s', async (shape) => {
    const file = write(
      `check-${shape.replace(/\W+/g, '-')}.yaml`,
      ruleOf(buildAll(SHAPES[shape]!)),
    );
    expect(await promtool('check', 'rules', file)).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('the full example (manifests/examples/full.yaml)', async () => {
    const parsed = parseApps(readFileSync('manifests/examples/full.yaml', 'utf8'));
    const first = parsed.results[0];
    if (!first?.ok) throw new Error('full.yaml does not validate');
    const file = write('check-full-example.yaml', ruleOf(buildAll(toModel(first.app))));
    expect(await promtool('check', 'rules', file)).toMatch(/SUCCESS: \d+ rules found/);
  });
});

describe('every dashboard query parses', () => {
  it.each(Object.keys(SHAPES))('%s', async (shape) => {
    const queries = dashboardRows(SHAPES[shape]!).flatMap((r) =>
      r.panels.flatMap((p) => p.queries),
    );
    expect(queries.length).toBeGreaterThan(0);
    const file = write(`dashboard-${shape.replace(/\W+/g, '-')}.yaml`, {
      groups: [
        {
          name: 'dashboard',
          rules: queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: q.expr })),
        },
      ],
    });
    expect(await promtool('check', 'rules', file)).toContain(
      `SUCCESS: ${queries.length} rules found`,
    );
  });
});

// ---- promtool test rules: every alert fires on its failure and stays silent without it ----

interface Input {
  readonly series: string;
  readonly values: string;
}
interface Case {
  readonly alert: string;
  readonly at: string;
  /** Labels the expression yields beyond the rule's own. */
  readonly labels: Record<string, string>;
  readonly fire: readonly Input[];
  readonly silent: readonly Input[];
}

const MiB = 2 ** 20;
const cumulative = (...segments: Array<[perMinute: number, minutes: number]>): string => {
  let v = 0;
  const out = [v];
  for (const [rate, n] of segments) for (let i = 0; i < n; i++) out.push((v += rate));
  return out.join(' ');
};

const cache0 = targetOf(everything, 'cache', 'shop-cache-0');
const cache1 = targetOf(everything, 'cache', 'shop-cache-1');
const sessions0 = targetOf(everything, 'sessions', 'shop-sessions-0');
const otherCache = targetOf(other, 'cache', 'other-cache-5d8f7c9b4-x2x7q');
const otherSessions = targetOf(other, 'sessions', 'other-sessions-0');
const db = (shard: number, ordinal: number, port = 'metrics') =>
  targetOf(everything, 'database', `shop-db-${shard}-${ordinal}`, port);
const queue0 = targetOf(everything, 'queue', 'shop-queue-0');
const otherQueue0 = targetOf(other, 'queue', 'other-queue-0');
const otherDb = (port = 'metrics') => targetOf(other, 'database', 'other-db-0-0', port);
const input = (metric: string, labels: Record<string, string>, values: string): Input => ({
  series: series(metric, labels),
  values,
});
const ksm = (metric: string, labels: Record<string, string>, values: string): Input =>
  input(metric, { namespace: 'prod', job: 'kube-state-metrics', ...labels }, values);

/** A PgBouncer pod of shard `shard` (a Deployment's pod name), and the other app's. */
const pooler = (shard: number) =>
  targetOf(everything, 'pooler', `shop-db-${shard}-pooler-5d8f7c9b4-x2x7q`);
const otherPooler = targetOf(other, 'pooler', 'other-db-0-pooler-5d8f7c9b4-x2x7q');
/** The app's own pool (database = user = the app's database), as SHOW POOLS labels it. */
const appPool = { database: 'shop', user: 'shop' };

const maxLag = patroniConfig(everything, 0).bootstrap.dcs.maximum_lag_on_failover;
const webPod = 'shop-web-5d8f7c9b4-x2x7q';

const CASES: Case[] = [
  {
    alert: 'ScalableWebNoReadyReplicas',
    at: '10m',
    labels: {},
    fire: [ksm('kube_deployment_status_replicas_available', { deployment: 'shop-web' }, '0x15')],
    silent: [
      ksm('kube_deployment_status_replicas_available', { deployment: 'shop-web' }, '2x15'),
      ksm('kube_deployment_status_replicas_available', { deployment: 'other-web' }, '0x15'),
    ],
  },
  {
    alert: 'ScalableWebAtMaxReplicas',
    at: '20m',
    labels: {},
    fire: [
      ksm(
        'kube_horizontalpodautoscaler_status_current_replicas',
        { horizontalpodautoscaler: 'shop-web' },
        '10x25',
      ),
      ksm(
        'kube_horizontalpodautoscaler_spec_max_replicas',
        { horizontalpodautoscaler: 'shop-web' },
        '10x25',
      ),
    ],
    silent: [
      ksm(
        'kube_horizontalpodautoscaler_status_current_replicas',
        { horizontalpodautoscaler: 'shop-web' },
        '9x25',
      ),
      ksm(
        'kube_horizontalpodautoscaler_spec_max_replicas',
        { horizontalpodautoscaler: 'shop-web' },
        '10x25',
      ),
      ksm(
        'kube_horizontalpodautoscaler_status_current_replicas',
        { horizontalpodautoscaler: 'other-web' },
        '10x25',
      ),
      ksm(
        'kube_horizontalpodautoscaler_spec_max_replicas',
        { horizontalpodautoscaler: 'other-web' },
        '10x25',
      ),
    ],
  },
  {
    alert: 'ScalableWebPodsRestarting',
    at: '20m',
    labels: { pod: webPod },
    fire: [
      ksm(
        'kube_pod_container_status_restarts_total',
        { pod: webPod, container: 'web' },
        cumulative([1, 25]),
      ),
    ],
    silent: [
      ksm('kube_pod_container_status_restarts_total', { pod: webPod, container: 'web' }, '4x25'),
      ksm(
        'kube_pod_container_status_restarts_total',
        { pod: 'other-web-5d8f7c9b4-x2x7q', container: 'web' },
        cumulative([1, 25]),
      ),
    ],
  },
  {
    alert: 'ScalableCacheEvictionsHitRatioFalling',
    at: '90m',
    labels: {},
    fire: [
      input('redis_keyspace_hits_total', cache0, cumulative([100, 60], [20, 30])),
      input('redis_keyspace_misses_total', cache0, cumulative([10, 60], [90, 30])),
      input('redis_evicted_keys_total', cache0, cumulative([5, 90])),
    ],
    silent: [
      // Evicting with a steady hit ratio: the cache is full and doing its job.
      input('redis_keyspace_hits_total', cache0, cumulative([100, 90])),
      input('redis_keyspace_misses_total', cache0, cumulative([10, 90])),
      input('redis_evicted_keys_total', cache0, cumulative([5, 90])),
      input('redis_keyspace_hits_total', otherCache, cumulative([100, 60], [20, 30])),
      input('redis_keyspace_misses_total', otherCache, cumulative([10, 60], [90, 30])),
      input('redis_evicted_keys_total', otherCache, cumulative([5, 90])),
    ],
  },
  {
    alert: 'ScalableCacheMemoryNearMax',
    at: '20m',
    labels: { pod: 'shop-cache-1' },
    fire: [
      input('redis_memory_used_bytes', cache1, `${0.97 * 512 * MiB}x25`),
      input('redis_memory_max_bytes', cache1, `${512 * MiB}x25`),
    ],
    silent: [
      input('redis_memory_used_bytes', cache1, `${0.5 * 512 * MiB}x25`),
      input('redis_memory_max_bytes', cache1, `${512 * MiB}x25`),
      input('redis_memory_used_bytes', otherCache, `${512 * MiB}x25`),
      input('redis_memory_max_bytes', otherCache, `${512 * MiB}x25`),
    ],
  },
  {
    alert: 'ScalableCacheNoMaster',
    at: '15m',
    labels: {},
    fire: [
      input('up', cache0, '1x20'),
      input('up', cache1, '1x20'),
      input('redis_instance_info', { ...cache0, role: 'master' }, '1x5 stale'),
      input('redis_instance_info', { ...cache1, role: 'slave' }, '1x20'),
    ],
    silent: [
      input('up', cache0, '1x20'),
      input('up', cache1, '1x20'),
      input('redis_instance_info', { ...cache0, role: 'slave' }, '1x5 stale'),
      // A failover: the other pod is master now.
      input('redis_instance_info', { ...cache1, role: 'slave' }, '1x5'),
      input('redis_instance_info', { ...cache1, role: 'master' }, '_x5 1x15'),
      input('up', otherCache, '1x20'),
    ],
  },
  {
    alert: 'ScalableCacheSentinelQuorumLost',
    at: '5m',
    labels: {},
    fire: [
      ksm('kube_statefulset_status_replicas_ready', { statefulset: 'shop-cache-sentinel' }, '1x10'),
    ],
    silent: [
      ksm('kube_statefulset_status_replicas_ready', { statefulset: 'shop-cache-sentinel' }, '2x10'),
    ],
  },
  {
    alert: 'ScalableSessionsMemoryNearMax',
    at: '15m',
    labels: { pod: 'shop-sessions-0' },
    fire: [
      input('redis_memory_used_bytes', sessions0, `${0.9 * 256 * MiB}x20`),
      input('redis_memory_max_bytes', sessions0, `${256 * MiB}x20`),
    ],
    silent: [
      input('redis_memory_used_bytes', sessions0, `${0.5 * 256 * MiB}x20`),
      input('redis_memory_max_bytes', sessions0, `${256 * MiB}x20`),
      input('redis_memory_used_bytes', otherSessions, `${256 * MiB}x20`),
      input('redis_memory_max_bytes', otherSessions, `${256 * MiB}x20`),
      // The cache may be full: that is not the session store.
      input('redis_memory_used_bytes', cache0, `${512 * MiB}x20`),
      input('redis_memory_max_bytes', cache0, `${512 * MiB}x20`),
    ],
  },
  {
    alert: 'ScalableSessionsAOFWriteErrors',
    at: '5m',
    labels: {},
    fire: [
      input('redis_aof_last_write_status', sessions0, '1 0x10'),
      input('redis_aof_last_bgrewrite_status', sessions0, '1x10'),
    ],
    silent: [
      input('redis_aof_last_write_status', sessions0, '1x10'),
      input('redis_aof_last_bgrewrite_status', sessions0, '1x10'),
      input('redis_aof_last_write_status', otherSessions, '0x10'),
    ],
  },
  {
    alert: 'ScalableDatabaseNoPrimary',
    at: '5m',
    labels: { scalable_shard: '1' },
    fire: [
      ...[0, 1].flatMap((s) => [0, 1].map((o) => input('up', db(s, o, 'patroni'), '1x10'))),
      input('patroni_primary', db(0, 0, 'patroni'), '1x10'),
      input('patroni_primary', db(0, 1, 'patroni'), '0x10'),
      input('patroni_primary', db(1, 0, 'patroni'), '1 0x10'),
      input('patroni_primary', db(1, 1, 'patroni'), '0x10'),
    ],
    silent: [
      ...[0, 1].flatMap((s) => [0, 1].map((o) => input('up', db(s, o, 'patroni'), '1x10'))),
      input('patroni_primary', db(0, 0, 'patroni'), '1x10'),
      input('patroni_primary', db(0, 1, 'patroni'), '0x10'),
      // Shard 1 failed over from pod 0 to pod 1.
      input('patroni_primary', db(1, 0, 'patroni'), '1 0x10'),
      input('patroni_primary', db(1, 1, 'patroni'), '0 1x10'),
      input('up', otherDb('patroni'), '1x10'),
      input('patroni_primary', otherDb('patroni'), '0x10'),
    ],
  },
  {
    alert: 'ScalableDatabaseReplicationLag',
    at: '10m',
    labels: { scalable_shard: '0', pod: 'shop-db-0-1' },
    fire: [
      input('patroni_primary', db(0, 0, 'patroni'), '1x15'),
      input('patroni_primary', db(0, 1, 'patroni'), '0x15'),
      input('patroni_xlog_location', db(0, 0, 'patroni'), `${100 * MiB}x15`),
      input('patroni_xlog_location', db(0, 1, 'patroni'), '0x15'),
      input('patroni_xlog_replayed_location', db(0, 0, 'patroni'), '0x15'),
      input('patroni_xlog_replayed_location', db(0, 1, 'patroni'), `${100 * MiB - maxLag - 1}x15`),
    ],
    silent: [
      input('patroni_primary', db(0, 0, 'patroni'), '1x15'),
      input('patroni_primary', db(0, 1, 'patroni'), '0x15'),
      input('patroni_xlog_location', db(0, 0, 'patroni'), `${100 * MiB}x15`),
      input('patroni_xlog_location', db(0, 1, 'patroni'), '0x15'),
      input('patroni_xlog_replayed_location', db(0, 0, 'patroni'), '0x15'),
      input('patroni_xlog_replayed_location', db(0, 1, 'patroni'), `${100 * MiB - maxLag / 2}x15`),
    ],
  },
  {
    alert: 'ScalableDatabaseNoSyncStandby',
    at: '10m',
    labels: { scalable_shard: '0' },
    fire: [
      input('patroni_primary', db(0, 0, 'patroni'), '1x15'),
      input('patroni_primary', db(0, 1, 'patroni'), '0x15'),
      input('patroni_sync_standby', db(0, 0, 'patroni'), '0x15'),
      input('patroni_sync_standby', db(0, 1, 'patroni'), '1 0x15'),
    ],
    silent: [
      input('patroni_primary', db(0, 0, 'patroni'), '1x15'),
      input('patroni_primary', db(0, 1, 'patroni'), '0x15'),
      input('patroni_sync_standby', db(0, 0, 'patroni'), '0x15'),
      input('patroni_sync_standby', db(0, 1, 'patroni'), '1x15'),
    ],
  },
  {
    alert: 'ScalableDatabaseVolumeFull',
    at: '15m',
    labels: { persistentvolumeclaim: 'data-shop-db-1-0' },
    fire: [
      input(
        'kubelet_volume_stats_used_bytes',
        { namespace: 'prod', persistentvolumeclaim: 'data-shop-db-1-0' },
        `${17 * 1024 * MiB}x20`,
      ),
      input(
        'kubelet_volume_stats_capacity_bytes',
        { namespace: 'prod', persistentvolumeclaim: 'data-shop-db-1-0' },
        `${20 * 1024 * MiB}x20`,
      ),
    ],
    silent: [
      input(
        'kubelet_volume_stats_used_bytes',
        { namespace: 'prod', persistentvolumeclaim: 'data-shop-db-1-0' },
        `${10 * 1024 * MiB}x20`,
      ),
      input(
        'kubelet_volume_stats_capacity_bytes',
        { namespace: 'prod', persistentvolumeclaim: 'data-shop-db-1-0' },
        `${20 * 1024 * MiB}x20`,
      ),
      input(
        'kubelet_volume_stats_used_bytes',
        { namespace: 'prod', persistentvolumeclaim: 'data-shop-sessions-0' },
        `${19 * 1024 * MiB}x20`,
      ),
      input(
        'kubelet_volume_stats_capacity_bytes',
        { namespace: 'prod', persistentvolumeclaim: 'data-shop-sessions-0' },
        `${20 * 1024 * MiB}x20`,
      ),
      input(
        'kubelet_volume_stats_used_bytes',
        { namespace: 'prod', persistentvolumeclaim: 'data-other-db-0-0' },
        `${19 * 1024 * MiB}x20`,
      ),
      input(
        'kubelet_volume_stats_capacity_bytes',
        { namespace: 'prod', persistentvolumeclaim: 'data-other-db-0-0' },
        `${20 * 1024 * MiB}x20`,
      ),
    ],
  },
  {
    alert: 'ScalableDatabaseConnectionsNearMax',
    at: '15m',
    labels: { scalable_shard: '0', pod: 'shop-db-0-0' },
    fire: [
      input('pg_stat_activity_count', { ...db(0, 0), datname: 'shop', state: 'idle' }, '120x20'),
      input('pg_stat_activity_count', { ...db(0, 0), datname: 'shop', state: 'active' }, '50x20'),
      input('pg_settings_max_connections', db(0, 0), '200x20'),
    ],
    silent: [
      input('pg_stat_activity_count', { ...db(0, 0), datname: 'shop', state: 'idle' }, '60x20'),
      input('pg_settings_max_connections', db(0, 0), '200x20'),
      input('pg_stat_activity_count', { ...otherDb(), datname: 'other', state: 'idle' }, '195x20'),
      input('pg_settings_max_connections', otherDb(), '200x20'),
    ],
  },
  {
    alert: 'ScalableOperatorReconcileErrors',
    at: '25m',
    labels: {},
    fire: [
      input(
        'scalable_reconcile_total',
        { namespace: 'scalable-system', result: 'error' },
        cumulative([1, 30]),
      ),
    ],
    silent: [
      input('scalable_reconcile_total', { namespace: 'scalable-system', result: 'error' }, '3x30'),
      input(
        'scalable_reconcile_total',
        { namespace: 'scalable-system', result: 'ready' },
        cumulative([10, 30]),
      ),
    ],
  },
  {
    alert: 'ScalablePoolerClientsWaiting',
    at: '10m',
    labels: { scalable_shard: '1', pod: pooler(1)['pod']! },
    fire: [
      input('pgbouncer_pools_client_maxwait_seconds', { ...pooler(1), ...appPool }, '0x3 2x12'),
      input('pgbouncer_pools_client_maxwait_seconds', { ...pooler(0), ...appPool }, '0x15'),
    ],
    silent: [
      // A burst shorter than 5 minutes; the auth role's pool; another app's pooler.
      input('pgbouncer_pools_client_maxwait_seconds', { ...pooler(1), ...appPool }, '0x6 3x3 0x6'),
      input(
        'pgbouncer_pools_client_maxwait_seconds',
        { ...pooler(1), database: 'shop', user: 'scalable-pooler' },
        '4x15',
      ),
      input(
        'pgbouncer_pools_client_maxwait_seconds',
        { ...otherPooler, database: 'other', user: 'other' },
        '9x15',
      ),
    ],
  },
  {
    alert: 'ScalablePoolerPoolSaturated',
    at: '20m',
    labels: { scalable_shard: '0', pod: pooler(0)['pod']! },
    fire: [
      input('pgbouncer_pools_server_active_connections', { ...pooler(0), ...appPool }, '19x25'),
      input(
        'pgbouncer_databases_pool_size',
        { ...pooler(0), name: 'shop', database: 'shop' },
        '20x25',
      ),
    ],
    silent: [
      input('pgbouncer_pools_server_active_connections', { ...pooler(0), ...appPool }, '12x25'),
      input(
        'pgbouncer_databases_pool_size',
        { ...pooler(0), name: 'shop', database: 'shop' },
        '20x25',
      ),
      // Saturated for 10 minutes only, then relieved.
      input(
        'pgbouncer_pools_server_active_connections',
        { ...pooler(1), ...appPool },
        '20x10 5x15',
      ),
      input(
        'pgbouncer_databases_pool_size',
        { ...pooler(1), name: 'shop', database: 'shop' },
        '20x25',
      ),
      input(
        'pgbouncer_pools_server_active_connections',
        { ...otherPooler, database: 'other', user: 'other' },
        '20x25',
      ),
      input(
        'pgbouncer_databases_pool_size',
        { ...otherPooler, name: 'other', database: 'other' },
        '20x25',
      ),
    ],
  },
  {
    alert: 'ScalablePoolerClientConnectionsNearMax',
    at: '15m',
    labels: { scalable_shard: '0', pod: pooler(0)['pod']! },
    fire: [
      input('pgbouncer_used_clients', pooler(0), '900x20'),
      input('pgbouncer_config_max_client_connections', pooler(0), '1000x20'),
    ],
    silent: [
      input('pgbouncer_used_clients', pooler(0), '500x20'),
      input('pgbouncer_config_max_client_connections', pooler(0), '1000x20'),
      input('pgbouncer_used_clients', otherPooler, '990x20'),
      input('pgbouncer_config_max_client_connections', otherPooler, '1000x20'),
    ],
  },
  {
    alert: 'ScalableQueueLagGrowing',
    at: '20m',
    labels: { stream: 'orders', group: 'orders' },
    fire: [
      input(
        'redis_stream_group_lag',
        { ...queue0, db: 'db0', stream: 'orders', group: 'orders' },
        cumulative([5, 25]),
      ),
    ],
    silent: [
      // A standing backlog that does not grow, and a growing one of another app.
      input(
        'redis_stream_group_lag',
        { ...queue0, db: 'db0', stream: 'orders', group: 'orders' },
        '100x25',
      ),
      input(
        'redis_stream_group_lag',
        { ...otherQueue0, db: 'db0', stream: 'orders', group: 'orders' },
        cumulative([5, 25]),
      ),
    ],
  },
  {
    alert: 'ScalableQueueDeadLetters',
    at: '20m',
    labels: { stream: 'orders:dead' },
    // The dead-letter stream appears at minute 16 (absent before).
    fire: [
      input('redis_stream_length', { ...queue0, db: 'db0', stream: 'orders:dead' }, '_x16 2x10'),
    ],
    silent: [
      // Old dead letters, none new; another app's growing ones.
      input('redis_stream_length', { ...queue0, db: 'db0', stream: 'orders:dead' }, '3x25'),
      input(
        'redis_stream_length',
        { ...otherQueue0, db: 'db0', stream: 'orders:dead' },
        '2x10 5x15',
      ),
    ],
  },
  {
    alert: 'ScalableQueueDeadLetters',
    at: '15m',
    labels: { stream: 'orders:dead' },
    // Longer than 10 minutes ago.
    fire: [
      input('redis_stream_length', { ...queue0, db: 'db0', stream: 'orders:dead' }, '2x10 5x15'),
    ],
    silent: [
      input('redis_stream_length', { ...queue0, db: 'db0', stream: 'orders:dead' }, '5x10 2x15'),
    ],
  },
  {
    alert: 'ScalableQueueWorkersAtMax',
    at: '20m',
    labels: {},
    fire: [
      ksm(
        'kube_horizontalpodautoscaler_status_current_replicas',
        { horizontalpodautoscaler: 'keda-hpa-shop-worker-orders' },
        '8x25',
      ),
    ],
    silent: [
      ksm(
        'kube_horizontalpodautoscaler_status_current_replicas',
        { horizontalpodautoscaler: 'keda-hpa-shop-worker-orders' },
        '8x5 7x20',
      ),
      ksm(
        'kube_horizontalpodautoscaler_status_current_replicas',
        { horizontalpodautoscaler: 'keda-hpa-other-worker-orders' },
        '8x25',
      ),
    ],
  },
  {
    alert: 'ScalableAppNotReady',
    at: '20m',
    labels: {},
    fire: [input('scalable_app_ready', { namespace: 'prod', name: 'shop' }, '0x25')],
    silent: [
      input('scalable_app_ready', { namespace: 'prod', name: 'shop' }, '1x25'),
      input('scalable_app_ready', { namespace: 'prod', name: 'other' }, '0x25'),
    ],
  },
];

/** An annotation as Prometheus renders it for an alert with these labels. */
const render = (text: string, labels: Record<string, string>) =>
  text.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, k: string) => labels[k] ?? '');

describe('promtool test rules', () => {
  const rules = alertGroups(everything).flatMap((g) => g.rules);
  const rulesFile = write('rules.yaml', ruleOf(buildAll(everything)));

  it('has a case for every alert', () => {
    expect([...new Set(CASES.map((c) => c.alert))].sort()).toEqual(
      rules.map((r) => r.alert).sort(),
    );
  });

  it.each(CASES.map((c) => [`${c.alert} at ${c.at}`, c] as const))(
    '%s fires on its failure and only then',
    async (_, c) => {
      const rule = rules.find((r) => r.alert === c.alert);
      if (!rule) throw new Error(`no rule ${c.alert}`);
      const labels = { ...rule.labels, ...c.labels };
      const annotations = Object.fromEntries(
        Object.entries(rule.annotations).map(([k, v]) => [k, render(v, labels)]),
      );
      const test = (inputs: readonly Input[], fires: boolean) => ({
        interval: '1m',
        input_series: inputs,
        alert_rule_test: [
          {
            eval_time: c.at,
            alertname: c.alert,
            exp_alerts: fires ? [{ exp_labels: labels, exp_annotations: annotations }] : [],
          },
        ],
      });
      const file = write(`test-${c.alert}-${c.at}.yaml`, {
        rule_files: [rulesFile],
        evaluation_interval: '1m',
        tests: [test(c.fire, true), test(c.silent, false)],
      });
      expect(await promtool('test', 'rules', file)).toContain('SUCCESS');
    },
  );
});
