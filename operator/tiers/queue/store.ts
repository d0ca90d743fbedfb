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
import type { K8sObject } from '../shared/chart.ts';
import {
  APP_LABEL,
  COMPONENT_LABEL,
  TIER_LABEL,
  metadataOf,
  nameOf,
  selectorOf,
} from '../shared/meta.ts';
import { memberSpreadOf } from '../shared/pod-security.ts';
import { dataTierEgress, scrapeIngress } from '../shared/egress.ts';
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
import { svcHost } from '../../engines/redis/pod.ts';
import { redisObjects, redisSet } from '../../engines/redis/store.ts';
import { clientEnv, clientWiring } from '../../engines/redis/client.ts';
import type { RedisClient } from '../../engines/redis/client.ts';
import { replicatedRedisNames } from '../../engines/redis/names.ts';
import {
  redisDiscoveryEnv,
  sentinelAddresses,
  sentinelReplication,
} from '../../engines/redis/sentinel.ts';
import { tlsSecretName } from '../shared/tls/objects.ts';
import { streamsOf } from './streams.ts';

export type QueueSpec = NonNullable<AppModel['queue']>;

export const QUEUE_TIER = 'queue';
export const QUEUE_SENTINEL_COMPONENT = 'queue-sentinel';

export function queueNames(app: AppModel) {
  const n = replicatedRedisNames(app, QUEUE_TIER);
  return {
    ...n,
    queue: n.redis,
    /** The KEDA TriggerAuthentication that hands the scalers the password. */
    keda: nameOf(app, 'queue', 'keda'),
  };
}

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
        sentinels: sentinelAddresses(app, queueNames(app)),
        master: queueMasterName(app),
      };
}

/** The Secret whose ca.crt verifies the store (app pods and KEDA's TriggerAuthentication). */
export const queueTlsSecretName = (app: AppModel): string => tlsSecretName(queueNames(app).queue);

function client(app: AppModel, queue: QueueSpec): RedisClient {
  const common = {
    prefix: 'QUEUE',
    tls: queue.tls,
    caVolume: 'queue-ca',
    env: [{ name: 'QUEUE_MAX_LENGTH', value: String(queue.maxLength) }],
  };
  // With Sentinel no URL: a Service would send writes to read-only replicas.
  return queue.replicas > 0
    ? { ...common, names: queueNames(app), master: queueMasterName(app) }
    : { ...common, names: queueNames(app) };
}

/**
 * The producer side, for every app pod: where the store is, its password, the retention.
 * With TLS a rediss:// URL by the name the certificate carries (with Sentinel: TLS to the
 * Sentinels and the master alike), and QUEUE_SSLROOTCERT (the CA file).
 */
export const queueEnv = (app: AppModel): EnvVar[] =>
  app.queue ? clientEnv(app, client(app, app.queue)) : [];

/** The env above and, with TLS, the CA mounted from the store's certificate Secret. */
export const queueWiring = (app: AppModel): Partial<AppWiring> =>
  clientWiring(app, app.queue && client(app, app.queue));

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
  const t = { app, tier: QUEUE_TIER, names: n, data, tls: queue.tls } as const;
  const replicated = queue.replicas > 0;
  return redisObjects(t, (chart) => {
    redisSet(chart, t, {
      replicas: queue.replicas + 1,
      // With Sentinel there is no Service in front of Redis: it would reach replicas too.
      service: !replicated,
      // Pod 0 first: it is the master of a fresh set. Immutable, so the same in both modes.
      orderedReady: true,
      // Queued messages outlive the StatefulSet.
      storage: queue.storage,
      pod: {
        memoryLimit: memoryLimitOf(queue.memory),
        env: replicated ? redisDiscoveryEnv(app, n, queueMasterName(app)) : [],
        // A master hands over to a replica before it stops (rollouts, drains).
        preStop: replicated ? 'pre-stop.sh' : undefined,
        // The consumers' streams and dead-letter streams, by name (no SCAN): lag, pending
        // and length per stream and group for the monitoring tier's alerts.
        exporterEnv: exporterStreamsEnv(queue),
        // A master and its replicas: copies of the queue, one per node (memberSpreadOf).
        spread: replicated
          ? memberSpreadOf(app, selectorOf(app, QUEUE_TIER), queue.replicas + 1)
          : undefined,
      },
    });
    if (replicated) sentinelReplication(chart, t, QUEUE_SENTINEL_COMPONENT, queueMasterName(app));
    storeNetworkPolicy(chart, app, queue, n.queue);
  });
}

/**
 * This app's pods (producers and workers) and KEDA's namespace (its scalers read the
 * backlog) may reach Redis; the metrics port only Prometheus's namespaces (shared/egress.ts).
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
        scrapeIngress(app, [EXPORTER_PORT]),
      ],
      // DNS and its own pods: replicas and Sentinels (see redisNetworkPolicy).
      egress: dataTierEgress(app, { peers: pods, peerExpressions: storePods, peerPorts: ports }),
    },
  });
}
