// The SDK's cache-aside on the cache Redis as rendered: the standalone cache (REDIS_URL)
// and the replicated one behind Sentinel (REDIS_SENTINELS + REDIS_MASTER_NAME), with the
// client built by connect() from the web Deployment's env.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../sdk/src/index.ts';
import type { Scalable } from '../../sdk/src/index.ts';
import {
  Harness,
  PASSWORDS,
  USERS_SECRET,
  client,
  configMapData,
  sleep,
  waitFor,
} from './redis-harness.ts';
import type { Instance } from './redis-harness.ts';
import { startReplicated } from './redis-replicated.ts';
import type { ReplicatedRedis } from './redis-replicated.ts';
import { podEnv, renderApp } from './sdk-harness.ts';

const h = new Harness();
beforeAll(() => h.init());
afterAll(() => h.cleanup());

describe('cache-aside on the standalone cache', () => {
  const { objects } = renderApp({ cache: { memory: '32Mi', defaultTTLSeconds: 120 } });
  let inst: Instance;
  let sdk: Scalable;

  beforeAll(async () => {
    inst = await h.start('cache', 'start-redis.sh', configMapData(objects, 'shop-cache-config'));
    sdk = await connect({
      env: podEnv(objects, {
        secrets: { 'shop-cache-users': USERS_SECRET },
        values: { 'rediss://shop-cache.prod.svc:6379/0': `rediss://127.0.0.1:${inst.port}/0` },
        caFile: h.caFile,
      }),
    });
  });
  afterAll(() => sdk?.close());

  it('100 concurrent misses of one key call the loader once', async () => {
    let calls = 0;
    const loader = async () => {
      calls++;
      await sleep(50);
      return { user: 42, photos: ['a', 'b'] };
    };
    const results = await Promise.all(
      Array.from({ length: 100 }, () => sdk.cache!.getOrSet('timeline:42', loader)),
    );
    expect(calls).toBe(1);
    expect(new Set(results.map((r) => JSON.stringify(r))).size).toBe(1);
    // Later reads are hits: the loader is not called again.
    expect(await sdk.cache!.getOrSet('timeline:42', loader)).toEqual(results[0]);
    expect(calls).toBe(1);
  });

  it("stores with the operator's default TTL, or the caller's, and loads again after expiry", async () => {
    const raw = client(inst.port);
    try {
      await sdk.cache!.getOrSet('default-ttl', async () => 1);
      const pttl = await raw.pttl('default-ttl');
      expect(pttl).toBeGreaterThan(110_000);
      expect(pttl).toBeLessThanOrEqual(120_000);

      let calls = 0;
      const loader = async () => ++calls;
      expect(await sdk.cache!.getOrSet('short', loader, 1)).toBe(1);
      expect(await raw.pttl('short')).toBeLessThanOrEqual(1000);
      expect(await sdk.cache!.getOrSet('short', loader, 1)).toBe(1);
      await waitFor('the key to expire', 5_000, async () => (await raw.exists('short')) === 0);
      expect(await sdk.cache!.getOrSet('short', loader, 1)).toBe(2);
    } finally {
      raw.disconnect();
    }
  });

  it('serves from the loader when the cache is down', async () => {
    const down = await connect({
      env: { REDIS_URL: 'redis://127.0.0.1:1/0', REDIS_PASSWORD: PASSWORDS.app },
      onError: () => undefined,
    });
    try {
      expect(await down.cache!.getOrSet('k', async () => 'from source')).toBe('from source');
    } finally {
      await down.close();
    }
  });
});

describe('cache-aside through Sentinel (cache.replicas: 1)', () => {
  const { objects } = renderApp({ cache: { memory: '32Mi', replicas: 1 } });
  let cache: ReplicatedRedis;
  let sdk: Scalable;

  beforeAll(async () => {
    cache = await startReplicated(h, objects, 'shop-cache', 1);
    const env = podEnv(objects, {
      secrets: { 'shop-cache-users': USERS_SECRET },
      caFile: h.caFile,
    });
    sdk = await connect({
      env: {
        ...env,
        REDIS_SENTINELS: (env['REDIS_SENTINELS'] ?? '')
          .split(',')
          .map((a) => cache.loopback.get(a) ?? a)
          .join(','),
      },
      // Sentinel answers with pod DNS names; map them as a NAT would.
      redis: {
        natMap: Object.fromEntries(
          [...cache.loopback].map(([pod, lo]) => [
            pod,
            { host: '127.0.0.1', port: Number(lo.split(':')[1]) },
          ]),
        ),
      },
      onError: () => undefined,
    });
  });
  afterAll(() => sdk?.close());

  it('finds the master through the Sentinels and keeps working after a failover', async () => {
    expect(sdk.settings.cache?.redis.kind).toBe('sentinel');
    expect(await sdk.cache!.getOrSet('before', async () => 'v1')).toBe('v1');
    const master = client(cache.redis[0]!.port);
    expect(await master.get('before')).toBe('"v1"');
    master.disconnect();

    await h.kill(cache.redis[0]!);
    // Until Sentinel promotes the replica, reads fall through to the loader; after, they cache.
    await waitFor(
      'a write through the promoted replica',
      60_000,
      async () => {
        await sdk.cache!.set('after', 'v2');
        const c = client(cache.redis[1]!.port);
        try {
          return (await c.get('after')) === '"v2"';
        } finally {
          c.disconnect();
        }
      },
      500,
    );
    expect(await sdk.cache!.getOrSet('after', async () => 'loader')).toBe('v2');
  });
});
