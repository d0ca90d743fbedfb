// `scalable status`, the pure parts: gathered objects -> status document -> text, and the
// advice table against the reasons the operator's code writes.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { toModel } from '../../operator/api/model.ts';
import { parseApps } from '../../operator/api/parse.ts';
import { ADVICE, GENERIC_ADVICE, adviceFor, isProblem } from '../../operator/cli/status/advice.ts';
import { statusDocument } from '../../operator/cli/status/build.ts';
import type { GroupView, PodView, StatusDocument } from '../../operator/cli/status/model.ts';
import { statusDiagram } from '../../operator/cli/status/diagram.ts';
import { formatBytes, statusText } from '../../operator/cli/status/text.ts';
import { masterNameOf } from '../../operator/tiers/cache/build.ts';
import { MAJOR_VERSION_MISMATCH } from '../../operator/tiers/database/statefulset.ts';
import { queueMasterName } from '../../operator/tiers/queue/store.ts';
import {
  NS,
  app,
  cond,
  gathered,
  member,
  node,
  patroniStatus,
  pod,
  syncKey,
} from './status-fixtures.ts';

const REPO = join(import.meta.dirname, '..', '..');

const group = (doc: StatusDocument, tier: string, name: string): GroupView => {
  const g = doc.tiers.find((t) => t.tier === tier)?.groups.find((x) => x.name === name);
  if (!g) throw new Error(`no group ${tier}/${name} in ${JSON.stringify(doc.tiers)}`);
  return g;
};
const podOf = (g: GroupView, name: string): PodView => {
  const p = g.pods.find((x) => x.name === name);
  if (!p) throw new Error(`no pod ${name} in ${g.name}`);
  return p;
};

/** Shard 0: primary pod 0, sync standby pod 1, replica pod 2; shard 1 without member status. */
const DATABASE = [
  member('shop-db-0-0', 0, 'kwok-zone-a', 'master', patroniStatus('primary', 50_331_808)),
  member('shop-db-0-1', 0, 'kwok-zone-b', 'replica', patroniStatus('replica', 50_331_808)),
  member('shop-db-0-2', 0, 'kwok-zone-c', 'replica', patroniStatus('replica', 50_331_648)),
  member('shop-db-1-0', 1, 'kwok-zone-b', 'master'),
  member('shop-db-1-1', 1, 'kwok-zone-c', 'replica', patroniStatus('replica')),
];

describe('scalable status: the document', () => {
  it("names each shard's primary, its synchronous standby and each replica's lag in bytes", () => {
    const doc = statusDocument(
      gathered({ pods: DATABASE, patroniKeys: [syncKey(0, 'shop-db-0-0', 'shop-db-0-1')] }),
    );
    const s0 = group(doc, 'database', 'shop-db-0');
    expect(s0.kind).toBe('shard');
    expect(s0.shard).toEqual({ index: 0, primary: 'shop-db-0-0', syncStandbys: ['shop-db-0-1'] });
    expect(s0.pods.map((p) => [p.name, p.role, p.lagBytes, p.zone])).toEqual([
      ['shop-db-0-0', 'primary', undefined, 'zone-a'],
      ['shop-db-0-1', 'sync-standby', 0, 'zone-b'],
      ['shop-db-0-2', 'replica', 160, 'zone-c'],
    ]);
    expect(podOf(s0, 'shop-db-0-1').patroniState).toBe('running');
    // Shard 1: the primary published no WAL position, so no lag can be known.
    const s1 = group(doc, 'database', 'shop-db-1');
    expect(s1.shard).toEqual({ index: 1, primary: 'shop-db-1-0', syncStandbys: [] });
    expect(podOf(s1, 'shop-db-1-1')).toMatchObject({ role: 'replica', lagBytes: null });
  });

  it('says lag unknown for a replica that published no WAL position, never a guess', () => {
    const doc = statusDocument(
      gathered({
        pods: [
          member('shop-db-0-0', 0, 'kwok-zone-a', 'master', patroniStatus('primary', 1000)),
          member('shop-db-0-1', 0, 'kwok-zone-b', 'replica'),
          member('shop-db-0-2', 0, 'kwok-zone-c', 'replica', patroniStatus('replica', 2000)),
        ],
      }),
    );
    const s0 = group(doc, 'database', 'shop-db-0');
    expect(podOf(s0, 'shop-db-0-1').lagBytes).toBeNull();
    // A replica ahead of the primary's last published position is not behind: 0, not -1000.
    expect(podOf(s0, 'shop-db-0-2').lagBytes).toBe(0);
  });

  it("ignores a -sync key written by an earlier primary (Patroni's is_sync_standby)", () => {
    const pods = [
      member('shop-db-0-0', 0, 'kwok-zone-a', 'replica', patroniStatus('replica', 10)),
      member('shop-db-0-1', 0, 'kwok-zone-b', 'master', patroniStatus('primary', 10)),
    ];
    const doc = statusDocument(
      gathered({ pods, patroniKeys: [syncKey(0, 'shop-db-0-0', 'shop-db-0-1')] }),
    );
    const s0 = group(doc, 'database', 'shop-db-0');
    expect(s0.shard).toEqual({ index: 0, primary: 'shop-db-0-1', syncStandbys: [] });
    expect(podOf(s0, 'shop-db-0-0').role).toBe('replica');
  });

  it('shows a shard the status knows but that has no pod yet, without a primary', () => {
    const doc = statusDocument(
      gathered({
        app: app({ database: { shards: [{ index: 0, readyReplicas: 0, replicas: 1 }] } }),
      }),
    );
    expect(group(doc, 'database', 'shop-db-0')).toEqual({
      name: 'shop-db-0',
      kind: 'shard',
      pods: [],
      shard: { index: 0, primary: null, syncStandbys: [] },
    });
  });

  it('gives zones from node labels, and null where the node could not be read', () => {
    const pods = [
      pod('shop-web-1', { tier: 'web', node: 'kwok-zone-a' }),
      pod('shop-web-2', { tier: 'web', node: 'hidden' }),
      pod('shop-web-3', { tier: 'web', node: 'unlabelled' }),
      pod('shop-web-4', { tier: 'web', ready: false }),
    ];
    const doc = statusDocument(
      gathered({
        pods,
        nodes: {
          'kwok-zone-a': node('kwok-zone-a', 'zone-a'),
          hidden: null,
          unlabelled: node('x'),
        },
      }),
    );
    expect(group(doc, 'web', 'shop-web').pods).toEqual([
      {
        name: 'shop-web-1',
        node: 'kwok-zone-a',
        zone: 'zone-a',
        ready: true,
        phase: 'Running',
        role: 'web',
      },
      {
        name: 'shop-web-2',
        node: 'hidden',
        zone: null,
        ready: true,
        phase: 'Running',
        role: 'web',
      },
      {
        name: 'shop-web-3',
        node: 'unlabelled',
        zone: null,
        ready: true,
        phase: 'Running',
        role: 'web',
      },
      { name: 'shop-web-4', node: null, zone: null, ready: false, phase: 'Pending', role: 'web' },
    ]);
  });

  it('knows a standalone Redis master; with Sentinel it names the master name Sentinel knows', () => {
    const pods = [
      pod('shop-cache-0', { tier: 'cache', node: 'kwok-zone-a' }),
      pod('shop-cache-1', { tier: 'cache', node: 'kwok-zone-b' }),
      ...[0, 1, 2].map((i) =>
        pod(`shop-cache-sentinel-${i}`, {
          tier: 'cache',
          component: 'cache-sentinel',
          node: 'kwok-zone-c',
        }),
      ),
      pod('shop-sessions-0', { tier: 'sessions', node: 'kwok-zone-a' }),
      pod('shop-queue-0', { tier: 'queue', node: 'kwok-zone-a' }),
      pod('shop-worker-emails-7f9-x', {
        tier: 'queue',
        component: 'worker-emails',
        node: 'kwok-zone-b',
      }),
    ];
    const doc = statusDocument(gathered({ pods }));
    expect(doc.tiers.map((t) => t.tier)).toEqual(['cache', 'sessions', 'queue']);
    const cache = group(doc, 'cache', 'shop-cache');
    expect(cache).toMatchObject({ kind: 'redis', master: null, sentinelMasterName: 'shop-cache' });
    expect(cache.pods.map((p) => p.role)).toEqual(['redis', 'redis']);
    expect(group(doc, 'cache', 'shop-cache-sentinel').pods.map((p) => p.role)).toEqual([
      'sentinel',
      'sentinel',
      'sentinel',
    ]);
    expect(group(doc, 'sessions', 'shop-sessions')).toMatchObject({ master: 'shop-sessions-0' });
    expect(podOf(group(doc, 'sessions', 'shop-sessions'), 'shop-sessions-0').role).toBe('master');
    expect(group(doc, 'queue', 'shop-queue').master).toBe('shop-queue-0');
    expect(group(doc, 'queue', 'shop-worker-emails')).toMatchObject({ kind: 'worker' });
    // The name said is the one the tiers hand Sentinel and the app.
    const parsed = parseApps(
      'apiVersion: scalable.dev/v1alpha1\nkind: ScalableApp\nmetadata: {name: shop}\nspec: {web: {image: x}, cache: {replicas: 1}, queue: {replicas: 1, consumers: [{name: emails, image: x, stream: emails}]}}\n',
      'x.yaml',
    );
    const valid = parsed.results[0];
    if (!valid?.ok) throw new Error(JSON.stringify(parsed));
    const model = toModel(valid.app);
    expect(masterNameOf(model)).toBe('shop-cache');
    expect(queueMasterName(model)).toBe('shop-queue');
  });

  it('sums buckets per shard from the recorded ranges and says a pending move', () => {
    const status = {
      database: {
        shards: [0, 1, 2].map((index) => ({ index, readyReplicas: 1, replicas: 1 })),
      },
      shardMap: {
        version: 2,
        configMapName: 'shop-shard-map',
        buckets: 1024,
        ranges: [
          { from: 0, to: 256, shard: 0 },
          { from: 256, to: 512, shard: 1 },
          { from: 512, to: 1024, shard: 0 },
        ],
      },
      conditions: [
        cond('DatabaseReady', 'True', 'ReshardingPending', 'shop-db-2 own no bucket yet'),
        cond('Degraded', 'False', 'AsExpected', 'no failures'),
      ],
    };
    const doc = statusDocument(gathered({ app: app(status) }));
    expect(doc.shardMap).toEqual({
      version: 2,
      configMapName: 'shop-shard-map',
      buckets: 1024,
      perShard: [
        { shard: 0, buckets: 768 },
        { shard: 1, buckets: 256 },
        { shard: 2, buckets: 0 },
      ],
      move: { reason: 'ReshardingPending', message: 'shop-db-2 own no bucket yet' },
    });
    const conflict = statusDocument(
      gathered({
        app: app({
          ...status,
          conditions: [cond('Degraded', 'True', 'ShardMapConflict', 'routes buckets away')],
        }),
      }),
    );
    expect(conflict.shardMap?.move).toEqual({
      reason: 'ShardMapConflict',
      message: 'routes buckets away',
    });
    expect(statusDocument(gathered()).shardMap).toBeNull();
  });

  it('lists URLs from the Ingresses (https where TLS covers the host), else the web Service', () => {
    const ingress = (
      name: string,
      path: string,
      host?: string,
      tls = false,
      lb?: string,
    ): Record<string, unknown> => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name, namespace: NS, labels: { 'scalable.dev/app': 'shop' } },
      spec: {
        ...(tls && host ? { tls: [{ hosts: [host], secretName: 'shop-tls' }] } : {}),
        rules: [
          {
            ...(host ? { host } : {}),
            http: {
              paths: [
                {
                  path,
                  pathType: 'Prefix',
                  backend: { service: { name: 'shop-web', port: { number: 80 } } },
                },
              ],
            },
          },
        ],
      },
      status: { loadBalancer: lb ? { ingress: [{ ip: lb }] } : {} },
    });
    const tls = statusDocument(
      gathered({
        ingresses: [
          ingress('shop-web', '/', 'shop.example.com', true),
          ingress('shop-static', '/static', 'shop.example.com', true),
        ],
      }),
    );
    expect(tls.urls).toEqual([
      { url: 'https://shop.example.com/static', via: 'Ingress shop-static' },
      { url: 'https://shop.example.com/', via: 'Ingress shop-web' },
    ]);
    const hostless = statusDocument(
      gathered({ ingresses: [ingress('shop-web', '/', undefined, false, '203.0.113.7')] }),
    );
    expect(hostless.urls).toEqual([{ url: 'http://203.0.113.7/', via: 'Ingress shop-web' }]);
    const service = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: 'shop-web',
        namespace: NS,
        labels: { 'scalable.dev/app': 'shop', 'scalable.dev/tier': 'web' },
      },
      spec: { type: 'ClusterIP', ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
      status: { loadBalancer: {} },
    };
    const cache = {
      ...service,
      metadata: {
        ...service.metadata,
        name: 'shop-cache',
        labels: { 'scalable.dev/app': 'shop', 'scalable.dev/tier': 'cache' },
      },
    };
    expect(statusDocument(gathered({ services: [cache, service] })).urls).toEqual([
      { url: 'http://shop-web.prod.svc', via: 'Service shop-web (in the cluster)' },
    ]);
    // status.url is added when nothing listed covers it (e.g. Ingresses not readable).
    const said = statusDocument(
      gathered({ app: app({ url: 'https://shop.example.com' }), ingresses: null, services: null }),
    );
    expect(said.urls).toEqual([{ url: 'https://shop.example.com', via: 'status.url' }]);
  });

  it('gives every condition that needs attention the thing to do next, and no other', () => {
    const doc = statusDocument(
      gathered({
        app: app({
          conditions: [
            cond('Ready', 'False', 'DatabaseNotReady', 'no ready primary in shop-db-0'),
            cond('Progressing', 'False', 'Stable', 'every object is applied and ready'),
            cond('Degraded', 'True', 'ShardMapConflict', 'routes buckets away'),
            cond('WebReady', 'True', 'PodsReady', '2/2 web pods ready'),
            cond('CacheReady', 'False', 'NoSentinelQuorum', '1/3 Sentinels ready'),
            cond('QueueReady', 'False', 'DataRetained', 'the queue is off'),
            cond('DatabaseReady', 'False', 'NoPrimary', 'no ready primary in shop-db-0'),
            cond('PoolerReady', 'Unknown', 'Off', 'no pooler'),
            cond('MonitoringReady', 'False', 'SomethingNew', 'from a newer operator'),
          ],
        }),
      }),
    );
    const next = Object.fromEntries(doc.conditions.map((c) => [c.type, c.next]));
    expect(doc.ready).toBe('False');
    expect(next['Ready']).toBe(
      'see DatabaseReady below: the first tier that is not ready, with its own advice',
    );
    expect(next['Progressing']).toBeNull();
    expect(next['Degraded']).toContain('status.shardMap.ranges');
    expect(next['WebReady']).toBeNull();
    expect(next['CacheReady']).toBe(
      'bring the Sentinel pods back (kubectl get pods -n prod -l scalable.dev/app=shop,scalable.dev/tier=cache -o wide: node capacity, a zone outage); they find the master again by themselves',
    );
    expect(next['QueueReady']).toBeNull();
    expect(next['DatabaseReady']).toBe(
      'kubectl -n prod exec shop-db-<shard>-0 -c postgres -- patronictl -c /etc/patroni/patroni.yml list shows why no member holds the lock; then docs/runbooks.md, ScalableDatabaseNoPrimary',
    );
    expect(next['MonitoringReady']).toBe(
      'see kubectl describe scalableapp -n prod shop and its events',
    );
    expect(doc.conditions.filter((c) => c.problem).map((c) => c.type)).toEqual([
      'Ready',
      'Degraded',
      'CacheReady',
      'DatabaseReady',
      'MonitoringReady',
    ]);
  });

  it('has the documented shape (a stable contract for -o json)', () => {
    const doc = statusDocument(
      gathered({
        app: app({
          web: { replicas: 1, readyReplicas: 1, ready: '1/1', desiredReplicas: 1 },
          conditions: [cond('Ready', 'True', 'AllTiersReady', 'every tier is ready')],
        }),
        pods: [pod('shop-web-1', { tier: 'web', node: 'kwok-zone-a' })],
        notes: ['zone unknown: nodes are not readable with these credentials (403)'],
      }),
    );
    expect(doc).toEqual({
      apiVersion: 'scalable.dev/status-v1',
      kind: 'ScalableAppStatus',
      app: { namespace: 'prod', name: 'shop', generation: 3, observedGeneration: 3 },
      ready: 'True',
      tiers: [
        {
          tier: 'web',
          ready: '1/1',
          groups: [
            {
              name: 'shop-web',
              kind: 'web',
              pods: [
                {
                  name: 'shop-web-1',
                  node: 'kwok-zone-a',
                  zone: 'zone-a',
                  ready: true,
                  phase: 'Running',
                  role: 'web',
                },
              ],
            },
          ],
        },
      ],
      shardMap: null,
      urls: [],
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'AllTiersReady',
          message: 'every tier is ready',
          lastTransitionTime: '2026-12-06T19:00:00Z',
          problem: false,
          next: null,
        },
      ],
      notes: ['zone unknown: nodes are not readable with these credentials (403)'],
    });
  });
});

describe('scalable status: advice', () => {
  // Every CamelCase string literal of the status code is a reason, a condition type, a kind or
  // a status; the ones that are not reasons are named here, so a new reason fails this test
  // until the table has advice for it (or it is named as a reason that needs none).
  const NOT_REASONS = new Set([
    'True',
    'False',
    'Unknown',
    'Ready',
    'Progressing',
    'Degraded',
    'WebReady',
    'CacheReady',
    'SessionsReady',
    'QueueReady',
    'DatabaseReady',
    'PoolerReady',
    'IngressReady',
    'PodScheduled',
    'Deployment',
    'StatefulSet',
    'Secret',
    'ConfigMap',
    'Ingress',
    'ScaledObject',
    'PodMonitor',
    'PrometheusRule',
    'KEDA',
    'None',
  ]);
  /** Reasons of conditions that need no attention (True, Unknown, or a calm False). */
  const CALM_REASONS = new Set([
    'AllTiersReady',
    'Stable',
    'Reconciling',
    'AsExpected',
    'PodsReady',
    'Ready',
    'Configured',
    'ShardsReady',
    'ReplicasDegraded',
    'ReshardingPending',
    'Resharding',
    'Updating',
    'Degraded',
    'Disabled',
    'Off',
    'DataRetained',
  ]);
  const STATUS_FILES = [
    'operator/status/compute.ts',
    'operator/tiers/shared/workload-status.ts',
    ...readdirSync(join(REPO, 'operator/tiers'))
      .map((t) => `operator/tiers/${t}/status.ts`)
      .filter((f) => {
        try {
          readFileSync(join(REPO, f));
          return true;
        } catch {
          return false;
        }
      }),
  ];
  const literals = new Set(
    STATUS_FILES.flatMap((f) =>
      [...readFileSync(join(REPO, f), 'utf8').matchAll(/'([A-Z][A-Za-z]+)'/g)].map(
        (m) => m[1] as string,
      ),
    ),
  );
  const emitted = new Set([...literals, MAJOR_VERSION_MISMATCH].filter((l) => !NOT_REASONS.has(l)));

  it('has advice for every reason the status code writes that can need attention', () => {
    expect(STATUS_FILES.length).toBeGreaterThan(6);
    expect(emitted.has('NoPrimary')).toBe(true); // the scan sees the tiers' reasons
    const missing = [...emitted].filter((r) => !Object.hasOwn(ADVICE, r) && !CALM_REASONS.has(r));
    expect(missing).toEqual([]);
  });

  it('has no advice for a reason the code does not write', () => {
    expect(Object.keys(ADVICE).filter((r) => !emitted.has(r))).toEqual([]);
  });

  it('points Ready=False <Tier>NotReady at that tier and fills in namespace, app and tier', () => {
    const ctx = { namespace: 'prod', app: 'shop' };
    expect(adviceFor({ type: 'Ready', status: 'False', reason: 'QueueNotReady' }, ctx)).toContain(
      'QueueReady',
    );
    expect(adviceFor({ type: 'SessionsReady', status: 'False', reason: 'NotReady' }, ctx)).toBe(
      'kubectl describe pods -n prod -l scalable.dev/app=shop,scalable.dev/tier=sessions: the events say why the pods are not ready (probe, image, scheduling)',
    );
    // Not a table lookup through the prototype: an odd reason gets the generic advice.
    expect(adviceFor({ type: 'WebReady', status: 'False', reason: 'constructor' }, ctx)).toBe(
      GENERIC_ADVICE.replace('{ns}', 'prod').replace('{app}', 'shop'),
    );
    expect(isProblem({ type: 'Progressing', status: 'False', reason: 'ApplyFailed' })).toBe(true);
    expect(isProblem({ type: 'Progressing', status: 'True', reason: 'Reconciling' })).toBe(false);
    expect(isProblem({ type: 'CacheReady', status: 'Unknown', reason: 'Off' })).toBe(false);
  });
});

describe('scalable status: text', () => {
  const doc = statusDocument(
    gathered({
      app: app({
        database: {
          shards: [
            { index: 0, primary: 'shop-db-0-0', readyReplicas: 2, replicas: 2 },
            { index: 1, primary: 'shop-db-1-0', readyReplicas: 1, replicas: 1 },
          ],
        },
        shardMap: {
          version: 1,
          configMapName: 'shop-shard-map',
          buckets: 1024,
          ranges: [
            { from: 0, to: 512, shard: 0 },
            { from: 512, to: 1024, shard: 1 },
          ],
        },
        conditions: [
          cond('Ready', 'False', 'CacheNotReady', '1/3 Sentinels ready'),
          cond('CacheReady', 'False', 'NoSentinelQuorum', '1/3 Sentinels ready'),
        ],
      }),
      pods: [
        pod('shop-web-1', { tier: 'web', node: 'kwok-zone-a' }),
        pod('shop-cache-0', { tier: 'cache', node: 'kwok-zone-b', ready: false }),
        pod('shop-cache-sentinel-0', { tier: 'cache', component: 'cache-sentinel', ready: false }),
        ...DATABASE,
      ],
      patroniKeys: [syncKey(0, 'shop-db-0-0', 'shop-db-0-1')],
      nodes: {
        'kwok-zone-a': node('kwok-zone-a', 'zone-a'),
        'kwok-zone-b': null,
        'kwok-zone-c': node('kwok-zone-c', 'zone-c'),
      },
      notes: ['zone unknown: nodes are not readable with these credentials (403)'],
    }),
  );

  it('prints a tree per tier with roles, zones, lag, the shard map and advice', () => {
    const text = statusText(doc, { colour: false });
    const lines = text.split('\n').map((l) => l.replace(/\s+/g, ' ').trim());
    expect(lines[0]).toBe('ScalableApp prod/shop not Ready (generation 3, observed 3)');
    expect(lines).toContain('web');
    expect(lines).toContain('└─ shop-web');
    expect(lines).toContain('└─ shop-web-1 web ready kwok-zone-a zone zone-a');
    expect(lines).toContain(
      '├─ shop-cache master known to Sentinel only (SENTINEL get-master-addr-by-name shop-cache)',
    );
    expect(lines).toContain('│ └─ shop-cache-0 redis not ready kwok-zone-b zone unknown');
    expect(lines).toContain('└─ shop-cache-sentinel-0 sentinel not ready not scheduled (Pending)');
    expect(lines).toContain('├─ shop-db-0 shard 0: primary shop-db-0-0, sync standby shop-db-0-1');
    expect(lines).toContain('│ ├─ shop-db-0-1 sync standby ready kwok-zone-b zone unknown lag 0 B');
    expect(lines).toContain('│ └─ shop-db-0-2 replica ready kwok-zone-c zone zone-c lag 160 B');
    expect(lines).toContain('└─ shop-db-1-1 replica ready kwok-zone-c zone zone-c lag unknown');
    expect(lines).toContain(
      'shard map version 1, 1024 buckets (shard 0: 512, shard 1: 512); ConfigMap shop-shard-map',
    );
    expect(lines).toContain('✗ CacheReady False NoSentinelQuorum: 1/3 Sentinels ready');
    expect(lines.some((l) => l.startsWith('next: bring the Sentinel pods back'))).toBe(true);
    expect(lines).toContain('zone unknown: nodes are not readable with these credentials (403)');
    expect(text).not.toContain('\x1b[');
  });

  it('colours only when asked', () => {
    const coloured = statusText(doc, { colour: true });
    expect(coloured).toContain('\x1b[31m'); // red: not ready, problems
    expect(coloured).toContain('\x1b[32m'); // green: ready
    const stripped = coloured
      .split('\x1b[')
      .map((part, i) => (i === 0 ? part : part.replace(/^[0-9;]*m/, '')))
      .join('');
    expect(stripped).toBe(statusText(doc, { colour: false }));
  });

  it('formats byte counts', () => {
    expect([0, 1023, 1024, 1536, 16 * 1024 * 1024, 5 * 1024 ** 3].map(formatBytes)).toEqual([
      '0 B',
      '1023 B',
      '1.0 KiB',
      '1.5 KiB',
      '16.0 MiB',
      '5.0 GiB',
    ]);
  });
});

describe('scalable diagram', () => {
  const doc = statusDocument(
    gathered({
      app: app({ url: 'https://shop.example.com' }),
      pods: [
        pod('shop-web-1', { tier: 'web', node: 'kwok-zone-a' }),
        pod('shop-cache-0', { tier: 'cache', node: 'kwok-zone-b' }),
        pod('shop-cache-sentinel-0', {
          tier: 'cache',
          component: 'cache-sentinel',
          node: 'kwok-zone-c',
        }),
        ...DATABASE,
      ],
      patroniKeys: [syncKey(0, 'shop-db-0-0', 'shop-db-0-1')],
      ingresses: null,
    }),
  );

  it('draws users -> load balancer -> web -> every other tier, and each shard replicating', () => {
    const lines = statusDiagram(doc)
      .split('\n')
      .map((l) => l.trim());
    expect(lines[0]).toBe('flowchart LR');
    expect(lines).toContain('lb{{"load balancer<br/>https://shop.example.com"}}');
    expect(lines).toContain('users --> lb');
    expect(lines).toContain('lb --> tier_web');
    expect(lines).toContain('tier_web --> tier_cache');
    expect(lines).toContain('tier_web --> tier_database');
    expect(lines).toContain('subgraph group_shop_db_0["shop-db-0 (shard 0)"]');
    expect(lines).toContain('subgraph group_shop_cache["shop-cache (master: ask Sentinel)"]');
    expect(lines).toContain('pod_shop_db_0_0["shop-db-0-0<br/>primary, zone-a"]');
    expect(lines).toContain('pod_shop_db_0_2["shop-db-0-2<br/>replica, zone-c<br/>lag 160 B"]');
    expect(lines).toContain('pod_shop_db_0_0 -->|sync| pod_shop_db_0_1');
    expect(lines).toContain('pod_shop_db_0_0 -->|async| pod_shop_db_0_2');
    expect(lines).toContain('pod_shop_db_1_0 -->|async| pod_shop_db_1_1');
    // Every subgraph is closed.
    expect(lines.filter((l) => l.startsWith('subgraph ')).length).toBe(
      lines.filter((l) => l === 'end').length,
    );
  });

  it('keeps labels inside their quotes', () => {
    const odd = statusDocument(
      gathered({ app: app({ url: 'https://x.example/"a"<b>' }), ingresses: null }),
    );
    expect(statusDiagram(odd)).toContain(
      '"load balancer<br/>https://x.example/#quot;a#quot;#lt;b#gt;"',
    );
  });
});
