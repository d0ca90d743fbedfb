// The cache tier: a Redis with maxmemory and an eviction policy, no persistence, a generated
// password, a redis_exporter sidecar and a NetworkPolicy. replicas: 0 is one Redis
// (Deployment + Service); replicas > 0 is a StatefulSet of replicas + 1 Redis pods and a
// 3-member Sentinel StatefulSet that promotes a replica when the master fails.
import { k8s } from '../shared/k8s.ts';
import type { AppModel } from '../../api/model.ts';
import type { AppWiring, EnvVar } from '../tier.ts';
import type { K8sObject } from '../shared/chart.ts';
import { metadataOf, selectorOf } from '../shared/meta.ts';
import { memberSpreadOf, topologySpreadOf } from '../shared/pod-security.ts';
import {
  PRE_STOP_REDIS_SH,
  REDIS_PORT,
  SENTINEL_PORT,
  START_REDIS_SH,
  START_SENTINEL_SH,
  cacheRedisConf,
  memoryLimitOf,
  sentinelConf,
} from '../../engines/redis/config.ts';
import { redisNetworkPolicy } from '../../engines/redis/pod.ts';
import { redisObjects, redisService, redisSet, redisTemplate } from '../../engines/redis/store.ts';
import type { RedisPodProps } from '../../engines/redis/store.ts';
import { clientEnv, clientWiring } from '../../engines/redis/client.ts';
import type { RedisClient } from '../../engines/redis/client.ts';
import { replicatedRedisNames } from '../../engines/redis/names.ts';
import {
  redisDiscoveryEnv,
  sentinelAddresses as sharedSentinelAddresses,
  sentinelReplication,
} from '../../engines/redis/sentinel.ts';

type CacheSpec = NonNullable<AppModel['cache']>;

export const SENTINEL_COMPONENT = 'cache-sentinel';

export function cacheNames(app: AppModel) {
  const n = replicatedRedisNames(app, 'cache');
  return { ...n, cache: n.redis };
}

/** Name Sentinel knows the cache master by, handed to the app as REDIS_MASTER_NAME. */
export const masterNameOf = (app: AppModel): string => `${app.name}-cache`;

/** host:port of each Sentinel: stable StatefulSet pod names behind a headless Service. */
export const sentinelAddresses = (app: AppModel): string[] =>
  sharedSentinelAddresses(app, cacheNames(app));

function client(app: AppModel, cache: CacheSpec): RedisClient {
  const common = {
    prefix: 'REDIS',
    tls: cache.tls,
    caVolume: 'cache-ca',
    env: [{ name: 'CACHE_TTL_SECONDS', value: String(cache.defaultTTLSeconds) }],
  };
  return cache.replicas > 0
    ? { ...common, names: cacheNames(app), master: masterNameOf(app) }
    : { ...common, names: cacheNames(app) };
}

/**
 * What the app pods get: REDIS_URL, or the Sentinels and master name; the TTL. With TLS a
 * rediss:// URL by the name the certificate carries, and REDIS_SSLROOTCERT (the CA file).
 */
export const cacheEnv = (app: AppModel): EnvVar[] =>
  app.cache ? clientEnv(app, client(app, app.cache)) : [];

/** The env above and, with TLS, the CA mounted from the cache's certificate Secret. */
export const cacheWiring = (app: AppModel): Partial<AppWiring> =>
  clientWiring(app, app.cache && client(app, app.cache));

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
  const t = {
    app,
    tier: 'cache',
    names: cacheNames(app),
    data: cacheConfigData(app, cache),
    tls: cache.tls,
  } as const;
  const memoryLimit = memoryLimitOf(cache.memory);
  const pod: RedisPodProps = {
    memoryLimit,
    // Nothing persists; a replica may fall back to a disk-based full sync: room for one copy.
    dataEmptyDir: memoryLimit,
    spread: topologySpreadOf(app, selectorOf(app, 'cache')),
  };
  return redisObjects(t, (chart) => {
    if (cache.replicas === 0) {
      // One Redis. Recreate, not a rolling update: two caches behind one Service would
      // serve stale keys.
      new k8s.KubeDeployment(chart, 'cache-deploy', {
        metadata: metadataOf(app, 'cache', t.names.cache),
        spec: {
          replicas: 1,
          selector: { matchLabels: selectorOf(app, 'cache') },
          revisionHistoryLimit: 5,
          strategy: { type: 'Recreate' },
          template: redisTemplate(t, pod),
        },
      });
      redisService(chart, t);
    } else {
      // Redis master + replicas and 3 Sentinels; the app finds the master through Sentinel.
      redisSet(chart, t, {
        replicas: cache.replicas + 1,
        service: false,
        // Pod 0 first: it is the master of a fresh set.
        orderedReady: true,
        pod: {
          ...pod,
          // A master and its replicas: copies of one dataset, one per node (memberSpreadOf).
          spread: memberSpreadOf(app, selectorOf(app, 'cache'), cache.replicas + 1),
          env: redisDiscoveryEnv(app, t.names, masterNameOf(app)),
          // A master hands over to a replica before it stops (rollouts, drains).
          preStop: 'pre-stop.sh',
        },
      });
      sentinelReplication(chart, t, SENTINEL_COMPONENT, masterNameOf(app));
    }
    redisNetworkPolicy(
      chart,
      app,
      'cache',
      t.names.cache,
      cache.replicas === 0 ? [REDIS_PORT] : [REDIS_PORT, SENTINEL_PORT],
    );
  });
}
