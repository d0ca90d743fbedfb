// The queue store as rendered (its ConfigMap: AOF everysec, noeviction) on a real
// redis-server, and workers on the env the worker Deployment renders: the numbers KEDA scales
// on, a consumer that dies mid-message, dead-lettering, and a kill -9 of Redis itself.
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../sdk/src/index.ts';
import { fieldsOf } from '../../sdk/src/queue/producer.ts';
import { Harness, USERS_SECRET, client, configMapData, waitFor } from './redis-harness.ts';
import type { Instance } from './redis-harness.ts';
import { podEnv, renderApp, runNode } from './sdk-harness.ts';
import type { Child } from './sdk-harness.ts';

const WORKER = fileURLToPath(new URL('./sdk-fixtures/worker.ts', import.meta.url));
const { objects } = renderApp({
  queue: { consumers: [{ name: 'thumbs', image: 'w:1', maxDeliveries: 3 }] },
});
const data = configMapData(objects, 'shop-queue-config');
const h = new Harness();
let store: Instance;
let redis: Redis;
const children: Child[] = [];

/** The worker pod's env as rendered, on loopback; QUEUE_CONSUMER is the pod name there. */
function workerEnv(pod: string, extra: Record<string, string> = {}): Record<string, string> {
  const env = podEnv(
    objects,
    {
      secrets: { 'shop-queue-users': USERS_SECRET },
      values: { 'rediss://shop-queue.prod.svc:6379/0': `rediss://127.0.0.1:${store.port}/0` },
      caFile: h.caFile,
    },
    'Deployment',
    'shop-worker-thumbs',
  );
  return { ...env, QUEUE_CONSUMER: pod, QUEUE_CLAIM_IDLE_MS: '1000', ...extra };
}

type Group = { name: string; lag: number | null; pending: number };
async function group(stream: string, name: string): Promise<Group | undefined> {
  const groups = (await redis.xinfo('GROUPS', stream)) as unknown[][];
  return groups
    .map((g) => {
      const f: Record<string, unknown> = {};
      for (let i = 0; i + 1 < g.length; i += 2) f[String(g[i])] = g[i + 1];
      return {
        name: String(f['name']),
        lag: f['lag'] as number | null,
        pending: Number(f['pending']),
      };
    })
    .find((g) => g.name === name);
}

beforeAll(async () => {
  await h.init();
  store = await h.start('queue', 'start-redis.sh', data);
  redis = client(store.port);
});

afterAll(async () => {
  for (const c of children) c.proc.kill('SIGKILL');
  redis?.disconnect();
  await h.cleanup();
});

describe('queue store from the rendered ConfigMap', () => {
  it('runs with the AOF, everysec and noeviction it was rendered with', async () => {
    expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    expect(await redis.config('GET', 'appendfsync')).toEqual(['appendfsync', 'everysec']);
    expect(await redis.config('GET', 'maxmemory-policy')).toEqual([
      'maxmemory-policy',
      'noeviction',
    ]);
  });

  it("the group's lag (what KEDA scales on) grows with XADD, moves to pending on delivery and goes with XACK", async () => {
    const env = workerEnv('w');
    const [stream, g] = [env['QUEUE_STREAM']!, env['QUEUE_GROUP']!];
    expect([stream, g]).toEqual(['thumbs', 'thumbs']);
    // No group yet (no worker ever ran): KEDA falls back to XLEN, so the first message counts.
    for (let i = 0; i < 5; i++) await redis.xadd(stream, '*', 'payload', JSON.stringify({ i }));
    expect(await redis.xlen(stream)).toBe(5);
    await redis.xgroup('CREATE', stream, g, '0');
    expect(await group(stream, g)).toEqual({ name: g, lag: 5, pending: 0 });
    await redis.xadd(stream, '*', 'payload', '{}');
    expect((await group(stream, g))?.lag).toBe(6);
    const read = (await redis.xreadgroup('GROUP', g, 'w', 'COUNT', 4, 'STREAMS', stream, '>')) as [
      string,
      [string, string[]][],
    ][];
    const ids = read[0]![1].map(([id]) => id);
    expect(await group(stream, g)).toEqual({ name: g, lag: 2, pending: 4 });
    await redis.xack(stream, g, ...ids);
    expect(await group(stream, g)).toEqual({ name: g, lag: 2, pending: 0 });
    const rest = (await redis.xreadgroup('GROUP', g, 'w', 'STREAMS', stream, '>')) as [
      string,
      [string, string[]][],
    ][];
    await redis.xack(stream, g, ...rest[0]![1].map(([id]) => id));
    expect(await group(stream, g)).toEqual({ name: g, lag: 0, pending: 0 });
    await redis.del(stream);
  });

  it('a consumer killed mid-message leaves it pending; another claims it (XAUTOCLAIM): nothing lost', async () => {
    const stream = 'claims';
    await redis.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM');
    await redis.xadd(stream, '*', 'payload', JSON.stringify({ photo: 42 }));
    // Consumer a reads the message and dies before XACK (its connection simply goes away).
    const a = client(store.port);
    await a.xreadgroup('GROUP', 'g', 'a', 'COUNT', 1, 'STREAMS', stream, '>');
    a.disconnect();
    expect((await group(stream, 'g'))?.pending).toBe(1);
    await new Promise((r) => setTimeout(r, 150));
    const [, claimed] = (await redis.xautoclaim(stream, 'g', 'b', 100, '0', 'COUNT', 10)) as [
      string,
      [string, string[]][],
    ];
    expect(claimed).toHaveLength(1);
    expect(JSON.parse(fieldsOf(claimed[0]![1])['payload']!)).toEqual({ photo: 42 });
    await redis.xack(stream, 'g', claimed[0]![0]);
    expect(await group(stream, 'g')).toMatchObject({ lag: 0, pending: 0 });
  });

  it('SDK workers on the rendered worker env: one killed -9 mid-message, the other handles it', async () => {
    await redis.del('handled', 'started');
    const producer = await connect({ env: workerEnv('producer') });
    for (let n = 0; n < 10; n++)
      await producer.queue!.enqueue('thumbs', n === 3 ? { n, hangOn: 'worker-a' } : { n });
    await producer.close();
    const a = runNode(WORKER, workerEnv('worker-a'));
    children.push(a);
    await waitFor(
      'worker-a to hang on its message',
      30_000,
      async () => (await redis.llen('started')) === 1,
    );
    a.proc.kill('SIGKILL');
    await a.exited;
    const b = runNode(WORKER, workerEnv('worker-b'));
    children.push(b);
    await waitFor('all 10 handled', 60_000, async () => (await redis.llen('handled')) === 10);
    const handled = (await redis.lrange('handled', 0, -1)).map(
      (s) => JSON.parse(s) as { n: number; by: string; deliveries: number },
    );
    expect(handled.map((x) => x.n).sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(handled.find((x) => x.n === 3)).toMatchObject({ by: 'worker-b', deliveries: 2 });
    b.proc.kill('SIGTERM');
    expect(await b.exited).toBe(0);
    expect(await group('thumbs', 'thumbs')).toMatchObject({ lag: 0, pending: 0 });
  });

  it('a message that fails maxDeliveries (rendered: 3) times lands in the dead-letter stream with its payload', async () => {
    const env = workerEnv('inproc', { QUEUE_CLAIM_IDLE_MS: '200' });
    expect(env['QUEUE_MAX_DELIVERIES']).toBe('3');
    expect(env['QUEUE_DEAD_LETTER_STREAM']).toBe('thumbs:dead');
    const sdk = await connect({ env, onError: () => undefined });
    const deliveries: number[] = [];
    try {
      await sdk.queue!.enqueue('thumbs', { photo: 'broken.png' });
      const consumer = sdk.queue!.consume<{ photo: string }>(async (m) => {
        deliveries.push(m.deliveries);
        throw new Error('cannot decode');
      });
      await waitFor('a dead letter', 30_000, async () => (await redis.xlen('thumbs:dead')) === 1);
      await consumer.stop();
    } finally {
      await sdk.close();
    }
    expect(deliveries).toEqual([1, 2, 3]);
    const dead = (await redis.xrange('thumbs:dead', '-', '+')) as [string, string[]][];
    const fields = fieldsOf(dead[0]![1]);
    expect(JSON.parse(fields['payload']!)).toEqual({ photo: 'broken.png' });
    expect(fields).toMatchObject({
      'original-stream': 'thumbs',
      deliveries: '3',
      'last-error': 'cannot decode',
    });
    expect(await group('thumbs', 'thumbs')).toMatchObject({ pending: 0 });
  });

  it('keeps every XADD acknowledged 2 s before a kill -9 of redis-server, with no holes', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 2000; i++)
      ids.push((await redis.xadd('durable', '*', 'payload', JSON.stringify({ i })))!);
    await redis.xgroup('CREATE', 'durable', 'g', '0');
    // everysec holds an AOF write back for up to 2 s while a slow fsync runs (and still
    // answers), so only what was acknowledged that long ago is sure to be in the page cache.
    await new Promise((r) => setTimeout(r, 2_500));
    const late: string[] = [];
    for (let i = 2000; i < 2100; i++)
      late.push((await redis.xadd('durable', '*', 'payload', JSON.stringify({ i })))!);
    await h.kill(store);
    redis.disconnect();
    store = await h.start(
      'queue',
      'start-redis.sh',
      data,
      {},
      {
        port: store.port,
        dataDir: store.dataDir,
      },
    );
    redis = client(store.port);
    const after = ((await redis.xrange('durable', '-', '+')) as [string, string[]][]).map(
      ([id]) => id,
    );
    // Everything from 2 s before, then a prefix of the last burst: no holes.
    expect(after.slice(0, ids.length)).toEqual(ids);
    expect(after.slice(ids.length)).toEqual(late.slice(0, after.length - ids.length));
    const g = await group('durable', 'g');
    expect(g?.pending).toBe(0);
    expect(g?.lag).toBe(after.length);
  });

  it('refuses new messages when full instead of evicting queued ones (noeviction)', async () => {
    const before = await redis.xlen('durable');
    await redis.config('SET', 'maxmemory', String(1024 * 1024));
    try {
      await expect(
        (async () => {
          for (let i = 0; i < 10_000; i++)
            await redis.xadd('durable', '*', 'payload', 'x'.repeat(1000));
        })(),
      ).rejects.toThrow(/OOM/);
      expect(await redis.xlen('durable')).toBeGreaterThanOrEqual(before);
    } finally {
      await redis.config('SET', 'maxmemory', data['redis.conf']!.match(/^maxmemory (\d+)$/m)![1]!);
    }
  });
});
