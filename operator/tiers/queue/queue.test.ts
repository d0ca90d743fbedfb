import { describe, expect, it } from 'vitest';
import type { AppModel } from '../../api/model.ts';
import { appWiring } from '../index.ts';
import type { K8sObject } from '../shared/chart.ts';
import { GENERATED_KEYS_ANNOTATION } from '../shared/secrets.ts';
import { APP_CA, find, kindNames, modelOf, spec, tlsNames } from '../shared/test-helpers.ts';
import { webEnv } from '../web/build.ts';
import { REDIS_STOP_GRACE_SECONDS, readyCommand } from '../../engines/redis/config.ts';
import { adjustWorkers } from './adjust.ts';
import { buildQueue } from './index.ts';

const build = (app: AppModel) => buildQueue(app, appWiring(app));

interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}
/** A label selector as the API server evaluates it (only the operators we render). */
const selects = (s: Selector, labels: Record<string, string>): boolean =>
  Object.entries(s.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
  (s.matchExpressions ?? []).every((e) => {
    if (e.operator === 'In') return (e.values ?? []).includes(labels[e.key] ?? '');
    throw new Error(`operator ${e.operator} not evaluated here`);
  });
/** Pod-template labels of every workload, by workload name. */
const podLabels = (objs: readonly K8sObject[]) =>
  objs
    .filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet')
    .map((o) => ({
      name: o.metadata.name,
      labels: (spec(o) as { template: { metadata: { labels: Record<string, string> } } }).template
        .metadata.labels,
    }));
/** Names of the workloads whose pods the store's NetworkPolicy selects. */
const policed = (objs: readonly K8sObject[]) => {
  const selector = spec(find(objs, 'NetworkPolicy', 'shop-queue')).podSelector as Selector;
  return podLabels(objs)
    .filter((w) => selects(selector, w.labels))
    .map((w) => w.name)
    .sort();
};

const app = modelOf({
  cache: {},
  sessions: {},
  queue: {
    maxLength: 50000,
    consumers: [
      {
        name: 'emails',
        image: 'shop-worker:1',
        maxReplicas: 20,
        targetBacklog: 50,
        maxDeliveries: 3,
        cooldownSeconds: 120,
        pollingIntervalSeconds: 5,
        env: [{ name: 'SMTP_HOST', value: 'smtp' }],
      },
      { name: 'thumbs', image: 'shop-worker:1', stream: 'photos', group: 'thumbnailers' },
    ],
  },
});
const objects = build(app);

describe('buildQueue', () => {
  it('renders nothing and hands the app nothing when the queue is left out', () => {
    const off = modelOf({ cache: {} });
    expect(build(off)).toEqual([]);
    expect(appWiring(off).env.map((e) => e.name)).not.toContain('QUEUE_URL');
  });

  it('renders the store, a worker per consumer, its ScaledObject and one TriggerAuthentication', () => {
    expect(kindNames(objects)).toEqual([
      'Secret/shop-queue-users',
      // The app CA's objects come with the cache here (the first tier with TLS).
      ...tlsNames('shop-queue'),
      'ServiceAccount/shop-queue',
      'ConfigMap/shop-queue-config',
      'Service/shop-queue',
      'Service/shop-queue-headless',
      'StatefulSet/shop-queue',
      'NetworkPolicy/shop-queue',
      'ServiceAccount/shop-worker-emails',
      'NetworkPolicy/shop-worker-emails',
      'Deployment/shop-worker-emails',
      'ServiceAccount/shop-worker-thumbs',
      'NetworkPolicy/shop-worker-thumbs',
      'Deployment/shop-worker-thumbs',
      'ScaledObject/shop-worker-emails',
      'ScaledObject/shop-worker-thumbs',
      'TriggerAuthentication/shop-queue-keda',
    ]);
    for (const o of objects) expect(o.metadata.labels?.['scalable.dev/tier']).toBe('queue');
    expect(
      find(objects, 'Secret', 'shop-queue-users').metadata.annotations?.[GENERATED_KEYS_ANNOTATION],
    ).toBe('admin-password,replication-password,sentinel-password,app-password,exporter-password');
  });

  it('keeps every message: append-only file, everysec, noeviction, on a retained PVC', () => {
    const conf = (
      find(objects, 'ConfigMap', 'shop-queue-config')['data'] as Record<string, string>
    )['redis.conf'];
    expect(conf).toContain('\nappendonly yes\n');
    expect(conf).toContain('\nappendfsync everysec\n');
    expect(conf).toContain('\nmaxmemory-policy noeviction\n');
    expect(conf).not.toMatch(/^requirepass/m);
    const sts = spec(find(objects, 'StatefulSet'));
    expect(sts.replicas).toBe(1);
    expect(sts.volumeClaimTemplates[0].spec.resources.requests.storage).toBe('1Gi');
    expect(sts.persistentVolumeClaimRetentionPolicy).toEqual({
      whenDeleted: 'Retain',
      whenScaled: 'Retain',
    });
    expect(sts.template.spec.containers.map((c: { name: string }) => c.name)).toEqual([
      'redis',
      'exporter',
    ]);
  });

  it("admits only the app's pods and KEDA's namespace to Redis", () => {
    expect(spec(find(objects, 'NetworkPolicy')).ingress).toEqual([
      {
        from: [
          { podSelector: { matchLabels: { 'scalable.dev/app': 'shop' } } },
          { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'keda' } } },
        ],
        ports: [{ port: 6379, protocol: 'TCP' }],
      },
      {
        from: [
          {
            namespaceSelector: {
              matchExpressions: [
                { key: 'kubernetes.io/metadata.name', operator: 'In', values: ['monitoring'] },
              ],
            },
          },
        ],
        ports: [{ port: 9121, protocol: 'TCP' }],
      },
    ]);
  });

  it('polices the store only: workers are not held to its egress (they need the database and the other tiers)', () => {
    expect(policed(objects)).toEqual(['shop-queue']);
  });

  it('gives each worker a NetworkPolicy that admits no traffic in and leaves egress open', () => {
    for (const name of ['shop-worker-emails', 'shop-worker-thumbs']) {
      const np = spec(find(objects, 'NetworkPolicy', name));
      const pods = spec(find(objects, 'Deployment', name)) as {
        template: { metadata: { labels: Record<string, string> } };
      };
      expect(selects(np.podSelector as Selector, pods.template.metadata.labels)).toBe(true);
      expect(np.policyTypes).toEqual(['Ingress']);
      expect(np.ingress).toBeUndefined();
    }
  });

  it('gives web pods the producer side, password by reference', () => {
    const env = webEnv(app, appWiring(app)).filter((e) => e.name.startsWith('QUEUE_'));
    expect(env).toEqual([
      { name: 'QUEUE_URL', value: 'rediss://shop-queue.prod.svc:6379/0' },
      { name: 'QUEUE_USERNAME', value: 'app' },
      {
        name: 'QUEUE_PASSWORD',
        valueFrom: { secretKeyRef: { name: 'shop-queue-users', key: 'app-password' } },
      },
      { name: 'QUEUE_SSLROOTCERT', value: '/etc/scalable/ca/queue-ca/ca.crt' },
      { name: 'QUEUE_MAX_LENGTH', value: '50000' },
    ]);
  });

  const worker = spec(find(objects, 'Deployment', 'shop-worker-emails'));
  const pod = worker.template.spec;
  const container = pod.containers[0];

  it('renders workers without replicas (KEDA owns them), Pod Security restricted, no token', () => {
    expect(worker).not.toHaveProperty('replicas');
    expect(pod.serviceAccountName).toBe('shop-worker-emails');
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(
      find(objects, 'ServiceAccount', 'shop-worker-emails')['automountServiceAccountToken'],
    ).toBe(false);
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(pod.terminationGracePeriodSeconds).toBe(60);
    expect(
      pod.topologySpreadConstraints.map((t: { topologyKey: string }) => t.topologyKey),
    ).toEqual(['topology.kubernetes.io/zone', 'kubernetes.io/hostname']);
    // Each worker selects only its own pods.
    expect(worker.selector.matchLabels['app.kubernetes.io/component']).toBe('worker-emails');
  });

  it('gives workers the app wiring, their consumer env and their own env; passwords by reference', () => {
    const env = container.env as { name: string; value?: string; valueFrom?: unknown }[];
    const byName = Object.fromEntries(env.map((e) => [e.name, e]));
    for (const n of ['SCALABLE_APP', 'REDIS_URL', 'SESSION_REDIS_URL', 'QUEUE_URL', 'SMTP_HOST'])
      expect(byName).toHaveProperty(n);
    expect(env.filter((e) => e.name.startsWith('QUEUE_'))).toEqual([
      { name: 'QUEUE_URL', value: 'rediss://shop-queue.prod.svc:6379/0' },
      { name: 'QUEUE_USERNAME', value: 'app' },
      {
        name: 'QUEUE_PASSWORD',
        valueFrom: { secretKeyRef: { name: 'shop-queue-users', key: 'app-password' } },
      },
      { name: 'QUEUE_SSLROOTCERT', value: '/etc/scalable/ca/queue-ca/ca.crt' },
      { name: 'QUEUE_MAX_LENGTH', value: '50000' },
      { name: 'QUEUE_STREAM', value: 'emails' },
      { name: 'QUEUE_GROUP', value: 'emails' },
      { name: 'QUEUE_CONSUMER', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'QUEUE_DEAD_LETTER_STREAM', value: 'emails:dead' },
      { name: 'QUEUE_MAX_DELIVERIES', value: '3' },
    ]);
    for (const e of env.filter((x) => x.name.endsWith('PASSWORD')))
      expect(e.valueFrom).toHaveProperty('secretKeyRef');
    // The CAs the workers verify the cache, session store and queue against.
    expect(pod.volumes.map((v: { name: string }) => v.name)).toEqual([
      'tmp',
      'cache-ca',
      'sessions-ca',
      'queue-ca',
    ]);
    const thumbs = spec(find(objects, 'Deployment', 'shop-worker-thumbs')).template.spec
      .containers[0].env as { name: string; value?: string }[];
    expect(thumbs.find((e) => e.name === 'QUEUE_STREAM')?.value).toBe('photos');
    expect(thumbs.find((e) => e.name === 'QUEUE_GROUP')?.value).toBe('thumbnailers');
  });

  it('scales each worker with KEDA on its group lag and pending; the first message wakes one from zero', () => {
    const so = find(objects, 'ScaledObject', 'shop-worker-emails');
    expect(so.apiVersion).toBe('keda.sh/v1alpha1');
    expect(spec(so)).toEqual({
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'shop-worker-emails' },
      pollingInterval: 5,
      cooldownPeriod: 120,
      minReplicaCount: 0,
      maxReplicaCount: 20,
      triggers: [
        {
          type: 'redis-streams',
          metadata: {
            address: 'shop-queue.prod.svc:6379',
            username: 'app',
            stream: 'emails',
            consumerGroup: 'emails',
            lagCount: '50',
            activationLagCount: '0',
            enableTLS: 'true',
          },
          authenticationRef: { name: 'shop-queue-keda' },
        },
        {
          type: 'redis-streams',
          metadata: {
            address: 'shop-queue.prod.svc:6379',
            username: 'app',
            stream: 'emails',
            consumerGroup: 'emails',
            pendingEntriesCount: '50',
            activationLagCount: '0',
            enableTLS: 'true',
          },
          authenticationRef: { name: 'shop-queue-keda' },
        },
      ],
    });
    expect(spec(find(objects, 'TriggerAuthentication'))).toEqual({
      secretTargetRef: [
        { parameter: 'password', name: 'shop-queue-users', key: 'app-password' },
        // KEDA verifies the store against the CA (PEM) from its certificate Secret.
        { parameter: 'ca', name: 'shop-queue-tls', key: 'ca.crt' },
      ],
    });
    const plain = build(
      modelOf({ queue: { tls: false, consumers: [{ name: 'a', image: 'w:1' }] } }),
    );
    expect(spec(find(plain, 'TriggerAuthentication')).secretTargetRef).toEqual([
      { parameter: 'password', name: 'shop-queue-users', key: 'app-password' },
    ]);
    expect(spec(find(plain, 'ScaledObject')).triggers[0].metadata).not.toHaveProperty('enableTLS');
    expect(kindNames(plain).filter((n) => /tls|Certificate|Issuer/.test(n))).toEqual([]);
  });

  it('builds no HPA of its own that could fight KEDA over a worker', () => {
    expect(objects.filter((o) => o.kind === 'HorizontalPodAutoscaler')).toEqual([]);
  });
});

describe('buildQueue with replicas (Sentinel)', () => {
  const replicated = modelOf({
    queue: { replicas: 2, consumers: [{ name: 'emails', image: 'w:1' }] },
  });
  const objs = build(replicated);

  it('polices the store and its Sentinels, not the workers', () => {
    expect(policed(objs)).toEqual(['shop-queue', 'shop-queue-sentinel']);
  });

  it('runs replicas + 1 Redis pods, each with its volume, and 3 Sentinels; no Service in front of Redis', () => {
    expect(kindNames(objs)).toEqual([
      'Secret/shop-queue-users',
      ...APP_CA,
      ...tlsNames('shop-queue'),
      'ServiceAccount/shop-queue',
      'ConfigMap/shop-queue-config',
      'Service/shop-queue-headless',
      'StatefulSet/shop-queue',
      'PodDisruptionBudget/shop-queue',
      'Service/shop-queue-sentinel',
      'Service/shop-queue-sentinel-headless',
      'StatefulSet/shop-queue-sentinel',
      'PodDisruptionBudget/shop-queue-sentinel',
      'NetworkPolicy/shop-queue',
      'ServiceAccount/shop-worker-emails',
      'NetworkPolicy/shop-worker-emails',
      'Deployment/shop-worker-emails',
      'ScaledObject/shop-worker-emails',
      'TriggerAuthentication/shop-queue-keda',
    ]);
    const sts = spec(find(objs, 'StatefulSet', 'shop-queue'));
    expect(sts.replicas).toBe(3);
    expect(sts.volumeClaimTemplates).toHaveLength(1);
    // The same immutable fields as one Redis: switching replicas on keeps pod 0's volume.
    const single = spec(find(objects, 'StatefulSet', 'shop-queue'));
    for (const f of ['serviceName', 'podManagementPolicy', 'selector', 'volumeClaimTemplates'])
      expect(sts[f]).toEqual(single[f]);
    expect(sts.template.spec.containers[0].lifecycle.preStop.exec.command).toEqual([
      'sh',
      '/etc/redis/pre-stop.sh',
    ]);
    // Ready only as a master or a replica in sync; time for the preStop to wait for one.
    expect(sts.template.spec.containers[0].readinessProbe.exec.command).toEqual(readyCommand(6379));
    expect(sts.template.spec.terminationGracePeriodSeconds).toBe(REDIS_STOP_GRACE_SECONDS);
    expect(single.template.spec.terminationGracePeriodSeconds).toBe(30);
    const conf = find(objs, 'ConfigMap', 'shop-queue-config')['data'] as Record<string, string>;
    expect(conf['sentinel.conf']).toContain('\ntls-port 26379\n');
    expect(conf['sentinel.conf']).toContain('sentinel monitor shop-queue @MASTER_HOST@');
  });

  it('hands apps and KEDA the Sentinels and the master name instead of a URL', () => {
    const env = appWiring(replicated).env.filter((e) => e.name.startsWith('QUEUE_'));
    expect(env.map((e) => e.name)).toEqual([
      'QUEUE_SENTINELS',
      'QUEUE_MASTER_NAME',
      'QUEUE_USERNAME',
      'QUEUE_PASSWORD',
      'QUEUE_SSLROOTCERT',
      'QUEUE_MAX_LENGTH',
    ]);
    const sentinels = env[0]?.value ?? '';
    expect(sentinels.split(',')).toEqual(
      [0, 1, 2].map((i) => `shop-queue-sentinel-${i}.shop-queue-sentinel-headless.prod.svc:26379`),
    );
    expect(env[1]?.value).toBe('shop-queue');
    const trigger = spec(find(objs, 'ScaledObject')).triggers[0];
    expect(trigger.type).toBe('redis-sentinel-streams');
    expect(trigger.metadata).toMatchObject({
      addresses: sentinels,
      sentinelMaster: 'shop-queue',
      // The app user, on the Sentinels too: it may only ask where the master is.
      username: 'app',
      sentinelUsername: 'app',
    });
    expect(
      spec(find(objs, 'TriggerAuthentication')).secretTargetRef.map(
        (r: { parameter: string }) => r.parameter,
      ),
    ).toEqual(['password', 'sentinelPassword', 'ca']);
    expect(
      spec(find(objs, 'NetworkPolicy')).ingress[0].ports.map((p: { port: number }) => p.port),
    ).toEqual([6379, 26379]);
  });
});

describe('adjustWorkers (who owns replicas)', () => {
  const fixed = modelOf({
    queue: {
      consumers: [
        { name: 'a', image: 'w:1', minReplicas: 3, maxReplicas: 5 },
        { name: 'b', image: 'w:1' },
      ],
    },
  });
  const desired = build(fixed);
  const replicasOf = (objs: readonly K8sObject[], name: string) =>
    spec(find(objs, 'Deployment', name)).replicas;

  it('runs max(minReplicas, 1) workers while no ScaledObject is live (KEDA not installed)', () => {
    const out = adjustWorkers(fixed, desired, { object: () => undefined, status: {} });
    expect(replicasOf(out, 'shop-worker-a')).toBe(3);
    expect(replicasOf(out, 'shop-worker-b')).toBe(1);
    // Nothing else changes.
    expect(out.filter((o) => o.kind !== 'Deployment')).toEqual(
      desired.filter((o) => o.kind !== 'Deployment'),
    );
  });

  it('leaves replicas to KEDA once the ScaledObject is live', () => {
    const out = adjustWorkers(fixed, desired, {
      object: (o) => (o.kind === 'ScaledObject' ? o : undefined),
      status: {},
    });
    expect(out).toEqual(desired);
    expect(spec(find(out, 'Deployment', 'shop-worker-a'))).not.toHaveProperty('replicas');
  });
});
