// The replicated queue store's preStop hand-over while a replica is still in its first full
// sync after a restart (a rollout restarts the replicas first; with a PING readiness probe
// the StatefulSet moved on to the master as soon as the replica answered PING). Sentinel's
// SENTINEL FAILOVER then promoted the syncing replica: it kept only what it had before its
// restart, and every write the master acknowledged since was lost, on a durable queue.
// Here, from the rendered StatefulSet and ConfigMap: 64 MiB of data so a full sync is real
// work, the master's repl-diskless-sync-delay raised so the first sync stays in progress for
// a while (a slow link), a producer recording every acknowledged stream entry, the replica
// restarted, the master's pre-stop.sh run while the replica syncs, then the master stopped
// and restarted as the kubelet would. Every acknowledged entry must be on the final master,
// and the rendered readiness probe must call the syncing replica not ready.
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { K8sObject } from '../../operator/tiers/shared/chart.ts';
import { Harness, client, info, sentinelAppClient, sleep, waitFor } from './redis-harness.ts';
import type { Instance } from './redis-harness.ts';
import { portOf, startReplicated } from './redis-replicated.ts';
import type { ReplicatedRedis } from './redis-replicated.ts';
import { renderApp } from './sdk-harness.ts';

const { objects } = renderApp({
  queue: { replicas: 1, consumers: [{ name: 'thumbs', image: 'w:1' }] },
});
const STREAM = 'thumbs';

/** The readiness probe the store's Redis container runs, as rendered. */
function renderedProbe(all: readonly K8sObject[]): string[] {
  const sts = all.find((o) => o.kind === 'StatefulSet' && o.metadata.name === 'shop-queue');
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const redis = (sts as any)?.spec.template.spec.containers.find(
    (c: { name: string }) => c.name === 'redis',
  );
  const command = redis?.readinessProbe?.exec?.command as string[] | undefined;
  if (!command || command.length !== 3) throw new Error('no exec readiness probe on redis');
  return command;
}
const PROBE = renderedProbe(objects);

/**
 * Runs the probe in the instance's container as the kubelet runs an exec probe (the
 * container's env: the admin password, TLS_CA_FILE); the one loopback edit is the port.
 */
function ready(inst: Instance): boolean {
  const [sh = 'sh', flag = '-c', script = ''] = PROBE;
  if (script.split('-p 6379').length !== 2) throw new Error('the probe names port 6379 once');
  return inst.container.exec([sh, flag, script.replace('-p 6379', `-p ${inst.port}`)]).status === 0;
}

const h = new Harness();
const clients: Redis[] = [];
const track = (c: Redis) => (clients.push(c), c);
let store: ReplicatedRedis;

beforeAll(async () => {
  await h.init();
  store = await startReplicated(h, objects, 'shop-queue', 1);
}, 180_000);

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await h.cleanup();
});

async function masterAddr(): Promise<string> {
  const s = track(client(store.sentinels[0]?.port ?? 0));
  const [host, port] = (await s.call('SENTINEL', 'get-master-addr-by-name', store.master)) as [
    string,
    string,
  ];
  s.disconnect();
  return `${host}:${port}`;
}

/** The producer's client: the app user, the master found through the Sentinels. */
function appClient(): Redis {
  return track(
    sentinelAppClient(
      store.sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })),
      store.master,
    ),
  );
}

describe('replicated queue store: preStop hand-over while a replica is in its first sync', () => {
  it('calls the syncing replica not ready and hands over only once it has every acknowledged write', async () => {
    const [master, replica] = store.redis as [Instance, Instance];
    const m = track(client(master.port));
    // 64 MiB: the replica's full sync and its load take real time.
    const big = 'q'.repeat(1 << 20);
    for (let i = 0; i < 64; i += 8) {
      const p = m.pipeline();
      for (let j = i; j < i + 8; j++) p.set(`fill:${j}`, big);
      await p.exec();
    }
    await waitFor(
      'the replica to hold the data set',
      120_000,
      async () => Number(await m.call('WAIT', '1', '1000')) === 1,
      250,
    );
    // Both in sync: both ready (a master always is).
    await waitFor('both pods ready', 60_000, async () => ready(master) && ready(replica), 500);
    // A slow link: the master waits 10 s before it streams a full sync (the default is 5).
    await m.config('SET', 'repl-diskless-sync-delay', '10');

    // The producer enqueues every 20 ms and records what the store acknowledged.
    const app = appClient();
    const acked: number[] = [];
    let failed = 0;
    let stop = false;
    const producer = (async () => {
      for (let n = 0; !stop; n++) {
        try {
          await app.xadd(STREAM, '*', 'n', String(n));
          acked.push(n);
        } catch {
          failed++;
        }
        await sleep(20);
      }
    })();
    await waitFor('the producer to run', 30_000, async () => acked.length >= 10);

    // The rollout restarts the replica (same volume): it loads its append-only file, answers
    // PING, and starts its first full sync from the master.
    await h.kill(replica, 'SIGTERM');
    const back = await h.start(
      'redis-1-again',
      'start-redis.sh',
      store.data,
      store.podEnv('shop-queue-1'),
      {
        port: replica.port,
        dataDir: replica.dataDir,
      },
    );
    const r = track(client(back.port));
    const repl = await info(r, 'replication');
    expect(repl['role']).toBe('slave');
    expect(repl['master_link_status']).not.toBe('up');
    const readyWhileSyncing = ready(back);
    // The Sentinels see it again (a rollout moving on would find it so), still syncing.
    await waitFor('Sentinel to reach the restarted replica', 30_000, async () => {
      const s = track(client(store.sentinels[0]?.port ?? 0));
      const seen = (await s.call('SENTINEL', 'replicas', store.master)) as string[][];
      s.disconnect();
      const me = seen.find((f) => f[f.indexOf('name') + 1] === `127.0.0.1:${back.port}`);
      const flags = me ? (me[me.indexOf('flags') + 1] ?? '') : 'disconnected';
      return !/disconnected|s_down/.test(flags);
    });
    // Still in its first sync (the master holds the full sync back 10 s): what this is about.
    const stillSyncing = (await info(r, 'replication'))['master_link_status'] !== 'up';
    expect(stillSyncing).toBe(true);

    // The master's turn: the kubelet runs preStop, then SIGTERM; the pod comes back.
    const t0 = Date.now();
    const hook = await h.run('redis-0', 'pre-stop.sh', store.data, store.podEnv('shop-queue-0'));
    const hookMs = Date.now() - t0;
    await h.kill(master, 'SIGTERM');
    const again = await h.start(
      'redis-0-again',
      'start-redis.sh',
      store.data,
      store.podEnv('shop-queue-0'),
      {
        port: master.port,
        dataDir: master.dataDir,
      },
    );

    // The dust settles: the pod that came back is ready (in sync with the master), and the
    // producer acknowledged more entries on the master it now writes to.
    const finalAddr = await masterAddr();
    const finalPod = portOf(finalAddr) === back.port ? back : again;
    const otherPod = finalPod === back ? again : back;
    await waitFor(
      'both pods ready again',
      120_000,
      async () => ready(finalPod) && ready(otherPod),
      500,
    );
    const settled = acked.length;
    await waitFor('20 more entries acknowledged', 60_000, async () => acked.length >= settled + 20);
    stop = true;
    await producer;

    const f = track(client(portOf(await masterAddr())));
    const entries = (await f.xrange(STREAM, '-', '+')) as Array<[string, string[]]>;
    const stored = new Set(entries.map(([, fields]) => Number(fields[1])));
    const lost = acked.filter((n) => !stored.has(n));
    console.log(
      `[queue-handover] preStop took ${hookMs} ms (${hook.out.trim()}); replica ready by the ` +
        `probe while syncing: ${readyWhileSyncing}, still syncing at the preStop: ${stillSyncing}; ` +
        `${acked.length} entries acknowledged, ${failed} enqueues failed, ${lost.length} lost` +
        (lost.length ? ` (${lost[0]}..${lost.at(-1)})` : ''),
    );
    expect(lost).toEqual([]);
    expect(readyWhileSyncing).toBe(false);
    expect(hook.code).toBe(0);
    expect(hook.out).toContain(`handed over to 127.0.0.1:${back.port}`);
    expect(finalAddr).toBe(`127.0.0.1:${back.port}`);
    // The old master came back as a replica of the new one, and the data set is whole.
    expect((await info(track(client(again.port)), 'replication'))['role']).toBe('slave');
    expect(await f.exists(...Array.from({ length: 64 }, (_, i) => `fill:${i}`))).toBe(64);
  }, 300_000);
});
