// The cache tier: a Redis with maxmemory and an eviction policy, no persistence, a generated
// password, a redis_exporter sidecar and a NetworkPolicy. replicas: 0 is one Redis
// (Deployment + Service); replicas > 0 is a StatefulSet of replicas + 1 Redis pods and a
// 3-member Sentinel StatefulSet that promotes a replica when the master fails.
import type { Chart } from 'cdk8s';
import { k8s } from '../shared/k8s.ts';
import type { AppModel } from '../../api/model.ts';
import type { AppWiring, EnvVar } from '../tier.ts';
import { synth } from '../shared/chart.ts';
import type { K8sObject } from '../shared/chart.ts';
import { labelsOf, metadataOf, nameOf, selectorOf } from '../shared/meta.ts';
import { topologySpreadOf } from '../shared/pod-security.ts';
import {
  EXPORTER_PORT,
  PRE_STOP_REDIS_SH,
  REDIS_PORT,
  SENTINEL_PORT,
  START_REDIS_SH,
  START_SENTINEL_SH,
  cacheRedisConf,
  masterNameOf,
  memoryLimitOf,
  sentinelConf,
} from '../../engines/redis/config.ts';
import {
  CONFIG_HASH_ANNOTATION,
  PASSWORD_KEY,
  configHashOf,
  exporterContainer,
  passwordEnv,
  redisContainer,
  redisNetworkPolicy,
  redisPodSpec,
  redisTlsObjects,
  serviceAccount,
  svcHost,
} from '../../engines/redis/pod.ts';
import { caFileOf, caWiring } from '../shared/tls/objects.ts';
import { generatedSecret } from '../shared/secrets.ts';
import {
  discoveryEnv,
  redisSelfAddr,
  sentinelSet,
  sentinelAddresses as sharedSentinelAddresses,
} from '../../engines/redis/sentinel.ts';
import type { SentinelNames } from '../../engines/redis/sentinel.ts';

type CacheSpec = NonNullable<AppModel['cache']>;

export const SENTINEL_COMPONENT = 'cache-sentinel';

export function cacheNames(app: AppModel) {
  return {
    cache: nameOf(app, 'cache'),
    auth: nameOf(app, 'cache', 'auth'),
    config: nameOf(app, 'cache', 'config'),
    headless: nameOf(app, 'cache', 'headless'),
    sentinel: nameOf(app, 'cache', 'sentinel'),
    sentinelHeadless: nameOf(app, 'cache', 'sentinel', 'headless'),
  };
}

/** The cache's Redis and Sentinel names, as the shared Sentinel set wants them. */
function sentinelNames(app: AppModel): SentinelNames {
  const n = cacheNames(app);
  return { ...n, redis: n.cache, serviceAccount: n.cache };
}

/** host:port of each Sentinel: stable StatefulSet pod names behind a headless Service. */
export const sentinelAddresses = (app: AppModel): string[] =>
  sharedSentinelAddresses(app, sentinelNames(app));

/** The app pod's volume (and directory under /etc/scalable/ca) holding the cache's CA. */
const CA_VOLUME = 'cache-ca';

/**
 * What the app pods get: REDIS_URL, or the Sentinels and master name; the TTL. With TLS a
 * rediss:// URL by the name the certificate carries, and REDIS_SSLROOTCERT (the CA file).
 */
export function cacheEnv(app: AppModel): EnvVar[] {
  const cache = app.cache;
  if (!cache) return [];
  const n = cacheNames(app);
  const url = cache.tls
    ? `rediss://${svcHost(app, n.cache)}:${REDIS_PORT}/0`
    : `redis://${n.cache}:${REDIS_PORT}/0`;
  return [
    ...(cache.replicas === 0
      ? [{ name: 'REDIS_URL', value: url }]
      : [
          { name: 'REDIS_SENTINELS', value: sentinelAddresses(app).join(',') },
          { name: 'REDIS_MASTER_NAME', value: masterNameOf(app) },
        ]),
    passwordEnv('REDIS_PASSWORD', n.auth),
    ...(cache.tls ? [{ name: 'REDIS_SSLROOTCERT', value: caFileOf(CA_VOLUME) }] : []),
    { name: 'CACHE_TTL_SECONDS', value: String(cache.defaultTTLSeconds) },
  ];
}

/** The env above and, with TLS, the CA mounted from the cache's certificate Secret. */
export function cacheWiring(app: AppModel): Partial<AppWiring> {
  const tls = app.cache?.tls ? caWiring(CA_VOLUME, cacheNames(app).cache) : undefined;
  return { env: cacheEnv(app), ...(tls ?? {}) };
}

/** The ConfigMap's data: exactly what the pods run and the engine tests start. */
export function cacheConfigData(app: AppModel, cache: CacheSpec): Record<string, string> {
  return {
    'redis.conf': cacheRedisConf(cache),
    'start-redis.sh': START_REDIS_SH,
    ...(cache.replicas > 0
      ? {
          'pre-stop.sh': PRE_STOP_REDIS_SH,
          'sentinel.conf': sentinelConf(masterNameOf(app), cache.tls),
          'start-sentinel.sh': START_SENTINEL_SH,
        }
      : {}),
  };
}

export function buildCache(app: AppModel): K8sObject[] {
  const cache = app.cache;
  if (!cache) return [];
  const n = cacheNames(app);
  const data = cacheConfigData(app, cache);
  const objects = synth((chart) => {
    serviceAccount(chart, app, 'cache', n.cache);
    new k8s.KubeConfigMap(chart, 'cache-config', {
      metadata: metadataOf(app, 'cache', n.config),
      data,
    });
    // Each pod restarts only when the keys it reads change.
    const pick = (...keys: string[]) =>
      configHashOf(
        Object.fromEntries(keys.filter((k) => k in data).map((k) => [k, data[k] ?? ''])),
      );
    const hash = pick('redis.conf', 'start-redis.sh', 'pre-stop.sh');
    if (cache.replicas === 0) standalone(chart, app, cache, hash);
    else replicated(chart, app, cache, hash, pick('sentinel.conf', 'start-sentinel.sh'));
    redisNetworkPolicy(
      chart,
      app,
      'cache',
      n.cache,
      cache.replicas === 0 ? [REDIS_PORT] : [REDIS_PORT, SENTINEL_PORT],
    );
  });
  const tls = cache.tls
    ? redisTlsObjects(
        app,
        'cache',
        n.cache,
        [n.cache, n.sentinel],
        [n.headless, n.sentinelHeadless],
      )
    : [];
  return [generatedSecret(app, 'cache', n.auth, [PASSWORD_KEY]), ...tls, ...objects];
}

function redisPodTemplate(
  app: AppModel,
  cache: CacheSpec,
  hash: string,
  env: readonly EnvVar[] = [],
  preStop?: string,
): k8s.PodTemplateSpec {
  const n = cacheNames(app);
  const memoryLimit = memoryLimitOf(cache.memory);
  return {
    metadata: { labels: labelsOf(app, 'cache'), annotations: { [CONFIG_HASH_ANNOTATION]: hash } },
    spec: redisPodSpec({
      serviceAccountName: n.cache,
      configMapName: n.config,
      containers: [
        redisContainer({
          app,
          secretName: n.auth,
          memoryLimit,
          // The data emptyDir below.
          ephemeralStorage: memoryLimit,
          env,
          ...(preStop ? { preStop } : {}),
          tls: cache.tls,
        }),
        exporterContainer(app, n.auth, [], cache.tls),
      ],
      // A replica may fall back to a disk-based full sync: room for one dataset copy.
      dataEmptyDir: memoryLimit,
      spread: topologySpreadOf(app, selectorOf(app, 'cache')),
      tlsBase: cache.tls ? n.cache : undefined,
    }),
  };
}

const redisPorts = (): k8s.ServicePort[] => [
  { name: 'redis', port: REDIS_PORT, targetPort: k8s.IntOrString.fromString('redis') },
  { name: 'metrics', port: EXPORTER_PORT, targetPort: k8s.IntOrString.fromString('metrics') },
];

/** One Redis. Recreate, not a rolling update: two caches behind one Service would serve stale keys. */
function standalone(chart: Chart, app: AppModel, cache: CacheSpec, hash: string) {
  const n = cacheNames(app);
  const selector = selectorOf(app, 'cache');
  new k8s.KubeDeployment(chart, 'cache-deploy', {
    metadata: metadataOf(app, 'cache', n.cache),
    spec: {
      replicas: 1,
      selector: { matchLabels: selector },
      revisionHistoryLimit: 5,
      strategy: { type: 'Recreate' },
      template: redisPodTemplate(app, cache, hash),
    },
  });
  new k8s.KubeService(chart, 'cache-svc', {
    metadata: metadataOf(app, 'cache', n.cache),
    spec: { type: 'ClusterIP', selector, ports: redisPorts() },
  });
}

/** Redis master + replicas and 3 Sentinels; the app finds the master through Sentinel. */
function replicated(
  chart: Chart,
  app: AppModel,
  cache: CacheSpec,
  hash: string,
  sentinelHash: string,
) {
  const n = cacheNames(app);
  const selector = selectorOf(app, 'cache');
  const set = sentinelNames(app);
  const discovery = discoveryEnv(app, set, masterNameOf(app));
  // Pods resolve each other before they are ready (replication, Sentinel's monitor line).
  new k8s.KubeService(chart, 'cache-headless', {
    metadata: metadataOf(app, 'cache', n.headless),
    spec: { clusterIp: 'None', publishNotReadyAddresses: true, selector, ports: redisPorts() },
  });
  new k8s.KubeStatefulSet(chart, 'cache-sts', {
    metadata: metadataOf(app, 'cache', n.cache),
    spec: {
      replicas: cache.replicas + 1,
      serviceName: n.headless,
      selector: { matchLabels: selector },
      // Pod 0 first: it is the master of a fresh set.
      podManagementPolicy: 'OrderedReady',
      revisionHistoryLimit: 5,
      template: redisPodTemplate(
        app,
        cache,
        hash,
        [...discovery, redisSelfAddr(app, set)],
        // A master hands over to a replica before it stops (rollouts, drains).
        'pre-stop.sh',
      ),
    },
  });
  pdb(chart, app, 'cache-pdb', n.cache, selector);
  sentinelSet(
    chart,
    app,
    'cache',
    SENTINEL_COMPONENT,
    set,
    masterNameOf(app),
    sentinelHash,
    cache.tls ? n.cache : undefined,
  );
}

function pdb(
  chart: Chart,
  app: AppModel,
  id: string,
  name: string,
  selector: Record<string, string>,
  component?: string,
) {
  new k8s.KubePodDisruptionBudget(chart, id, {
    metadata: metadataOf(app, 'cache', name, component),
    spec: { maxUnavailable: k8s.IntOrString.fromNumber(1), selector: { matchLabels: selector } },
  });
}
