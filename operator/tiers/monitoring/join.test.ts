// The monitoring tier against what the other tiers render: every PodMonitor selects pods of
// exactly its tier, on a port those pods declare and their NetworkPolicy admits from any
// namespace; the labels its relabelings give each pod are what the alerts select; the names
// the alerts use (Deployment, HPA, Sentinel StatefulSet, volumes) are the rendered ones.
import { describe, expect, it } from 'vitest';
import type { AppModel } from '../../api/model.ts';
import { buildAll } from '../index.ts';
import type { K8sObject } from '../shared/chart.ts';
import { TIER_LABEL } from '../shared/meta.ts';
import { modelOf, spec } from '../shared/test-helpers.ts';
import { alertGroups } from './alerts.ts';
import { MONITORING, SERIES_LABELS } from './names.ts';
import { endpointsOf, podTemplateOf, selects, targetLabels } from './test-targets.ts';

const SHAPES: Record<string, AppModel> = {
  everything: modelOf({
    web: { image: 'shop:1', metrics: { port: 9464 } },
    cache: { replicas: 2 },
    sessions: {},
    database: { shards: 2, replicasPerShard: 1, synchronous: true, shardKey: 'id', pooler: {} },
    queue: {
      replicas: 1,
      consumers: [
        { name: 'orders', image: 'w:1' },
        { name: 'audit', image: 'w:1', stream: 'orders', group: 'audit' },
      ],
    },
    monitoring: { prometheusRelease: 'kps' },
  }),
  standalone: modelOf({
    web: { image: 'shop:1', metrics: { path: '/prom' } },
    cache: {},
    database: {},
    queue: { consumers: [{ name: 'mail', image: 'w:1', stream: 'mail.out', group: 'senders' }] },
    monitoring: {},
  }),
};

const workloads = (objects: readonly K8sObject[]) =>
  objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');

/** Pod names a workload's pods get (a Deployment's are ReplicaSet-hashed: one stand-in). */
function podNames(w: K8sObject): string[] {
  if (w.kind === 'Deployment') return [`${w.metadata.name}-5d8f7c9b4-x2x7q`];
  return Array.from({ length: Number(spec(w).replicas) }, (_, i) => `${w.metadata.name}-${i}`);
}

/** Whether a NetworkPolicy over these pod labels admits `port` (name or number) from anywhere. */
/** Whether a NetworkPolicy admits the port from Prometheus's namespaces (monitoringNamespaces). */
function admittedFromMonitoring(
  objects: readonly K8sObject[],
  podLabels: Readonly<Record<string, string>>,
  port: string | number,
  monitoringNamespaces: readonly string[],
): boolean {
  const fromMonitoring = (f: unknown) =>
    JSON.stringify(f) ===
    JSON.stringify({
      namespaceSelector: {
        matchExpressions: [
          { key: 'kubernetes.io/metadata.name', operator: 'In', values: monitoringNamespaces },
        ],
      },
    });
  return objects
    .filter((o) => o.kind === 'NetworkPolicy')
    .filter((np) =>
      Object.entries(spec(np).podSelector.matchLabels as Record<string, string>).every(
        ([k, v]) => podLabels[k] === v,
      ),
    )
    .some((np) =>
      (spec(np).ingress as Array<{ from?: unknown[]; ports: Array<{ port: unknown }> }>).some(
        (rule) => rule.from?.some(fromMonitoring) && rule.ports.some((p) => p.port === port),
      ),
    );
}

describe.each(Object.entries(SHAPES))('monitoring joined with the other tiers (%s)', (_, app) => {
  const objects = buildAll(app);
  const monitors = objects.filter((o) => o.kind === 'PodMonitor');
  const others = objects.filter((o) => o.metadata.labels?.[TIER_LABEL] !== MONITORING);

  it('has one PodMonitor per tier that serves metrics', () => {
    const tiers = monitors.map((m) => m.metadata.labels?.['app.kubernetes.io/component']);
    expect(tiers).toEqual(
      [
        'web',
        'cache',
        app.sessions ? 'sessions' : undefined,
        'queue',
        app.database?.pooler ? 'pooler' : undefined,
        'database',
      ].filter(Boolean),
    );
  });

  it.each(['web', 'cache', 'sessions', 'queue', 'pooler', 'database'])(
    'the %s PodMonitor selects exactly its tier and a port every selected pod declares',
    (tier) => {
      const monitor = monitors.find(
        (m) => m.metadata.labels?.['app.kubernetes.io/component'] === tier,
      );
      if (!monitor) {
        expect(
          (tier === 'sessions' && !app.sessions) || (tier === 'pooler' && !app.database?.pooler),
        ).toBe(true);
        return;
      }
      const selected = workloads(others).filter((w) => selects(monitor, podTemplateOf(w)));
      expect(selected.length).toBeGreaterThan(0);
      for (const w of selected) {
        const pod = podTemplateOf(w);
        expect(pod.labels[TIER_LABEL], `${w.kind} ${w.metadata.name}`).toBe(tier);
        // Sentinels have no exporter, workers are the app's: they are not selected.
        expect(w.metadata.name).not.toMatch(/sentinel|worker/);
        for (const ep of endpointsOf(monitor)) {
          const port = pod.containers.flatMap((c) => c.ports ?? []).find((p) => p.name === ep.port);
          expect(port, `${w.metadata.name} declares port ${ep.port}`).toBeDefined();
          for (const name of podNames(w)) {
            const labels = targetLabels(monitor, ep, pod, name);
            expect(labels).toMatchObject({
              namespace: app.namespace,
              pod: name,
              [SERIES_LABELS.app]: app.name,
              [SERIES_LABELS.tier]: tier,
            });
            if (tier === 'database')
              expect(labels?.[SERIES_LABELS.shard]).toBe(/-db-(\d+)-\d+$/.exec(name)?.[1]);
            if (tier === 'pooler')
              expect(labels?.[SERIES_LABELS.shard]).toBe(/-db-(\d+)-pooler-/.exec(name)?.[1]);
          }
          // Every scraped port is open to Prometheus's namespaces, Patroni's too while
          // monitoring is on.
          const ns = app.network.monitoringNamespaces;
          expect(
            // By number (Redis, Postgres exporters, Patroni) or by name (web).
            admittedFromMonitoring(others, pod.labels, port?.containerPort ?? -1, ns) ||
              admittedFromMonitoring(others, pod.labels, ep.port, ns),
            `NetworkPolicy admits ${w.metadata.name}:${ep.port}`,
          ).toBe(true);
        }
      }
    },
  );

  it('names in the alerts are the rendered objects', () => {
    const exprs = alertGroups(app)
      .flatMap((g) => g.rules)
      .map((r) => r.expr)
      .join('\n');
    const has = (kind: string, name: string) =>
      others.some((o) => o.kind === kind && o.metadata.name === name);
    for (const [, kind, name] of exprs.matchAll(
      /(deployment|horizontalpodautoscaler|statefulset)="([^"]+)"/g,
    )) {
      // KEDA's HPA of a ScaledObject of ours: keda-hpa-<ScaledObject>.
      const keda = /^keda-hpa-(.+)$/.exec(name ?? '')?.[1];
      if (kind === 'horizontalpodautoscaler' && keda) {
        expect(has('ScaledObject', keda), `ScaledObject ${keda}`).toBe(true);
        continue;
      }
      const k =
        {
          deployment: 'Deployment',
          horizontalpodautoscaler: 'HorizontalPodAutoscaler',
          statefulset: 'StatefulSet',
        }[kind ?? ''] ?? '';
      expect(has(k, name ?? ''), `${k} ${name}`).toBe(true);
    }
    // Every database volume: <claim template>-<pod>, matched by the volume alert's regex.
    const pvc = /persistentvolumeclaim=~"([^"]+)"/.exec(exprs)?.[1];
    const claims = workloads(others)
      .filter((w) => w.metadata.labels?.[TIER_LABEL] === 'database')
      .flatMap((w) =>
        (spec(w).volumeClaimTemplates as Array<{ metadata: { name: string } }>).flatMap((t) =>
          podNames(w).map((p) => `${t.metadata.name}-${p}`),
        ),
      );
    expect(claims.length).toBeGreaterThan(0);
    for (const c of claims) expect(c).toMatch(new RegExp(`^(?:${pvc})$`));
  });

  it("the streams in the queue alerts are the ones the store's exporter reports", () => {
    const exprs = alertGroups(app)
      .flatMap((g) => g.rules)
      .filter((r) => r.labels[SERIES_LABELS.tier] === 'queue')
      .map((r) => r.expr)
      .join('\n');
    const store = workloads(others).find(
      (w) => w.kind === 'StatefulSet' && w.metadata.name === `${app.name}-queue`,
    );
    if (!store) throw new Error('no queue store');
    const exporter = podTemplateOf(store).containers.find((c) => c.name === 'exporter') as
      { env?: Array<{ name: string; value?: string }> } | undefined;
    const checked = (
      exporter?.env?.find((e) => e.name === 'REDIS_EXPORTER_CHECK_SINGLE_STREAMS')?.value ?? ''
    ).split(',');
    const inAlerts = [...new Set([...exprs.matchAll(/stream="([^"]+)"/g)].map((m) => m[1]))];
    expect(inAlerts.length).toBeGreaterThan(0);
    expect(inAlerts.sort()).toEqual([...checked].sort());
  });
});
