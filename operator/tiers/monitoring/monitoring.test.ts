import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { find, modelOf, observed, spec } from '../shared/test-helpers.ts';
import { alertGroups } from './alerts.ts';
import { buildMonitoring } from './build.ts';
import { dashboardJson, dashboardRows } from './dashboard.ts';
import {
  DASHBOARD_LABEL,
  MONITORING_READY,
  PROMETHEUS_OPERATOR_API,
  RELEASE_LABEL,
} from './names.ts';
import { monitoringReport } from './status.ts';

const full = modelOf({
  web: { image: 'shop:1', metrics: { port: 9464 } },
  cache: { replicas: 1 },
  sessions: {},
  database: { shards: 2, synchronous: true, shardKey: 'id', pooler: {} },
  queue: { consumers: [{ name: 'orders', image: 'w:1' }] },
  monitoring: { prometheusRelease: 'kube-prometheus-stack' },
});
const alertNames = (m = full) => alertGroups(m).flatMap((g) => g.rules.map((r) => r.alert));

describe('buildMonitoring', () => {
  it('renders nothing when monitoring is off or disabled', () => {
    expect(buildMonitoring(modelOf({ cache: {} }))).toEqual([]);
    expect(buildMonitoring(modelOf({ cache: {}, monitoring: { enabled: false } }))).toEqual([]);
  });

  it('renders PodMonitors, one PrometheusRule and a dashboard, with the release label', () => {
    const objects = buildMonitoring(full);
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'PodMonitor/shop-web-metrics',
      'PodMonitor/shop-cache-metrics',
      'PodMonitor/shop-sessions-metrics',
      'PodMonitor/shop-queue-metrics',
      'PodMonitor/shop-pooler-metrics',
      'PodMonitor/shop-database-metrics',
      'PrometheusRule/shop-rules',
      'ConfigMap/shop-dashboard',
    ]);
    for (const o of objects)
      expect(o.metadata.labels?.[RELEASE_LABEL]).toBe('kube-prometheus-stack');
    expect(find(objects, 'ConfigMap').metadata.labels?.[DASHBOARD_LABEL]).toBe('1');
  });

  it('scrapes the web pods only when web.metrics is given', () => {
    const names = buildMonitoring(modelOf({ monitoring: {} })).map((o) => o.kind);
    expect(names).not.toContain('PodMonitor');
    const web = find(buildMonitoring(full), 'PodMonitor', 'shop-web-metrics');
    expect(spec(web).podMetricsEndpoints[0]).toMatchObject({ port: 'metrics', path: '/metrics' });
  });

  it('follows alerts and dashboards', () => {
    const kinds = (m: Record<string, unknown>) =>
      buildMonitoring(modelOf({ cache: {}, monitoring: m })).map((o) => o.kind);
    expect(kinds({ alerts: false })).toEqual(['PodMonitor', 'PrometheusRule', 'ConfigMap']);
    expect(kinds({ dashboards: false })).toEqual(['PodMonitor', 'PrometheusRule']);
    expect(kinds({ alerts: false, dashboards: false })).toEqual(['PodMonitor']);
    // Without alerts the rule holds only the recording rules the dashboard reads.
    const rule = find(
      buildMonitoring(modelOf({ cache: {}, monitoring: { alerts: false } })),
      'PrometheusRule',
    );
    expect(
      spec(rule)
        .groups.flatMap((g: { rules: object[] }) => g.rules)
        .every((r: object) => 'record' in r),
    ).toBe(true);
  });
});

describe('alerts', () => {
  it('cover the failure modes of each tier that is on', () => {
    expect(alertNames()).toEqual([
      'ScalableWebNoReadyReplicas',
      'ScalableWebAtMaxReplicas',
      'ScalableWebPodsRestarting',
      'ScalableCacheEvictionsHitRatioFalling',
      'ScalableCacheMemoryNearMax',
      'ScalableCacheNoMaster',
      'ScalableCacheSentinelQuorumLost',
      'ScalableSessionsMemoryNearMax',
      'ScalableSessionsAOFWriteErrors',
      'ScalableDatabaseNoPrimary',
      'ScalableDatabaseReplicationLag',
      'ScalableDatabaseNoSyncStandby',
      'ScalableDatabaseVolumeFull',
      'ScalableDatabaseConnectionsNearMax',
      'ScalablePoolerClientsWaiting',
      'ScalablePoolerPoolSaturated',
      'ScalablePoolerClientConnectionsNearMax',
      'ScalableQueueLagGrowing',
      'ScalableQueueDeadLetters',
      'ScalableQueueWorkersAtMax',
      'ScalableOperatorReconcileErrors',
      'ScalableAppNotReady',
    ]);
    const small = alertNames(modelOf({ cache: {}, monitoring: {} }));
    expect(small).not.toContain('ScalableCacheSentinelQuorumLost');
    expect(small).not.toContain('ScalableDatabaseNoPrimary');
    expect(small).not.toContain('ScalableQueueLagGrowing');
    // Per consumer, each naming it.
    const two = alertGroups(
      modelOf({
        queue: {
          consumers: [
            { name: 'orders', image: 'w:1' },
            { name: 'mail', image: 'w:1', maxReplicas: 3 },
          ],
        },
        monitoring: {},
      }),
    )
      .flatMap((g) => g.rules)
      .filter((r) => r.labels['scalable_tier'] === 'queue');
    expect(two.map((r) => `${r.alert} ${r.labels['consumer']}`)).toEqual([
      'ScalableQueueLagGrowing orders',
      'ScalableQueueDeadLetters orders',
      'ScalableQueueWorkersAtMax orders',
      'ScalableQueueLagGrowing mail',
      'ScalableQueueDeadLetters mail',
      'ScalableQueueWorkersAtMax mail',
    ]);
    expect(two.at(-1)?.expr).toMatch(/"keda-hpa-shop-worker-mail"\}\) >= 3$/);
    for (const r of two) expect(r.annotations.description).toContain(r.labels['consumer']);
    expect(alertNames(modelOf({ database: {}, monitoring: {} }))).not.toContain(
      'ScalableDatabaseNoSyncStandby',
    );
    expect(
      alertNames(modelOf({ database: {}, monitoring: {} })).filter((a) => a.includes('Pooler')),
    ).toEqual([]);
  });

  it('each has a severity, and names the app and tier; each has a runbook section and a row in the tier page', () => {
    const runbooks = readFileSync(new URL('../../../docs/runbooks.md', import.meta.url), 'utf8');
    const page = readFileSync(
      new URL('../../../docs/tiers/monitoring.md', import.meta.url),
      'utf8',
    );
    for (const r of alertGroups(full).flatMap((g) => g.rules)) {
      expect(['critical', 'warning', 'info']).toContain(r.labels['severity']);
      expect(r.annotations.description, r.alert).toMatch(/prod\/shop/);
      expect(r.labels['scalable_tier']).toBeDefined();
      expect(runbooks, r.alert).toContain(`\n## ${r.alert}\n`);
      expect(r.annotations.runbook_url).toMatch(
        new RegExp(`runbooks\\.md#${r.alert.toLowerCase()}$`),
      );
      expect(page, r.alert).toContain(`| \`${r.alert}\``);
    }
  });

  it('warn about a full LRU cache only as information', () => {
    const sev = (policy: string) =>
      alertGroups(modelOf({ cache: { evictionPolicy: policy }, monitoring: {} }))
        .flatMap((g) => g.rules)
        .find((r) => r.alert === 'ScalableCacheMemoryNearMax')?.labels['severity'];
    expect(sev('allkeys-lru')).toBe('info');
    expect(sev('volatile-lru')).toBe('warning');
  });
});

describe('dashboard', () => {
  it('has a row per tier that is on, web panels for requests and latency only with web.metrics', () => {
    expect(dashboardRows(full).map((r) => r.title)).toEqual([
      'Web',
      'Cache',
      'Sessions',
      'Database',
      'Queue',
    ]);
    expect(dashboardRows(full)[0]?.panels.map((p) => p.title)).toContain('Latency');
    const bare = dashboardRows(modelOf({ monitoring: {} }));
    expect(bare.map((r) => r.title)).toEqual(['Web']);
    expect(bare[0]?.panels.map((p) => p.title)).not.toContain('Latency');
  });

  it('is valid Grafana JSON with a short uid and panels that do not overlap', () => {
    const d = dashboardJson(full) as {
      uid: string;
      panels: Array<{ gridPos: { x: number; y: number; w: number; h: number } }>;
    };
    expect(d.uid.length).toBeLessThanOrEqual(40);
    const cells = new Set<string>();
    for (const p of d.panels)
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++)
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          expect(cells.has(`${x},${y}`)).toBe(false);
          cells.add(`${x},${y}`);
        }
    const long = dashboardJson(
      modelOf({ monitoring: {} }, 'a-very-long-application-name', 'a-long-namespace'),
    );
    expect((long as { uid: string }).uid.length).toBeLessThanOrEqual(40);
  });
});

describe('MonitoringReady', () => {
  const wanted = buildMonitoring(full).map((o) => ({
    apiVersion: o.apiVersion,
    kind: o.kind,
    name: o.metadata.name,
  }));

  it('is True when every object is there', () => {
    const objects = buildMonitoring(full).map((o) => ({ ...o, metadata: { ...o.metadata } }));
    expect(monitoringReport(full, observed(objects), wanted).condition).toMatchObject({
      type: MONITORING_READY,
      status: 'True',
      reason: 'Configured',
    });
  });

  it('says APIUnavailable, naming the Prometheus Operator, when its API is not served', () => {
    const cond = monitoringReport(
      full,
      { objects: [], pods: [], missingApis: [PROMETHEUS_OPERATOR_API] },
      wanted.filter((w) => w.apiVersion !== PROMETHEUS_OPERATOR_API),
    ).condition;
    expect(cond).toMatchObject({ status: 'False', reason: 'APIUnavailable' });
    expect(cond.message).toMatch(/Prometheus Operator is not installed/);
    expect(cond.message).toMatch(/created anyway: ConfigMap shop-dashboard/);
  });
});
