// The SDK's queue on a real redis-server. The queue tier (issue 12) is not rendered yet, so
// the store is started from the rendered session Redis config (AOF, noeviction: what the
// queue store is specified to be) and the worker env is written with the contract's names.
// Workers are real child processes: one is killed with SIGKILL mid-message, one gets
// SIGTERM in the middle of a burst, and the store shows that nothing was lost.
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../sdk/src/index.ts';
import type { Scalable } from '../../sdk/src/index.ts';
import type { OperatorEnvName } from '../../sdk/src/contract/index.ts';
import { fieldsOf } from '../../sdk/src/queue/producer.ts';
import { Harness, PASSWORDS, client, configMapData, waitFor } from './redis-harness.ts';
import type { Instance } from './redis-harness.ts';
import { renderApp, runNode } from './sdk-harness.ts';
import type { Child } from './sdk-harness.ts';

const WORKER = fileURLToPath(new URL('./sdk-fixtures/worker.ts', import.meta.url));
const { objects } = renderApp({ sessions: {} });
const h = new Harness();
let store: Instance;
let redis: Redis;
const children: Child[] = [];

function workerEnv(consumer: string, stream: string, extra: Record<string, string> = {}) {
  const env: Partial<Record<OperatorEnvName, string>> = {
    SCALABLE_APP: 'shop',
    QUEUE_URL: `rediss://127.0.0.1:${store.port}/0`,
    QUEUE_SSLROOTCERT: h.caFile,
    QUEUE_USERNAME: 'app',
    QUEUE_PASSWORD: PASSWORDS.app,
    QUEUE_STREAM: stream,
    QUEUE_GROUP: 'thumbnails',
    QUEUE_CONSUMER: consumer,
    QUEUE_DEAD_LETTER_STREAM: `${stream}:dead`,
    QUEUE_MAX_DELIVERIES: '5',
  };
  return { ...env, QUEUE_CONCURRENCY: '4', QUEUE_CLAIM_IDLE_MS: '1000', ...extra } as Record<
    string,
    string
  >;
}

function startWorker(consumer: string, stream: string): Child {
  const c = runNode(WORKER, workerEnv(consumer, stream));
  children.push(c);
  return c;
}

async function handled(): Promise<{ n: number; id: string; by: string; deliveries: number }[]> {
  return (await redis.lrange('handled', 0, -1)).map((s) => JSON.parse(s));
}

beforeAll(async () => {
  await h.init();
  store = await h.start('queue', 'start-redis.sh', configMapData(objects, 'shop-sessions-config'));
  redis = client(store.port);
});

afterAll(async () => {
  for (const c of children) c.proc.kill('SIGKILL');
  redis?.disconnect();
  await h.cleanup();
});

describe('SDK queue on a real Redis', () => {
  it('a worker killed mid-message loses nothing: another claims it and handles it once more', async () => {
    await redis.del('handled', 'started');
    const sdk = await connect({ env: workerEnv('producer', 'jobs-kill') });
    try {
      for (let n = 0; n < 20; n++)
        await sdk.queue!.enqueue('jobs-kill', n === 7 ? { n, hangOn: 'worker-a' } : { n });
    } finally {
      await sdk.close();
    }
    const a = startWorker('worker-a', 'jobs-kill');
    await waitFor('worker-a to start the message it hangs on', 30_000, async () => {
      return (await redis.llen('started')) === 1;
    });
    const hungId = (await redis.lindex('started', 0))!;
    a.proc.kill('SIGKILL');
    await a.exited;
    // The message is pending, owned by the dead consumer.
    const pending = (await redis.xpending('jobs-kill', 'thumbnails', '-', '+', 100)) as [
      string,
      string,
    ][];
    expect(pending.map(([id, owner]) => [id, owner])).toContainEqual([hungId, 'worker-a']);

    startWorker('worker-b', 'jobs-kill');
    await waitFor('every message handled', 60_000, async () => {
      const ns = new Set((await handled()).map((r) => r.n));
      return ns.size === 20;
    });
    const records = await handled();
    const again = records.filter((r) => r.id === hungId);
    expect(again).toHaveLength(1);
    expect(again[0]).toMatchObject({ by: 'worker-b', n: 7 });
    expect(again[0]!.deliveries).toBeGreaterThanOrEqual(2);
    await waitFor('nothing pending', 10_000, async () => {
      const summary = (await redis.xpending('jobs-kill', 'thumbnails')) as [number];
      return summary[0] === 0;
    });
  });

  it('SIGTERM during a burst: the worker finishes what it read, acks it and exits 0; nothing is lost', async () => {
    await redis.del('handled');
    const sdk = await connect({ env: workerEnv('producer', 'jobs-burst') });
    try {
      const pipe = sdk.queue!.redis.pipeline();
      for (let n = 0; n < 400; n++)
        pipe.xadd('jobs-burst', '*', 'payload', JSON.stringify({ n, sleepMs: 5 }));
      await pipe.exec();
    } finally {
      await sdk.close();
    }
    const c = startWorker('worker-c', 'jobs-burst');
    await waitFor('worker-c to handle 50', 60_000, async () => (await redis.llen('handled')) >= 50);
    c.proc.kill('SIGTERM');
    expect(await c.exited).toBe(0);
    expect(c.log()).toContain('worker stopped');
    const byC = (await handled()).length;
    expect(byC).toBeLessThan(400);
    // Everything worker-c read, it acked: nothing pending under its name.
    const consumers = (await redis.xinfo('CONSUMERS', 'jobs-burst', 'thumbnails')) as unknown[][];
    const mine = consumers.find((c) => c[1] === 'worker-c') as unknown[];
    expect(mine[3]).toBe(0); // [name, worker-c, pending, n, ...]

    startWorker('worker-d', 'jobs-burst');
    await waitFor('all 400 handled', 60_000, async () => (await redis.llen('handled')) >= 400);
    const records = await handled();
    expect(new Set(records.map((r) => r.n)).size).toBe(400);
    expect(records).toHaveLength(400); // and none twice
  });

  it('retries a failing handler and dead-letters after maxDeliveries with the original payload', async () => {
    const sdk: Scalable = await connect({
      env: workerEnv('inproc', 'jobs-fail', {
        QUEUE_MAX_DELIVERIES: '3',
        QUEUE_CLAIM_IDLE_MS: '200',
      }),
      onError: () => undefined,
    });
    const seen: { n: number; deliveries: number }[] = [];
    try {
      const q = sdk.queue!;
      await q.enqueue('jobs-fail', { n: 1, failTimes: 2 });
      await q.enqueue('jobs-fail', { n: 2, failTimes: 99 });
      const consumer = q.consume<{ n: number; failTimes: number }>(async (m) => {
        seen.push({ n: m.payload.n, deliveries: m.deliveries });
        if (m.deliveries <= m.payload.failTimes) throw new Error(`fail ${m.payload.n}`);
      });
      await waitFor(
        'one dead letter',
        30_000,
        async () => (await redis.xlen('jobs-fail:dead')) === 1,
      );
      await waitFor('nothing pending', 10_000, async () => {
        const summary = (await redis.xpending('jobs-fail', 'thumbnails')) as [number];
        return summary[0] === 0;
      });
      await consumer.stop();
      // n=1 failed twice and succeeded on its third delivery.
      expect(seen.filter((s) => s.n === 1).map((s) => s.deliveries)).toEqual([1, 2, 3]);
      expect(seen.filter((s) => s.n === 2).map((s) => s.deliveries)).toEqual([1, 2, 3]);
      const dead = (await redis.xrange('jobs-fail:dead', '-', '+')) as [string, string[]][];
      const fields = fieldsOf(dead[0]![1]);
      expect(JSON.parse(fields['payload']!)).toEqual({ n: 2, failTimes: 99 });
      expect(fields).toMatchObject({
        'original-stream': 'jobs-fail',
        deliveries: '3',
        'last-error': 'fail 2',
      });
    } finally {
      await sdk.close();
    }
  });
});
