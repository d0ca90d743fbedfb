// One ioredis client from a RedisTarget: by URL, or through the Sentinels (which the
// operator protects with the same password as the Redis they watch).
import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import type { RedisTarget } from './env.ts';

export function redisClient(target: RedisTarget, extra: RedisOptions = {}): Redis {
  const password = target.password === undefined ? {} : { password: target.password };
  if (target.kind === 'url') return new Redis(target.url, { ...password, ...extra });
  return new Redis({
    sentinels: target.sentinels.map((s) => ({ host: s.host, port: s.port })),
    name: target.masterName,
    ...password,
    ...(target.password === undefined ? {} : { sentinelPassword: target.password }),
    ...extra,
  });
}
