import { describe, expect, it } from 'vitest';
import { EnvError, settingsFromEnv } from './env.ts';

describe('settingsFromEnv', () => {
  it('leaves out every tier the env does not describe', () => {
    expect(settingsFromEnv({})).toEqual({});
  });

  it('reads the database, cache, sessions and queue the operator injects, with defaults', () => {
    const s = settingsFromEnv({
      SCALABLE_APP: 'shop',
      DATABASE_SHARD_MAP: '/etc/scalable/shard-map/shard-map.json',
      DATABASE_NAME: 'shop',
      DATABASE_USER: 'shop',
      DATABASE_PASSWORD: 'pw',
      REDIS_SENTINELS: 'a.svc:26379,b.svc:26379',
      REDIS_MASTER_NAME: 'shop-cache',
      REDIS_PASSWORD: 'c',
      CACHE_TTL_SECONDS: '60',
      SESSION_REDIS_URL: 'redis://shop-sessions:6379/0',
      QUEUE_URL: 'redis://shop-queue:6379/0',
      QUEUE_STREAM: 'jobs',
      QUEUE_GROUP: 'workers',
    });
    expect(s.database).toEqual({
      shardMapPath: '/etc/scalable/shard-map/shard-map.json',
      database: 'shop',
      user: 'shop',
      password: 'pw',
      poolMax: 10,
      replicaConnectTimeoutMs: 1000,
    });
    expect(s.cache).toEqual({
      redis: {
        kind: 'sentinel',
        sentinels: [
          { host: 'a.svc', port: 26379 },
          { host: 'b.svc', port: 26379 },
        ],
        masterName: 'shop-cache',
        password: 'c',
      },
      ttlSeconds: 60,
    });
    expect(s.sessions).toEqual({
      redis: { kind: 'url', url: 'redis://shop-sessions:6379/0' },
      ttlSeconds: 86_400,
    });
    expect(s.queue).toMatchObject({ stream: 'jobs', group: 'workers', maxDeliveries: 5 });
    expect(s.queue).not.toHaveProperty('maxLength');
  });

  it('reads the stream retention (QUEUE_MAX_LENGTH) as the default MAXLEN of enqueue', () => {
    const s = settingsFromEnv({ QUEUE_URL: 'redis://shop-queue:6379/0', QUEUE_MAX_LENGTH: '5000' });
    expect(s.queue?.maxLength).toBe(5000);
    expect(() =>
      settingsFromEnv({ QUEUE_URL: 'redis://q:6379/0', QUEUE_MAX_LENGTH: 'lots' }),
    ).toThrow(/QUEUE_MAX_LENGTH must be a positive integer/);
  });

  it('reads the database TLS mode and CA file, and refuses a verifying mode without a CA', () => {
    const db = { DATABASE_SHARD_MAP: '/m', DATABASE_NAME: 'shop', DATABASE_USER: 'shop' };
    expect(settingsFromEnv(db).database).not.toHaveProperty('tls');
    expect(
      settingsFromEnv({
        ...db,
        DATABASE_SSLMODE: 'verify-full',
        DATABASE_SSLROOTCERT: '/etc/scalable/ca/database-ca/ca.crt',
      }).database?.tls,
    ).toEqual({ mode: 'verify-full', caFile: '/etc/scalable/ca/database-ca/ca.crt' });
    expect(settingsFromEnv({ ...db, DATABASE_SSLMODE: 'disable' }).database).not.toHaveProperty(
      'tls',
    );
    expect(() => settingsFromEnv({ ...db, DATABASE_SSLMODE: 'verify-full' })).toThrow(
      /DATABASE_SSLROOTCERT is not set/,
    );
    expect(() => settingsFromEnv({ ...db, DATABASE_SSLMODE: 'prefer' })).toThrow(
      /DATABASE_SSLMODE must be one of/,
    );
  });

  it('reads Redis TLS: rediss:// URLs, or Sentinels with a CA; refuses a CA for a plain URL', () => {
    const s = settingsFromEnv({
      REDIS_SENTINELS: 'a.svc:26379',
      REDIS_MASTER_NAME: 'shop-cache',
      REDIS_SSLROOTCERT: '/etc/scalable/ca/cache-ca/ca.crt',
      SESSION_REDIS_URL: 'rediss://shop-sessions.prod.svc:6379/0',
      SESSION_REDIS_SSLROOTCERT: '/etc/scalable/ca/sessions-ca/ca.crt',
      QUEUE_URL: 'rediss://shop-queue.prod.svc:6379/0',
    });
    expect(s.cache?.redis.tls).toEqual({ caFile: '/etc/scalable/ca/cache-ca/ca.crt' });
    expect(s.sessions?.redis.tls).toEqual({ caFile: '/etc/scalable/ca/sessions-ca/ca.crt' });
    // rediss:// without a CA file: TLS verified against the system's CAs.
    expect(s.queue?.redis.tls).toEqual({});
    expect(settingsFromEnv({ QUEUE_URL: 'redis://q:6379/0' }).queue?.redis).not.toHaveProperty(
      'tls',
    );
    expect(() =>
      settingsFromEnv({ QUEUE_URL: 'redis://q:6379/0', QUEUE_SSLROOTCERT: '/ca.crt' }),
    ).toThrow(/QUEUE_SSLROOTCERT is set but QUEUE_URL is not a rediss:\/\/ URL/);
  });

  it('names the variable when a value is wrong or missing', () => {
    expect(() => settingsFromEnv({ DATABASE_SHARD_MAP: '/m' })).toThrow(/DATABASE_NAME is not set/);
    expect(() => settingsFromEnv({ REDIS_URL: 'redis://x', CACHE_TTL_SECONDS: '-1' })).toThrow(
      EnvError,
    );
    expect(() => settingsFromEnv({ REDIS_SENTINELS: 'nohost' })).toThrow(/REDIS_SENTINELS/);
  });
});
