// The queue store: a Redis of its own for Redis Streams (never the cache: cache data is
// evictable, queued messages are not), with an append-only file on a PVC and noeviction, so a
// full store refuses new messages instead of dropping queued ones. replicas: 0 is one Redis;
// replicas > 0 adds replicas (each with its own volume) and 3 Sentinels that promote one when
// the master fails. Both are the StatefulSet <app>-queue with the same immutable fields, so
// switching replicas on keeps pod 0's volume: it is the master of the new set.
import type { Chart } from 'cdk8s';
import { k8s } from '../shared/k8s.ts';
import type { AppModel } from '../../api/model.ts';
import type { AppWiring, EnvVar } from '../tier.ts';
import { synth } from '../shared/chart.ts';
import type { K8sObject } from '../shared/chart.ts';
import {
  APP_LABEL,
  COMPONENT_LABEL,
  TIER_LABEL,
  labelsOf,
  metadataOf,
  nameOf,
  selectorOf,
} from '../shared/meta.ts';
import { topologySpreadOf } from '../shared/pod-security.ts';
import { dataTierEgress } from '../shared/egress.ts';
import { quantity } from '../shared/quantity.ts';
import {
  EXPORTER_PORT,
  PRE_STOP_REDIS_SH,
  REDIS_PORT,
  SENTINEL_PORT,
  START_REDIS_SH,
  START_SENTINEL_SH,
  memoryLimitOf,
  persistentRedisConf,
  sentinelConf,
} from '../../engines/redis/config.ts';
import {
  CONFIG_HASH_ANNOTATION,
  PASSWORD_KEY,
  configHashOf,
  exporterContainer,
  passwordEnv,
  redisContainer,
  redisPodSpec,
  redisTlsObjects,
  serviceAccount,
  svcHost,
} from '../../engines/redis/pod.ts';
import { caFileOf, caWiring, tlsSecretName } from '../shared/tls/objects.ts';
import {
  discoveryEnv,
  maxOneDown,
  redisSelfAddr,
  sentinelAddresses,
  sentinelSet,
} from '../../engines/redis/sentinel.ts';
import type { SentinelNames } from '../../engines/redis/sentinel.ts';
import { generatedSecret } from '../shared/secrets.ts';
import { streamsOf } from './streams.ts';

export type QueueSpec = NonNullable<AppModel['queue']>;

export const QUEUE_TIER = 'queue';
export const QUEUE_SENTINEL_COMPONENT = 'queue-sentinel';

export function queueNames(app: AppModel) {
  return {
    queue: nameOf(app, 'queue'),
    auth: nameOf(app, 'queue', 'auth'),
    config: nameOf(app, 'queue', 'config'),
    headless: nameOf(app, 'queue', 'headless'),
    sentinel: nameOf(app, 'queue', 'sentinel'),
    sentinelHeadless: nameOf(app, 'queue', 'sentinel', 'headless'),
    /** The KEDA TriggerAuthentication that hands the scalers the password. */
    keda: nameOf(app, 'queue', 'keda'),
  };
}

const sentinelNames = (app: AppModel): SentinelNames => {
  const n = queueNames(app);
  return { ...n, redis: n.queue, serviceAccount: n.queue };
};

/** Name Sentinel knows the queue master by (QUEUE_MASTER_NAME). */
export const queueMasterName = (app: AppModel): string => `${app.name}-queue`;

/** Where pods and KEDA (from its own namespace) reach the store. */
export type QueueTarget =
  | { readonly kind: 'url'; readonly address: string }
  | { readonly kind: 'sentinel'; readonly sentinels: readonly string[]; readonly master: string };

export function queueTarget(app: AppModel, queue: QueueSpec): QueueTarget {
  return queue.replicas === 0
    ? { kind: 'url', address: `${svcHost(app, queueNames(app).queue)}:${REDIS_PORT}` }
    : {
        kind: 'sentinel',
        sentinels: sentinelAddresses(app, sentinelNames(app)),
        master: queueMasterName(app),
      };
}

/** The app pod's volume (and directory under /etc/scalable/ca) holding the store's CA. */
const CA_VOLUME = 'queue-ca';

/** The Secret whose ca.crt verifies the store (app pods and KEDA's TriggerAuthentication). */
export const queueTlsSecretName = (app: AppModel): string => tlsSecretName(queueNames(app).queue);

/**
 * The producer side, for every app pod: where the store is, its password, the retention.
 * With TLS a rediss:// URL by the name the certificate carries (with Sentinel: TLS to the
 * Sentinels and the master alike), and QUEUE_SSLROOTCERT (the CA file).
 */
export function queueEnv(app: AppModel): EnvVar[] {
  const queue = app.queue;
  if (!queue) return [];
  const n = queueNames(app);
  const url = queue.tls
    ? `rediss://${svcHost(app, n.queue)}:${REDIS_PORT}/0`
    : `redis://${n.queue}:${REDIS_PORT}/0`;
  return [
    // With Sentinel no URL: a Service would send writes to read-only replicas.
    ...(queue.replicas === 0
      ? [{ name: 'QUEUE_URL', value: url }]
      : [
          { name: 'QUEUE_SENTINELS', value: sentinelAddresses(app, sentinelNames(app)).join(',') },
          { name: 'QUEUE_MASTER_NAME', value: queueMasterName(app) },
        ]),
    passwordEnv('QUEUE_PASSWORD', n.auth),
    ...(queue.tls ? [{ name: 'QUEUE_SSLROOTCERT', value: caFileOf(CA_VOLUME) }] : []),
    { name: 'QUEUE_MAX_LENGTH', value: String(queue.maxLength) },
  ];
}

/** The env above and, with TLS, the CA mounted from the store's certificate Secret. */
export function queueWiring(app: AppModel): Partial<AppWiring> {
  const tls = app.queue?.tls ? caWiring(CA_VOLUME, queueNames(app).queue) : undefined;
  return { env: queueEnv(app), ...(tls ?? {}) };
}

export const queueConfigData = (app: AppModel, queue: QueueSpec): Record<string, string> => ({
  'redis.conf': persistentRedisConf(
    queue.memory,
    'Queue Redis: streams, persistent, never evicts',
    queue.tls,
  ),
  'start-redis.sh': START_REDIS_SH,
  ...(queue.replicas > 0
    ? {
        'pre-stop.sh': PRE_STOP_REDIS_SH,
        'sentinel.conf': sentinelConf(queueMasterName(app), queue.tls),
        'start-sentinel.sh': START_SENTINEL_SH,
      }
    : {}),
});

/**
 * redis_exporter's --check-single-streams (the same env in 1.45 and the image's release):
 * stream length per stream, pending and (Redis 7, exporter >= 1.52) lag per group. A stream
 * that does not exist yet (a dead-letter stream, usually) is skipped with an error log line.
 */
export const exporterStreamsEnv = (queue: QueueSpec): EnvVar[] => {
  const streams = streamsOf(queue.consumers);
  return streams.length > 0
    ? [{ name: 'REDIS_EXPORTER_CHECK_SINGLE_STREAMS', value: streams.join(',') }]
    : [];
};

export function buildStore(app: AppModel, queue: QueueSpec): K8sObject[] {
  const n = queueNames(app);
  const data = queueConfigData(app, queue);
  const replicated = queue.replicas > 0;
  const selector = selectorOf(app, QUEUE_TIER);
  // Each pod restarts only when the keys it reads change.
  const pick = (...keys: string[]) =>
    configHashOf(Object.fromEntries(keys.filter((k) => k in data).map((k) => [k, data[k] ?? ''])));
  const ports = [
    { name: 'redis', port: REDIS_PORT, targetPort: k8s.IntOrString.fromString('redis') },
    { name: 'metrics', port: EXPORTER_PORT, targetPort: k8s.IntOrString.fromString('metrics') },
  ];
  const objects = synth((chart) => {
    serviceAccount(chart, app, QUEUE_TIER, n.queue);
    new k8s.KubeConfigMap(chart, 'queue-config', {
      metadata: metadataOf(app, QUEUE_TIER, n.config),
      data,
    });
    // With Sentinel there is no Service in front of Redis: it would reach replicas too.
    if (!replicated)
      new k8s.KubeService(chart, 'queue-svc', {
        metadata: metadataOf(app, QUEUE_TIER, n.queue),
        spec: { type: 'ClusterIP', selector, ports },
      });
    new k8s.KubeService(chart, 'queue-headless', {
      metadata: metadataOf(app, QUEUE_TIER, n.headless),
      spec: { clusterIp: 'None', publishNotReadyAddresses: true, selector, ports },
    });
    const sn = sentinelNames(app);
    const redisEnv = replicated
      ? [...discoveryEnv(app, sn, queueMasterName(app)), redisSelfAddr(app, sn)]
      : [];
    new k8s.KubeStatefulSet(chart, 'queue-sts', {
      metadata: metadataOf(app, QUEUE_TIER, n.queue),
      spec: {
        replicas: queue.replicas + 1,
        serviceName: n.headless,
        selector: { matchLabels: selector },
        // Pod 0 first: it is the master of a fresh set. Immutable, so the same in both modes.
        podManagementPolicy: 'OrderedReady',
        revisionHistoryLimit: 5,
        // Queued messages outlive the StatefulSet: the volumes stay when it is deleted.
        persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
        template: {
          metadata: {
            labels: labelsOf(app, QUEUE_TIER),
            annotations: {
              [CONFIG_HASH_ANNOTATION]: pick('redis.conf', 'start-redis.sh', 'pre-stop.sh'),
            },
          },
          spec: redisPodSpec({
            serviceAccountName: n.queue,
            configMapName: n.config,
            containers: [
              redisContainer({
                app,
                secretName: n.auth,
                memoryLimit: memoryLimitOf(queue.memory),
                env: redisEnv,
                // A master hands over to a replica before it stops (rollouts, drains).
                ...(replicated ? { preStop: 'pre-stop.sh' } : {}),
                tls: queue.tls,
              }),
              // The consumers' streams and dead-letter streams, by name (no SCAN): lag,
              // pending and length per stream and group for the monitoring tier's alerts.
              exporterContainer(app, n.auth, exporterStreamsEnv(queue), queue.tls),
            ],
            spread: replicated ? topologySpreadOf(app, selector) : undefined,
            tlsBase: queue.tls ? n.queue : undefined,
          }),
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'data', labels: labelsOf(app, QUEUE_TIER) },
            spec: {
              accessModes: ['ReadWriteOnce'],
              resources: { requests: { storage: quantity(queue.storage.size) } },
              ...(queue.storage.storageClassName !== undefined
                ? { storageClassName: queue.storage.storageClassName }
                : {}),
            },
          },
        ],
      },
    });
    if (replicated) {
      maxOneDown(chart, app, QUEUE_TIER, 'queue-pdb', n.queue, selector);
      sentinelSet(
        chart,
        app,
        QUEUE_TIER,
        QUEUE_SENTINEL_COMPONENT,
        sn,
        queueMasterName(app),
        pick('sentinel.conf', 'start-sentinel.sh'),
        queue.tls ? n.queue : undefined,
      );
    }
    storeNetworkPolicy(chart, app, queue, n.queue);
  });
  const tls = queue.tls
    ? redisTlsObjects(
        app,
        QUEUE_TIER,
        n.queue,
        [n.queue, n.sentinel],
        [n.headless, n.sentinelHeadless],
      )
    : [];
  return [generatedSecret(app, QUEUE_TIER, n.auth, [PASSWORD_KEY]), ...tls, ...objects];
}

/**
 * This app's pods (producers and workers) and KEDA's namespace (its scalers read the
 * backlog) may reach Redis; the metrics port is open to any pod only when monitoring is on.
 */
function storeNetworkPolicy(chart: Chart, app: AppModel, queue: QueueSpec, name: string) {
  const ports = queue.replicas > 0 ? [REDIS_PORT, SENTINEL_PORT] : [REDIS_PORT];
  const redis = ports.map((port) => ({
    port: k8s.IntOrString.fromNumber(port),
    protocol: 'TCP',
  }));
  const pods = { [APP_LABEL]: app.name, [TIER_LABEL]: QUEUE_TIER };
  // The store and its Sentinels only: worker pods share the tier label, and this policy's
  // egress would cut them off from the database and the other tiers they use.
  const storePods = [
    { key: COMPONENT_LABEL, operator: 'In', values: [QUEUE_TIER, QUEUE_SENTINEL_COMPONENT] },
  ];
  new k8s.KubeNetworkPolicy(chart, 'queue-netpol', {
    metadata: metadataOf(app, QUEUE_TIER, name),
    spec: {
      podSelector: { matchLabels: pods, matchExpressions: storePods },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        {
          from: [
            { podSelector: { matchLabels: { [APP_LABEL]: app.name } } },
            {
              namespaceSelector: {
                matchLabels: { 'kubernetes.io/metadata.name': queue.kedaNamespace },
              },
            },
          ],
          ports: redis,
        },
        ...(app.monitoring
          ? [{ ports: [{ port: k8s.IntOrString.fromNumber(EXPORTER_PORT), protocol: 'TCP' }] }]
          : []),
      ],
      // DNS and its own pods: replicas and Sentinels (see redisNetworkPolicy).
      egress: dataTierEgress({ peers: pods, peerExpressions: storePods, peerPorts: ports }),
    },
  });
}
