// The session store: a Redis of its own (never the cache: cache data is evictable, sessions
// are not) with an append-only file on a PVC and maxmemory-policy noeviction, so the web
// tier stays stateless and a restart loses no session.
import type { AppModel } from '../../api/model.ts';
import type { AppWiring, EnvVar } from '../tier.ts';
import type { K8sObject } from '../shared/chart.ts';
import {
  REDIS_PORT,
  START_REDIS_SH,
  memoryLimitOf,
  sessionsRedisConf,
} from '../../engines/redis/config.ts';
import { redisNetworkPolicy } from '../../engines/redis/pod.ts';
import { redisObjects, redisSet } from '../../engines/redis/store.ts';
import { clientEnv, clientWiring } from '../../engines/redis/client.ts';
import type { RedisClient } from '../../engines/redis/client.ts';
import { redisNames } from '../../engines/redis/names.ts';

type SessionsSpec = NonNullable<AppModel['sessions']>;

export function sessionsNames(app: AppModel) {
  const n = redisNames(app, 'sessions');
  return { ...n, sessions: n.redis };
}

const client = (app: AppModel, sessions: SessionsSpec): RedisClient => ({
  prefix: 'SESSION_REDIS',
  names: sessionsNames(app),
  tls: sessions.tls,
  caVolume: 'sessions-ca',
  env: [{ name: 'SESSION_TTL_SECONDS', value: String(sessions.ttlSeconds) }],
});

/** With TLS a rediss:// URL by the name the certificate carries, and the CA file. */
export const sessionsEnv = (app: AppModel): EnvVar[] =>
  app.sessions ? clientEnv(app, client(app, app.sessions)) : [];

/** The env above and, with TLS, the CA mounted from the store's certificate Secret. */
export const sessionsWiring = (app: AppModel): Partial<AppWiring> =>
  clientWiring(app, app.sessions && client(app, app.sessions));

export const sessionsConfigData = (sessions: SessionsSpec): Record<string, string> => ({
  'redis.conf': sessionsRedisConf(sessions.memory, sessions.tls),
  'start-redis.sh': START_REDIS_SH,
});

export function buildSessions(app: AppModel): K8sObject[] {
  const sessions = app.sessions;
  if (!sessions) return [];
  const n = sessionsNames(app);
  const t = {
    app,
    tier: 'sessions',
    names: n,
    data: sessionsConfigData(sessions),
    tls: sessions.tls,
  } as const;
  return redisObjects(t, (chart) => {
    redisSet(chart, t, {
      replicas: 1,
      service: true,
      // Sessions outlive the StatefulSet.
      storage: sessions.storage,
      pod: { memoryLimit: memoryLimitOf(sessions.memory) },
    });
    redisNetworkPolicy(chart, app, 'sessions', n.sessions, [REDIS_PORT]);
  });
}
