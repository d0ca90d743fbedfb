// The monitoring tier against the real Prometheus Operator CRDs the embedded control plane
// serves: a server-side dry-run of every monitoring object of several shapes, and the
// operator (under its own ClusterRole) creating them for an app and reporting
// MonitoringReady=True.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import yaml from 'js-yaml';
import { kubectl } from '../../devcluster/index.ts';
import {
  eventually,
  printLogDirOnFailure,
  testKubeconfig,
  uniqueName,
} from '../../devcluster/testing.ts';
import type { KubeClient } from '../../operator/runtime/kube-client.ts';
import { buildAll } from '../../operator/tiers/index.ts';
import { MONITORING, MONITORING_READY } from '../../operator/tiers/monitoring/names.ts';
import { TIER_LABEL } from '../../operator/tiers/shared/meta.ts';
import { modelOf } from '../../operator/tiers/shared/test-helpers.ts';
import {
  applyAs,
  closeSuite,
  conditionOf,
  getApp,
  getObj,
  kindInfo,
  openSuite,
  scalableApp,
  startOperatorAs,
} from './operator-harness.ts';
import type { Json, OperatorProcess } from './operator-harness.ts';

const ns = uniqueName('monitoring');
const identity = uniqueName('scalable-operator');
let client: KubeClient;
let op: OperatorProcess | undefined;

const SHAPES: Record<string, Record<string, unknown>> = {
  everything: {
    web: { image: 'shop:1', metrics: { port: 9464 } },
    cache: { replicas: 2 },
    sessions: {},
    database: { shards: 2, synchronous: true, shardKey: 'id' },
    monitoring: { prometheusRelease: 'kube-prometheus-stack' },
  },
  'standalone cache, web metrics on the app port': {
    web: { image: 'shop:1', metrics: {} },
    cache: { evictionPolicy: 'volatile-ttl' },
    monitoring: { alerts: false },
  },
};

beforeAll(async () => {
  client = await openSuite(ns);
});

afterAll(() => closeSuite(client, { operators: [op], namespaces: [ns], identities: [identity] }));

describe('monitoring objects', () => {
  printLogDirOnFailure();

  it.each(Object.keys(SHAPES))('%s: the API server accepts every one (dry-run)', async (shape) => {
    const objects = buildAll(modelOf(SHAPES[shape] ?? {}, 'shop', ns)).filter(
      (o) => o.metadata.labels?.[TIER_LABEL] === MONITORING,
    );
    expect(objects.map((o) => o.kind)).toEqual(
      expect.arrayContaining(['PodMonitor', 'PrometheusRule', 'ConfigMap']),
    );
    const { stdout } = await kubectl(
      testKubeconfig(),
      [
        'apply',
        '--server-side',
        '--dry-run=server',
        '--field-manager=scalable-operator',
        '-f',
        '-',
      ],
      objects.map((o) => `---\n${yaml.dump(o)}`).join(''),
    );
    expect(stdout.trim().split('\n')).toHaveLength(objects.length);
    expect(stdout).toMatch(
      /podmonitor\.monitoring\.coreos\.com\/shop-cache-metrics serverside-applied \(server dry run\)/,
    );
    expect(stdout).not.toMatch(/error/i);
  });

  it('the operator creates them and reports MonitoringReady', async () => {
    op = await startOperatorAs(client, identity, { lease: uniqueName('lease-monitoring') });
    await applyAs(
      client,
      'test-user',
      scalableApp(ns, 'shop', {
        web: { image: 'shop:1', metrics: { port: 9464 } },
        cache: {},
        monitoring: { prometheusRelease: 'kps' },
      }),
    );
    const cond = await eventually(
      'MonitoringReady=True',
      async () => {
        const c = conditionOf(await getApp(client, ns, 'shop'), MONITORING_READY);
        return c?.['status'] === 'True' ? c : undefined;
      },
      120_000,
    );
    expect(cond['reason']).toBe('Configured');
    for (const [apiVersion, kind, name] of [
      ['monitoring.coreos.com/v1', 'PodMonitor', 'shop-web-metrics'],
      ['monitoring.coreos.com/v1', 'PodMonitor', 'shop-cache-metrics'],
      ['monitoring.coreos.com/v1', 'PrometheusRule', 'shop-rules'],
      ['v1', 'ConfigMap', 'shop-dashboard'],
    ] as const) {
      const obj = (await getObj(client, kindInfo(apiVersion, kind), ns, name)) as Json | undefined;
      expect(obj, `${kind} ${name}`).toBeDefined();
      expect(((obj?.['metadata'] as Json)['labels'] as Json)['release']).toBe('kps');
    }
  });
});
