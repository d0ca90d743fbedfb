// A Grafana dashboard per app, as a ConfigMap Grafana's sidecar loads (label
// grafana_dashboard: "1"): a row per tier that is on, the chapter's questions on one screen.
// Queries name the app's own series, so the dashboard needs no variables but the data source.
import { createHash } from 'node:crypto';
import type { AppModel } from '../../api/model.ts';
import type { K8sObject } from '../shared/chart.ts';
import { nameOf } from '../shared/meta.ts';
import { monitoringMetadata } from './meta.ts';
import { DASHBOARD_LABEL, SERIES_LABELS, dashboardName } from './names.ts';
import { BY_SHARD, nsSeries, tierSeries } from './promql.ts';
import { RECORD } from './recording.ts';
import { kedaHpaName } from './alerts.ts';
import { workerName } from '../queue/workers.ts';

export interface Query {
  readonly expr: string;
  readonly legend: string;
}
export interface Panel {
  readonly title: string;
  readonly unit: string;
  readonly queries: readonly Query[];
}
export interface Row {
  readonly title: string;
  readonly panels: readonly Panel[];
}

/** The HTTP histogram the web panels read: prom-client's / express-prom-bundle's name. */
export const HTTP_HISTOGRAM = 'http_request_duration_seconds';

const q = (expr: string, legend: string): Query => ({ expr, legend });
const SHARD = `shard {{${SERIES_LABELS.shard}}}`;

function webRow(app: AppModel): Row {
  const name = nameOf(app, 'web');
  const hpa = nsSeries(app, { horizontalpodautoscaler: name });
  const s = tierSeries(app, 'web');
  const http: Panel[] = app.web.metrics
    ? [
        {
          title: 'Requests per second',
          unit: 'reqps',
          queries: [q(`sum by (code) (rate(${HTTP_HISTOGRAM}_count${s}[5m]))`, '{{code}}')],
        },
        {
          title: 'Latency',
          unit: 's',
          queries: [0.5, 0.99].map((p) =>
            q(
              `histogram_quantile(${p}, sum by (le) (rate(${HTTP_HISTOGRAM}_bucket${s}[5m])))`,
              `p${p * 100}`,
            ),
          ),
        },
      ]
    : [];
  return {
    title: 'Web',
    panels: [
      ...http,
      {
        title: 'Replicas vs autoscaler bounds',
        unit: 'short',
        queries: [
          q(`max(kube_horizontalpodautoscaler_status_current_replicas${hpa})`, 'current'),
          q(
            `max(kube_deployment_status_replicas_available${nsSeries(app, { deployment: name })})`,
            'available',
          ),
          q(`max(kube_horizontalpodautoscaler_spec_min_replicas${hpa})`, 'min'),
          q(`max(kube_horizontalpodautoscaler_spec_max_replicas${hpa})`, 'max'),
        ],
      },
      {
        title: 'Container restarts (15m)',
        unit: 'short',
        queries: [
          q(
            `sum by (pod) (increase(kube_pod_container_status_restarts_total${nsSeries(app, { pod: `~${name}-.+`, container: 'web' })}[15m]))`,
            '{{pod}}',
          ),
        ],
      },
    ],
  };
}

function redisRow(app: AppModel, tier: 'cache' | 'sessions', title: string): Row {
  const s = tierSeries(app, tier);
  return {
    title,
    panels: [
      {
        title: 'Hit ratio',
        unit: 'percentunit',
        queries: [q(`${RECORD.hitRatio5m}${s}`, '5m'), q(`${RECORD.hitRatio1h}${s}`, '1h')],
      },
      {
        title: 'Evicted keys per second',
        unit: 'short',
        queries: [q(`${RECORD.evictions5m}${s}`, 'evictions')],
      },
      {
        title: 'Memory used / maxmemory',
        unit: 'percentunit',
        queries: [q(`${RECORD.memoryUsed}${s}`, '{{pod}}')],
      },
      {
        title: 'Roles and clients',
        unit: 'short',
        queries: [
          q(`sum by (pod) (redis_connected_clients${s})`, 'clients {{pod}}'),
          q(`count by (role) (redis_instance_info${s})`, '{{role}}'),
        ],
      },
    ],
  };
}

function databaseRow(app: AppModel): Row {
  const s = tierSeries(app, 'database');
  return {
    title: 'Database',
    panels: [
      {
        title: 'Replication lag per shard',
        unit: 'bytes',
        queries: [
          q(
            `max by (${BY_SHARD}) (patroni_xlog_location${s})\n- on (${BY_SHARD}) group_right max by (${BY_SHARD}, pod) (patroni_xlog_replayed_location${s} and on (pod) patroni_primary${s} == 0)`,
            `${SHARD} {{pod}}`,
          ),
        ],
      },
      {
        title: 'Primaries and sync standbys per shard',
        unit: 'short',
        queries: [
          q(`sum by (${SERIES_LABELS.shard}) (patroni_primary${s})`, `primaries, ${SHARD}`),
          q(
            `sum by (${SERIES_LABELS.shard}) (patroni_sync_standby${s})`,
            `sync standbys, ${SHARD}`,
          ),
        ],
      },
      {
        title: 'Connections / max_connections',
        unit: 'percentunit',
        queries: [
          q(
            `sum by (${SERIES_LABELS.shard}, pod) (pg_stat_activity_count${s})\n/ max by (${SERIES_LABELS.shard}, pod) (pg_settings_max_connections${s})`,
            `${SHARD} {{pod}}`,
          ),
        ],
      },
      {
        title: 'Commits per second',
        unit: 'ops',
        queries: [
          q(`sum by (${SERIES_LABELS.shard}) (rate(pg_stat_database_xact_commit${s}[5m]))`, SHARD),
        ],
      },
    ],
  };
}

/** Lag, pending and dead letters per stream and group; each consumer's workers vs maxReplicas. */
function queueRow(app: AppModel, queue: NonNullable<AppModel['queue']>): Row {
  const s = tierSeries(app, 'queue');
  const hpas = queue.consumers.map((c) => kedaHpaName(workerName(app, c))).join('|');
  const hpa = nsSeries(app, { horizontalpodautoscaler: `~${hpas}` });
  return {
    title: 'Queue',
    panels: [
      {
        title: 'Consumer group lag (not yet delivered)',
        unit: 'short',
        queries: [
          q(`max by (stream, group) (redis_stream_group_lag${s})`, '{{stream}} / {{group}}'),
        ],
      },
      {
        title: 'Pending (delivered, not acknowledged)',
        unit: 'short',
        queries: [
          q(
            `max by (stream, group) (redis_stream_group_messages_pending${s})`,
            '{{stream}} / {{group}}',
          ),
        ],
      },
      {
        title: 'Workers vs maxReplicas',
        unit: 'short',
        queries: [
          q(
            `max by (horizontalpodautoscaler) (kube_horizontalpodautoscaler_status_current_replicas${hpa})`,
            'workers {{horizontalpodautoscaler}}',
          ),
          q(
            `max by (horizontalpodautoscaler) (kube_horizontalpodautoscaler_spec_max_replicas${hpa})`,
            'max {{horizontalpodautoscaler}}',
          ),
        ],
      },
      {
        title: 'Dead letters',
        unit: 'short',
        queries: [
          q(
            `max by (stream) (redis_stream_length${tierSeries(app, 'queue', { stream: '~.+:dead' })})`,
            '{{stream}}',
          ),
        ],
      },
    ],
  };
}

export function dashboardRows(app: AppModel): Row[] {
  return [
    webRow(app),
    ...(app.cache ? [redisRow(app, 'cache', 'Cache')] : []),
    ...(app.sessions ? [redisRow(app, 'sessions', 'Sessions')] : []),
    ...(app.database ? [databaseRow(app)] : []),
    ...(app.queue && app.queue.consumers.length > 0 ? [queueRow(app, app.queue)] : []),
  ];
}

/** Grafana's uid is at most 40 characters: the readable form, or a hash of it. */
function uidOf(app: AppModel): string {
  const readable = `scalable-${app.namespace}-${app.name}`;
  return readable.length <= 40
    ? readable
    : `scalable-${createHash('sha256').update(readable).digest('hex').slice(0, 31)}`;
}

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

export function dashboardJson(app: AppModel): Record<string, unknown> {
  const panels: Record<string, unknown>[] = [];
  let y = 0;
  let id = 1;
  for (const row of dashboardRows(app)) {
    panels.push({
      id: id++,
      type: 'row',
      title: row.title,
      collapsed: false,
      gridPos: { h: 1, w: 24, x: 0, y: y++ },
      panels: [],
    });
    row.panels.forEach((p, i) => {
      panels.push({
        id: id++,
        type: 'timeseries',
        title: p.title,
        datasource: DATASOURCE,
        fieldConfig: { defaults: { unit: p.unit }, overrides: [] },
        gridPos: { h: 8, w: 12, x: (i % 2) * 12, y: y + Math.floor(i / 2) * 8 },
        targets: p.queries.map((query, j) => ({
          refId: String.fromCharCode(65 + j),
          datasource: DATASOURCE,
          expr: query.expr,
          legendFormat: query.legend,
        })),
      });
    });
    y += Math.ceil(row.panels.length / 2) * 8;
  }
  return {
    uid: uidOf(app),
    title: `ScalableApp ${app.namespace}/${app.name}`,
    tags: ['scalable-operator'],
    timezone: 'browser',
    schemaVersion: 39,
    refresh: '30s',
    time: { from: 'now-6h', to: 'now' },
    templating: {
      list: [{ name: 'datasource', type: 'datasource', query: 'prometheus', label: 'Data source' }],
    },
    panels,
  };
}

export const dashboardKey = (app: AppModel): string => `${app.namespace}-${app.name}.json`;

export function buildDashboard(app: AppModel): K8sObject[] {
  if (!app.monitoring?.dashboards) return [];
  return [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: monitoringMetadata(app, dashboardName(app), 'dashboard', {
        [DASHBOARD_LABEL]: '1',
      }),
      data: { [dashboardKey(app)]: `${JSON.stringify(dashboardJson(app), null, 2)}\n` },
    },
  ];
}
