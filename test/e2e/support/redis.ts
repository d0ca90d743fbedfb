// The app's Redis stores as a pod with the web pods' env reaches them (ioredis, TLS verified
// against each tier's CA): the cache through its Sentinels, one Sentinel, the session store.

/**
 * An ES module for nodeScript: `body` runs with cache(), sentinel(i) and sessions() defined
 * (the app has the cache tier: its env names the Sentinels).
 */
export const redisScript = (body: string): string =>
  `import { readFileSync } from 'node:fs';
   import { Redis } from 'ioredis';
   const password = process.env.REDIS_PASSWORD;
   // The app's ACL user (data commands only), on the Sentinels as on Redis.
   const username = process.env.REDIS_USERNAME;
   const sentinels = process.env.REDIS_SENTINELS.split(',').map((s) => { const i = s.lastIndexOf(':'); return { host: s.slice(0, i), port: Number(s.slice(i + 1)) }; });
   // TLS as the web pods' env says: Sentinels and the master verified against the tier's CA.
   const ca = readFileSync(process.env.REDIS_SSLROOTCERT);
   const tls = { tls: { ca }, sentinelTLS: { ca }, enableTLSForSentinelMode: true };
   const cache = () => new Redis({ sentinels, name: process.env.REDIS_MASTER_NAME, username, password, sentinelUsername: username, sentinelPassword: password, ...tls, connectTimeout: 3000, maxRetriesPerRequest: 1, lazyConnect: false });
   const sentinel = (i) => new Redis({ host: sentinels[i].host, port: sentinels[i].port, username, password, tls: { ca }, connectTimeout: 3000 });
   const sessions = () => { const u = new URL(process.env.SESSION_REDIS_URL); return new Redis({ host: u.hostname, port: Number(u.port || 6379), username: process.env.SESSION_REDIS_USERNAME, password: process.env.SESSION_REDIS_PASSWORD, tls: { ca: readFileSync(process.env.SESSION_REDIS_SSLROOTCERT), servername: u.hostname }, connectTimeout: 3000, maxRetriesPerRequest: 1 }); };
   ${body}`;
