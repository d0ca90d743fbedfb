// The replicated queue store as rendered (queue.replicas > 0): its Redis pods and Sentinels
// started by the ConfigMap's scripts with the env the StatefulSets render (pod DNS names
// mapped to loopback ports), and the SDK on the worker env (QUEUE_SENTINELS): messages
// replicated before the master dies are all on the promoted replica, and the queue goes on.
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../sdk/src/index.ts';
import type { Scalable } from '../../sdk/src/index.ts';
import { Harness, USERS_SECRET, client, waitFor } from './redis-harness.ts';
import type { Instance } from './redis-harness.ts';
import { portOf, startReplicated } from './redis-replicated.ts';
import { podEnv, renderApp } from './sdk-harness.ts';

const REPLICAS = 2;
const { objects } = renderApp({
  queue: { replicas: REPLICAS, consumers: [{ name: 'thumbs', image: 'w:1' }] },
});
const h = new Harness();
let loopback: ReadonlyMap<string, string> = new Map();
let redis: Instance[] = [];
let sentinels: Instance[] = [];
let sdk: Scalable;
let master = '';

const toLoopback = (addr: string) => loopback.get(addr) ?? addr;

async function masterPort(): Promise<number> {
  const c = client(sentinels[0]!.port);
  try {
    const [host, port] = (await c.call('SENTINEL', 'get-master-addr-by-name', master)) as string[];
    return portOf(toLoopback(`${host}:${port}`));
  } finally {
    c.disconnect();
  }
}

beforeAll(async () => {
  await h.init();
  // OrderedReady: pod 0 (the seed master) first, then the replicas, then the Sentinels.
  ({ loopback, redis, sentinels, master } = await startReplicated(
    h,
    objects,
    'shop-queue',
    REPLICAS,
  ));
  const env = podEnv(
    objects,
    { secrets: { 'shop-queue-users': USERS_SECRET }, caFile: h.caFile },
    'Deployment',
    'shop-worker-thumbs',
  );
  sdk = await connect({
    env: {
      ...env,
      QUEUE_SENTINELS: (env['QUEUE_SENTINELS'] ?? '').split(',').map(toLoopback).join(','),
      QUEUE_CONSUMER: 'worker-0',
    },
    // Sentinel answers with pod DNS names; map them as a NAT would.
    redis: {
      natMap: Object.fromEntries(
        [...loopback].map(([pod, lo]) => [pod, { host: '127.0.0.1', port: portOf(lo) }]),
      ),
    },
    onError: () => undefined,
  });
}, 180_000);

afterAll(async () => {
  await sdk?.close();
  await h.cleanup();
});

describe('replicated queue store from the rendered StatefulSets', () => {
  it('hands workers the Sentinels and the master name, not a URL', () => {
    expect(sdk.settings.queue?.redis.kind).toBe('sentinel');
    expect(master).toBe('shop-queue');
  });

  it('keeps every replicated message across kill -9 of the master and goes on after the failover', async () => {
    const q = sdk.queue!;
    for (let n = 0; n < 100; n++) await q.enqueue('thumbs', { n });
    const oldPort = await masterPort();
    const old = redis.find((r) => r.port === oldPort)!;
    const m: Redis = client(oldPort);
    // Replication is asynchronous: wait until both replicas hold every message, then crash.
    // (A replica may still be in its first full sync: WAIT again until both acknowledge.)
    await waitFor(
      'both replicas to hold every message',
      60_000,
      async () => Number(await m.call('WAIT', String(REPLICAS), '1000')) === REPLICAS,
      250,
    );
    m.disconnect();
    const t0 = Date.now();
    await h.kill(old);
    await waitFor('a new master', 60_000, async () => (await masterPort()) !== oldPort, 250);
    const failoverSeconds = (Date.now() - t0) / 1000;
    await waitFor(
      'the SDK to write to the new master',
      30_000,
      async () => {
        await q.enqueue('thumbs', { n: 100 });
        return true;
      },
      500,
    );
    const handled = new Set<number>();
    const consumer = q.consume<{ n: number }>(async (msg) => {
      handled.add(msg.payload.n);
    });
    await waitFor('all 101 handled', 30_000, async () => handled.size === 101);
    await consumer.stop();
    console.log(`[queue-sentinel] kill -9 of the master -> new master in ${failoverSeconds}s`);
    expect([...handled].sort((a, b) => a - b)).toEqual(Array.from({ length: 101 }, (_, i) => i));
  }, 120_000);
});
