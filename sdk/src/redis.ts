// One ioredis client from a RedisTarget: by URL, or through the Sentinels (where the
// operator gives the app's ACL user the same name and password as on the Redis they watch). With TLS the server is
// verified against the CA, by the name connected to: the URL's host, each Sentinel's, and
// the master's as the Sentinels announce it (the operator's certificates carry them all).
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import type { RedisTarget } from './env.ts';
import { liveCa } from './ca-file.ts';

/**
 * node:tls options for a target with TLS, or undefined for plain TCP. The CA is the mounted
 * file's current bundle (ca-file.ts): a CA move reaches new connections without a restart.
 */
export function redisTls(target: RedisTarget): ConnectionOptions | undefined {
  if (!target.tls) return undefined;
  const caFile = target.tls.caFile;
  return { rejectUnauthorized: true, ...(caFile ? { ca: liveCa(caFile) } : {}) };
}

/** SNI and the name checked: the host, unless it is an IP (no SNI then; its IP SAN is checked). */
export const serverName = (url: string): { servername?: string } => {
  const host = new URL(url).hostname;
  return isIP(host) ? {} : { servername: host };
};

export function redisClient(target: RedisTarget, extra: RedisOptions = {}): Redis {
  const password = {
    ...(target.username === undefined ? {} : { username: target.username }),
    ...(target.password === undefined ? {} : { password: target.password }),
  };
  const tls = redisTls(target);
  if (target.kind === 'url') {
    return new Redis(target.url, {
      ...password,
      ...(tls ? { tls: { ...tls, ...serverName(target.url) } } : {}),
      ...extra,
    });
  }
  return new Redis({
    sentinels: target.sentinels.map((s) => ({ host: s.host, port: s.port })),
    name: target.masterName,
    ...password,
    ...(target.username === undefined ? {} : { sentinelUsername: target.username }),
    ...(target.password === undefined ? {} : { sentinelPassword: target.password }),
    ...(tls ? { tls, sentinelTLS: tls, enableTLSForSentinelMode: true } : {}),
    ...extra,
  });
}
