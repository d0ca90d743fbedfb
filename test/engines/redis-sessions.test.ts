// The session Redis as rendered: sessions survive a graceful restart and a crash (append-only
// file, fsync every second), and a full store refuses writes instead of evicting sessions.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toModel } from '../../operator/api/model.ts';
import { validateApp } from '../../operator/api/validate.ts';
import { buildAll } from '../../operator/tiers/index.ts';
import { Harness, client, configMapData, envOf, info, sleep } from './redis-harness.ts';
import type { Instance } from './redis-harness.ts';

const r = validateApp({
  apiVersion: 'scalable.dev/v1alpha1',
  kind: 'ScalableApp',
  metadata: { name: 'shop', namespace: 'prod' },
  spec: { web: { image: 'shop:1' }, sessions: { ttlSeconds: 3600 } },
});
if (!r.ok) throw new Error(JSON.stringify(r.errors));
const objects = buildAll(toModel(r.app));
const data = configMapData(objects, 'shop-sessions-config');
const webEnv = envOf(objects, 'Deployment', 'shop-web');
const ttl = Number(webEnv.find((e) => e.name === 'SESSION_TTL_SECONDS')?.value);

const h = new Harness();
beforeAll(() => h.init());
afterAll(() => h.cleanup());

const sessionKeys = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => `session:${from + i}`);

async function writeSessions(inst: Instance, ks: string[]) {
  const c = client(inst.port);
  await ks
    .reduce((p, k) => p.set(k, JSON.stringify({ user: k, cart: [1, 2] }), 'EX', ttl), c.pipeline())
    .exec();
  c.disconnect();
}

async function countSessions(inst: Instance, ks: string[]) {
  const c = client(inst.port);
  const res = (await ks.reduce((p, k) => p.pttl(k), c.pipeline()).exec()) ?? [];
  c.disconnect();
  const ttls = res.map(([, v]) => Number(v));
  return { present: ttls.filter((t) => t > 0).length, maxTtl: Math.max(...ttls) };
}

describe('session Redis from the rendered ConfigMap', () => {
  it('hands the app the URL, the password by secretKeyRef and the TTL', () => {
    expect(webEnv.find((e) => e.name === 'SESSION_REDIS_URL')?.value).toBe(
      'rediss://shop-sessions.prod.svc:6379/0',
    );
    expect(
      webEnv.find((e) => e.name === 'SESSION_REDIS_PASSWORD')?.valueFrom?.secretKeyRef,
    ).toEqual({
      name: 'shop-sessions-users',
      key: 'app-password',
    });
    expect(webEnv.find((e) => e.name === 'SESSION_REDIS_USERNAME')?.value).toBe('app');
    expect(ttl).toBe(3600);
  });

  it('keeps session keys across a graceful restart and a crash (appendonly)', async () => {
    let inst = await h.start('sessions', 'start-redis.sh', data);
    const c = client(inst.port);
    expect(await c.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    expect(await c.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
    c.disconnect();

    const first = sessionKeys(0, 200);
    await writeSessions(inst, first);
    await h.kill(inst, 'SIGTERM');
    inst = await h.start(
      'sessions',
      'start-redis.sh',
      data,
      {},
      { port: inst.port, dataDir: inst.dataDir },
    );
    const afterRestart = await countSessions(inst, first);
    console.log('after graceful restart', afterRestart);
    expect(afterRestart.present).toBe(200);
    expect(afterRestart.maxTtl).toBeLessThanOrEqual(ttl * 1000);
    expect(afterRestart.maxTtl).toBeGreaterThan((ttl - 60) * 1000);

    // A crash (SIGKILL, no shutdown save): writes older than the 1 s fsync window survive.
    const second = sessionKeys(200, 100);
    await writeSessions(inst, second);
    await sleep(1500);
    await h.kill(inst, 'SIGKILL');
    inst = await h.start(
      'sessions',
      'start-redis.sh',
      data,
      {},
      { port: inst.port, dataDir: inst.dataDir },
    );
    const afterCrash = await countSessions(inst, [...first, ...second]);
    console.log('after crash', afterCrash);
    expect(afterCrash.present).toBe(300);
    await h.kill(inst, 'SIGTERM');
  });

  it('refuses writes when full instead of evicting sessions (noeviction)', async () => {
    const inst = await h.start('full', 'start-redis.sh', data);
    const c = client(inst.port);
    const ks = sessionKeys(0, 100);
    await writeSessions(inst, ks);
    const blob = 'b'.repeat(4 * 2 ** 20);
    let refused: unknown;
    for (let i = 0; i < 200 && !refused; i++) {
      try {
        await c.set(`blob:${i}`, blob);
      } catch (e) {
        refused = e;
      }
    }
    expect(String(refused)).toMatch(/OOM command not allowed/);
    expect((await countSessions(inst, ks)).present).toBe(100);
    expect(Number((await info(c, 'stats'))['evicted_keys'])).toBe(0);
    c.disconnect();
    await h.kill(inst);
  });
});
