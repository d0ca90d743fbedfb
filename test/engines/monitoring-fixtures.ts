// The app the monitoring engine tests render, and input series labelled exactly as its
// PodMonitors label them (operator/tiers/monitoring/test-targets.ts emulates the Prometheus
// Operator's relabelling on the rendered pod templates).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { prometheusBinPath } from '../../devcluster/paths.ts';
import type { AppModel } from '../../operator/api/model.ts';
import { buildAll } from '../../operator/tiers/index.ts';
import type { K8sObject } from '../../operator/tiers/shared/chart.ts';
import { modelOf } from '../../operator/tiers/shared/test-helpers.ts';
import { podMonitorName } from '../../operator/tiers/monitoring/names.ts';
import {
  endpointsOf,
  podTemplateOf,
  selects,
  targetLabels,
} from '../../operator/tiers/monitoring/test-targets.ts';

export const exec = promisify(execFile);

export function promBinary(name: 'promtool' | 'prometheus'): string {
  const path = prometheusBinPath(name);
  if (!existsSync(path)) throw new Error(`${path} is missing: run npm run cluster:build`);
  return path;
}

export const everything: AppModel = modelOf({
  web: { image: 'shop:1', metrics: { port: 9464 } },
  cache: { replicas: 2 },
  sessions: {},
  database: { shards: 2, replicasPerShard: 1, synchronous: true, shardKey: 'id', pooler: {} },
  queue: { consumers: [{ name: 'orders', image: 'w:1', maxReplicas: 8 }] },
  monitoring: { prometheusRelease: 'kube-prometheus-stack' },
});

/** Another app in the same namespace: its failures must never fire shop's alerts. */
export const other: AppModel = modelOf(
  {
    cache: {},
    sessions: {},
    database: { pooler: {} },
    queue: { consumers: [{ name: 'orders', image: 'w:1', maxReplicas: 8 }] },
    monitoring: {},
  },
  'other',
);

export function ruleOf(objects: readonly K8sObject[]): { groups: unknown[] } {
  const r = objects.find((o) => o.kind === 'PrometheusRule');
  if (!r) throw new Error('no PrometheusRule');
  return r['spec'] as { groups: unknown[] };
}

/** Target labels of pod `podName` scraped on `port` by the app's PodMonitor of `tier`. */
export function targetOf(
  app: AppModel,
  tier: string,
  podName: string,
  port = 'metrics',
): Record<string, string> {
  const objects = buildAll(app);
  const monitor = objects.find(
    (o) => o.kind === 'PodMonitor' && o.metadata.name === podMonitorName(app, tier),
  );
  if (!monitor) throw new Error(`no PodMonitor for ${tier}`);
  const ep = endpointsOf(monitor).find((e) => e.port === port);
  const workload = objects.find(
    (o) =>
      (o.kind === 'StatefulSet' || o.kind === 'Deployment') &&
      podName.startsWith(`${o.metadata.name}-`) &&
      selects(monitor, podTemplateOf(o)),
  );
  if (!ep || !workload) throw new Error(`${tier}: no endpoint ${port} or workload of ${podName}`);
  const labels = targetLabels(monitor, ep, podTemplateOf(workload), podName);
  if (!labels) throw new Error(`${tier}: ${podName} is not scraped on ${port}`);
  return labels;
}

/** `metric{labels}` in PromQL/promtool series notation. */
export function series(metric: string, labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return `${metric}{${parts.join(',')}}`;
}
