// The cache Redis as rendered (replicas: 0): eviction order under allkeys-lru and
// allkeys-lfu, TTL expiry with the app's CACHE_TTL_SECONDS, and password enforcement.
import { readFile } from 'node:fs/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toModel } from '../../operator/api/model.ts';
import { validateApp } from '../../operator/api/validate.ts';
import type { K8sObject } from '../../operator/tiers/shared/chart.ts';
import { buildAll } from '../../operator/tiers/index.ts';
import { parseQuantity } from '../../operator/tiers/shared/quantity.ts';
import {
  Harness,
  PASSWORD,
  PASSWORDS,
  client,
  configMapData,
  envOf,
  info,
  sleep,
  tlsOptions,
  waitFor,
} from './redis-harness.ts';

function render(cache: Record<string, unknown>) {
  const r = validateApp({
    apiVersion: 'scalable.dev/v1alpha1',
    kind: 'ScalableApp',
    metadata: { name: 'shop', namespace: 'prod' },
    spec: { web: { image: 'shop:1' }, cache },
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  const objects = buildAll(toModel(r.app));
  return { objects, data: configMapData(objects, 'shop-cache-config') };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const redisContainer = (objects: readonly K8sObject[]): any =>
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  (objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'shop-cache') as any).spec
    .template.spec.containers[0];

const h = new Harness();
const clients: Redis[] = [];
const track = (c: Redis) => (clients.push(c), c);

beforeAll(() => h.init());
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await h.cleanup();
});

const VALUE = 'x'.repeat(10_000);
const keys = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}:${i}`);

/**
 * 150 "hot" keys read 100 times each, then left alone for 2 s (LRU's clock ticks once a
 * second); then 150 "cold" keys written once; then new keys until Redis has evicted 100.
 * LRU must evict the old hot keys first, LFU must keep every hot key.
 */
async function evictionRun(c: Redis) {
  const hot = keys('hot', 150);
  const cold = keys('cold', 150);
  await hot.reduce((p, k) => p.set(k, VALUE), c.pipeline()).exec();
  // LFU's counter grows logarithmically and at random (lfu-log-factor 10): 100 reads lift
  // it well clear of a new key's 5, where 30 left some hot keys one step above it.
  for (let round = 0; round < 100; round++)
    await hot.reduce((p, k) => p.get(k), c.pipeline()).exec();
  await sleep(2100);
  await cold.reduce((p, k) => p.set(k, VALUE), c.pipeline()).exec();
  let written = 0;
  while (Number((await info(c, 'stats'))['evicted_keys']) < 100) {
    await keys(`fill:${written}`, 10)
      .reduce((p, k) => p.set(k, VALUE), c.pipeline())
      .exec();
    written += 10;
    if (written > 5000) throw new Error('Redis never evicted: maxmemory not applied?');
  }
  const left = async (ks: string[]) =>
    ((await ks.reduce((p, k) => p.exists(k), c.pipeline()).exec()) ?? []).filter(([, v]) => v === 1)
      .length;
  return {
    evicted: Number((await info(c, 'stats'))['evicted_keys']),
    missing: 300 + written - (await c.dbsize()),
    hotLeft: await left(hot),
    coldLeft: await left(cold),
    written,
  };
}

describe('cache Redis from the rendered ConfigMap', () => {
  it('applies maxmemory = spec.cache.memory and evicts least recently used keys first (allkeys-lru)', async () => {
    const { data } = render({ memory: '8Mi', evictionPolicy: 'allkeys-lru' });
    const inst = await h.start('lru', 'start-redis.sh', data);
    const c = track(client(inst.port));
    expect(await c.config('GET', 'maxmemory')).toEqual(['maxmemory', String(parseQuantity('8Mi'))]);
    expect(await c.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'allkeys-lru']);
    const r = await evictionRun(c);
    console.log('allkeys-lru', r);
    // The 100+ evicted keys are (nearly) all from the 150 least recently used ("hot") keys.
    expect(r.coldLeft).toBeGreaterThanOrEqual(145);
    expect(r.hotLeft).toBeLessThanOrEqual(150 - 90);
    await h.kill(inst);
  });

  it('evicts least frequently used keys first with allkeys-lfu', async () => {
    const { data } = render({ memory: '8Mi', evictionPolicy: 'allkeys-lfu' });
    const inst = await h.start('lfu', 'start-redis.sh', data);
    const c = track(client(inst.port));
    expect(await c.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'allkeys-lfu']);
    const r = await evictionRun(c);
    console.log('allkeys-lfu', r);
    // Same workload, opposite outcome: the frequently read keys survive although older
    // (eviction samples 5 keys at random: a hot key may still lose now and then).
    expect(r.hotLeft).toBeGreaterThanOrEqual(145);
    expect(r.evicted).toBeGreaterThanOrEqual(100);
    await h.kill(inst);
  });

  it('expires keys set with the TTL the app gets (CACHE_TTL_SECONDS)', async () => {
    const { objects, data } = render({ defaultTTLSeconds: 1 });
    const ttl = Number(
      envOf(objects, 'Deployment', 'shop-web').find((e) => e.name === 'CACHE_TTL_SECONDS')?.value,
    );
    expect(ttl).toBe(1);
    const inst = await h.start('ttl', 'start-redis.sh', data);
    const c = track(client(inst.port));
    await c.set('page:/home', '<html/>', 'EX', ttl);
    const pttl = await c.pttl('page:/home');
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(1000);
    const t0 = Date.now();
    // Active expiry removes it without anyone reading it: DBSIZE drops to 0.
    await waitFor('the key to expire', 5000, async () => (await c.dbsize()) === 0);
    console.log(`expired after ${Date.now() - t0} ms (TTL ${ttl} s)`);
    expect(await c.get('page:/home')).toBeNull();
    expect(Number((await info(c, 'stats'))['expired_keys'])).toBe(1);
    await h.kill(inst);
  });

  it('refuses clients without the password; the web env carries no password, only a secretKeyRef', async () => {
    const { objects, data } = render({});
    const env = envOf(objects, 'Deployment', 'shop-web');
    const url = env.find((e) => e.name === 'REDIS_URL')?.value ?? '';
    expect(url).toBe('rediss://shop-cache.prod.svc:6379/0');
    // The app's own ACL user (data commands only, redis-acl.test.ts), not the admin's.
    expect(env.find((e) => e.name === 'REDIS_USERNAME')?.value).toBe('app');
    expect(env.find((e) => e.name === 'REDIS_PASSWORD')?.valueFrom?.secretKeyRef).toEqual({
      name: 'shop-cache-users',
      key: 'app-password',
    });
    const inst = await h.start('auth', 'start-redis.sh', data);

    // The app's URL, pointed at loopback; no password: refused.
    const loopbackUrl = url.replace('shop-cache.prod.svc:6379', `127.0.0.1:${inst.port}`);
    const tls = tlsOptions();
    const anonymous = track(
      new Redis(loopbackUrl, { tls, maxRetriesPerRequest: 0, retryStrategy: () => null }),
    );
    anonymous.on('error', () => undefined);
    await expect(anonymous.set('k', 'v')).rejects.toThrow(/NOAUTH/);
    const wrong = track(
      new Redis(loopbackUrl, { tls, password: 'guess', retryStrategy: () => null }),
    );
    wrong.on('error', () => undefined);
    await expect(wrong.ping()).rejects.toThrow(/WRONGPASS|invalid password/);
    // The default user is off: the admin's password without a user name is refused too.
    const noUser = track(
      new Redis(loopbackUrl, { tls, password: PASSWORD, retryStrategy: () => null }),
    );
    noUser.on('error', () => undefined);
    await expect(noUser.ping()).rejects.toThrow(/WRONGPASS|invalid password/);
    // The same URL as the app user with the Secret's password (what the app does): accepted.
    const app = track(new Redis(loopbackUrl, { tls, username: 'app', password: PASSWORDS.app }));
    expect(await app.set('k', 'v')).toBe('OK');

    // The pod's probe command (port adapted to loopback), run in the container as the
    // kubelet runs an exec probe, passes with the Secret's password in the environment and
    // fails with a wrong one.
    const probe = (password: string) =>
      inst.container.exec(
        [
          probeCmd[0] ?? 'sh',
          probeCmd[1] ?? '-c',
          (probeCmd[2] ?? '').replace('-p 6379', `-p ${inst.port}`),
        ],
        { ADMIN_PASSWORD: password, TLS_CA_FILE: h.caFile },
      ).status;
    const probeCmd: string[] = redisContainer(objects).readinessProbe.exec.command;
    expect(probe(PASSWORD)).toBe(0);
    expect(probe('guess')).not.toBe(0);

    // The password reached redis-server on stdin: it is not in its command line.
    const cmdline = await readFile(`/proc/${await inst.container.started()}/cmdline`, 'utf8');
    expect(cmdline).toContain('redis-server');
    for (const pw of Object.values(PASSWORDS)) expect(cmdline).not.toContain(pw);
    await h.kill(inst);
  });
});
