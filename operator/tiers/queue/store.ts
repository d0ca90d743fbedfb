// The queue store: a Redis of its own for Redis Streams (never the cache: cache data is
// evictable, queued messages are not), with an append-only file on a PVC and noeviction, so a
// full store refuses new messages instead of dropping queued ones.
import type { Chart } from 'cdk8s';
import { k8s } from '../shared/k8s.ts';
import type { AppModel } from '../../api/model.ts';
import type { EnvVar } from '../tier.ts';
import { synth } from '../shared/chart.ts';
import type { K8sObject } from '../shared/chart.ts';
import { APP_LABEL, TIER_LABEL, labelsOf, metadataOf, nameOf, selectorOf } from '../shared/meta.ts';
import { quantity } from '../shared/quantity.ts';
import {
  EXPORTER_PORT,
  REDIS_PORT,
  START_REDIS_SH,
  memoryLimitOf,
  persistentRedisConf,
} from '../shared/redis-config.ts';
import {
  CONFIG_HASH_ANNOTATION,
  PASSWORD_KEY,
  configHashOf,
  exporterContainer,
  passwordEnv,
  redisContainer,
  redisPodSpec,
  serviceAccount,
  svcHost,
} from '../shared/redis-pod.ts';
import { generatedSecret } from '../shared/secrets.ts';

export type QueueSpec = NonNullable<AppModel['queue']>;

export const QUEUE_TIER = 'queue';

export function queueNames(app: AppModel) {
  return {
    queue: nameOf(app, 'queue'),
    auth: nameOf(app, 'queue', 'auth'),
    config: nameOf(app, 'queue', 'config'),
    headless: nameOf(app, 'queue', 'headless'),
    /** The KEDA TriggerAuthentication that hands the scalers the password. */
    keda: nameOf(app, 'queue', 'keda'),
  };
}

/** host:port of the queue store as pods and KEDA (in its own namespace) reach it. */
export const queueAddress = (app: AppModel): string =>
  `${svcHost(app, queueNames(app).queue)}:${REDIS_PORT}`;

/** The producer side, for every app pod: where the store is, its password, the retention. */
export function queueEnv(app: AppModel): EnvVar[] {
  if (!app.queue) return [];
  const n = queueNames(app);
  return [
    { name: 'QUEUE_URL', value: `redis://${n.queue}:${REDIS_PORT}/0` },
    passwordEnv('QUEUE_PASSWORD', n.auth),
    { name: 'QUEUE_MAX_LENGTH', value: String(app.queue.maxLength) },
  ];
}

export const queueConfigData = (queue: QueueSpec): Record<string, string> => ({
  'redis.conf': persistentRedisConf(queue.memory, 'Queue Redis: streams, persistent, never evicts'),
  'start-redis.sh': START_REDIS_SH,
});

export function buildStore(app: AppModel, queue: QueueSpec): K8sObject[] {
  const n = queueNames(app);
  const data = queueConfigData(queue);
  const selector = selectorOf(app, QUEUE_TIER);
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
    new k8s.KubeService(chart, 'queue-svc', {
      metadata: metadataOf(app, QUEUE_TIER, n.queue),
      spec: { type: 'ClusterIP', selector, ports },
    });
    new k8s.KubeService(chart, 'queue-headless', {
      metadata: metadataOf(app, QUEUE_TIER, n.headless),
      spec: { clusterIp: 'None', publishNotReadyAddresses: true, selector, ports },
    });
    new k8s.KubeStatefulSet(chart, 'queue-sts', {
      metadata: metadataOf(app, QUEUE_TIER, n.queue),
      spec: {
        replicas: 1,
        serviceName: n.headless,
        selector: { matchLabels: selector },
        revisionHistoryLimit: 5,
        // Queued messages outlive the StatefulSet: the volume stays when it is deleted.
        persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
        template: {
          metadata: {
            labels: labelsOf(app, QUEUE_TIER),
            annotations: { [CONFIG_HASH_ANNOTATION]: configHashOf(data) },
          },
          spec: redisPodSpec({
            serviceAccountName: n.queue,
            configMapName: n.config,
            containers: [
              redisContainer({ app, secretName: n.auth, memoryLimit: memoryLimitOf(queue.memory) }),
              exporterContainer(app, n.auth),
            ],
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
    storeNetworkPolicy(chart, app, queue, n.queue);
  });
  return [generatedSecret(app, QUEUE_TIER, n.auth, [PASSWORD_KEY]), ...objects];
}

/**
 * This app's pods (producers and workers) and KEDA's namespace (its scalers read the
 * backlog) may reach Redis; the metrics port is open to any pod only when monitoring is on.
 */
function storeNetworkPolicy(chart: Chart, app: AppModel, queue: QueueSpec, name: string) {
  const redis = [{ port: k8s.IntOrString.fromNumber(REDIS_PORT), protocol: 'TCP' }];
  new k8s.KubeNetworkPolicy(chart, 'queue-netpol', {
    metadata: metadataOf(app, QUEUE_TIER, name),
    spec: {
      podSelector: { matchLabels: { [APP_LABEL]: app.name, [TIER_LABEL]: QUEUE_TIER } },
      policyTypes: ['Ingress'],
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
    },
  });
}
