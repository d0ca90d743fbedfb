// The replicated cache as rendered (replicas: 2): three redis-server and three
// redis-sentinel processes started by the ConfigMap's start scripts with the pods' env,
// their DNS names mapped to loopback ports. Killing the master promotes a replica, and an
// ioredis client configured from the web pods' env keeps reading and writing.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SENTINEL_DOWN_AFTER_MS } from '../../operator/engines/redis/config.ts';
import {
  Harness,
  PASSWORDS,
  client,
  envOf,
  info,
  sleep,
  tlsOptions,
  waitFor,
} from './redis-harness.ts';
import type { Instance } from './redis-harness.ts';
import { portOf, startReplicated } from './redis-replicated.ts';
import type { ReplicatedRedis } from './redis-replicated.ts';
import { recordForBench } from './bench-record.ts';
import { renderApp } from './sdk-harness.ts';

const { objects } = renderApp({ cache: { memory: '32Mi', replicas: 2 } });
const webEnv = envOf(objects, 'Deployment', 'shop-web');
const valueOf = (env: typeof webEnv, name: string) => {
  const v = env.find((e) => e.name === name)?.value;
  if (v === undefined) throw new Error(`no ${name}`);
  return v;
};
const MASTER = valueOf(webEnv, 'REDIS_MASTER_NAME');

const h = new Harness();
const clients: Redis[] = [];
let store: ReplicatedRedis;
let redis: Instance[] = [];
let sentinels: Instance[] = [];
/** Redis pod name -> the process standing in for it now. */
const pods = new Map<string, Instance>();

beforeAll(async () => {
  await h.init();
  store = await startReplicated(h, objects, 'shop-cache', 2);
  ({ redis, sentinels } = store);
  for (const [i, r] of redis.entries()) pods.set(`shop-cache-${i}`, r);
  // Both replicas finished their first sync (diskless, after repl-diskless-sync-delay).
  for (const r of redis.slice(1)) {
    const c = track(client(r.port));
    await waitFor(`${r.name} to sync`, 30_000, async () => {
      return (await info(c, 'replication'))['master_link_status'] === 'up';
    });
  }
});

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await h.cleanup();
});

function track(c: Redis) {
  clients.push(c);
  return c;
}

async function masterFromSentinel(s: Instance): Promise<string> {
  const c = client(s.port, { retryStrategy: () => null });
  try {
    const [host, port] = (await c.call('SENTINEL', 'get-master-addr-by-name', MASTER)) as string[];
    return `${host}:${port}`;
  } finally {
    c.disconnect();
  }
}

/** The app's client, built only from what the web Deployment's env says. */
function appClient(): Redis {
  const ref = webEnv.find((e) => e.name === 'REDIS_PASSWORD')?.valueFrom?.secretKeyRef;
  expect(ref).toEqual({ name: 'shop-cache-users', key: 'app-password' });
  // The app's ACL user, on the Sentinels as on Redis: data commands only (redis-acl.test.ts).
  const username = valueOf(webEnv, 'REDIS_USERNAME');
  expect(username).toBe('app');
  expect(webEnv.find((e) => e.name === 'REDIS_URL')).toBeUndefined();
  // TLS (the default): the CA file the app mounts; Sentinels and the master both verified.
  expect(valueOf(webEnv, 'REDIS_SSLROOTCERT')).toBe('/etc/scalable/ca/cache-ca/ca.crt');
  const tls = tlsOptions();
  const password = PASSWORDS.app; // the value of that Secret key
  const c = new Redis({
    tls,
    sentinelTLS: tls,
    enableTLSForSentinelMode: true,
    sentinels: valueOf(webEnv, 'REDIS_SENTINELS')
      .split(',')
      .map((a) => store.toLoopback(a))
      .map((a) => ({ host: a.slice(0, a.lastIndexOf(':')), port: portOf(a) })),
    name: MASTER,
    username,
    password,
    // The Sentinels know the same user and password.
    sentinelUsername: username,
    sentinelPassword: password,
  });
  c.on('error', () => undefined);
  return track(c);
}

describe('replicated cache with Sentinel, from the rendered ConfigMap', () => {
  it('starts pod 0 as master with two replicas, all Sentinels agreeing', async () => {
    for (const s of sentinels)
      expect(await masterFromSentinel(s)).toBe(`127.0.0.1:${redis[0]?.port}`);
    const m = track(client(redis[0]?.port ?? 0));
    expect((await info(m, 'replication'))['connected_slaves']).toBe('2');
  });

  it('refuses Sentinel clients without the password', async () => {
    const anon = track(
      new Redis({
        host: '127.0.0.1',
        port: sentinels[0]?.port,
        password: undefined,
        tls: tlsOptions(),
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      }),
    );
    anon.on('error', () => undefined);
    await expect(anon.call('SENTINEL', 'get-master-addr-by-name', MASTER)).rejects.toThrow(
      /NOAUTH/,
    );
  });

  it('promotes a replica when the master is killed; the app keeps reading and writing', async () => {
    const app = appClient();
    for (let i = 0; i < 200; i++) await app.set(`product:${i}`, `v${i}`);
    // Both replicas have every write before the crash (replication is asynchronous).
    expect(await app.call('WAIT', '2', '2000')).toBe(2);

    const old = redis[0] as Instance;
    const oldAddr = `127.0.0.1:${old.port}`;
    const t0 = Date.now();
    await h.kill(old, 'SIGKILL');

    // The app writes every 100 ms throughout; count failures, time the first success.
    let failures = 0;
    let firstOkAfter = -1;
    let n = 0;
    const writer = (async () => {
      while (Date.now() - t0 < 60_000) {
        try {
          await app.set(`during:${n}`, String(n));
          expect(await app.get(`during:${n}`)).toBe(String(n));
          // The old master is dead: any success went to the promoted replica.
          if (firstOkAfter < 0) firstOkAfter = Date.now() - t0;
          if (firstOkAfter >= 0 && n > 20) return;
          n++;
        } catch {
          failures++;
        }
        await sleep(100);
      }
    })();

    let promotedAfter = -1;
    await waitFor(
      'Sentinel to promote a replica',
      60_000,
      async () => {
        const addrs = await Promise.all(sentinels.map(masterFromSentinel));
        if (addrs.every((a) => a !== oldAddr && a === addrs[0])) {
          promotedAfter = Date.now() - t0;
          return true;
        }
        return false;
      },
      200,
    );
    await writer;
    const newAddr = await masterFromSentinel(sentinels[0] as Instance);
    console.log(
      `failover: master killed, Sentinel promoted ${newAddr} after ${promotedAfter} ms ` +
        `(down-after ${SENTINEL_DOWN_AFTER_MS} ms); the app's first write+read after the kill completed after ${firstOkAfter} ms, ` +
        `${failures} ops failed (ioredis queued them while it had no master)`,
    );
    recordForBench('sentinel-failover', {
      promotedAfterMs: promotedAfter,
      firstWriteAfterMs: firstOkAfter,
      failedOps: failures,
    });
    expect(promotedAfter).toBeGreaterThanOrEqual(SENTINEL_DOWN_AFTER_MS - 500);
    expect(firstOkAfter).toBeGreaterThan(0);
    expect(firstOkAfter).toBeLessThan(30_000);

    // Nothing acknowledged by both replicas was lost; the new master takes writes.
    const values = await Promise.all(
      Array.from({ length: 200 }, (_, i) => app.get(`product:${i}`)),
    );
    expect(values.filter((v, i) => v === `v${i}`).length).toBe(200);
    const promoted = track(client(portOf(newAddr)));
    expect((await info(promoted, 'replication'))['role']).toBe('master');
    expect(await promoted.get('during:0')).toBe('0');

    // The old master's pod restarts: start-redis.sh asks the Sentinels and comes back a replica.
    const env = store.podEnv('shop-cache-0');
    const back = await h.start('redis-0-again', 'start-redis.sh', store.data, env, {
      port: old.port,
      dataDir: old.dataDir,
    });
    pods.set('shop-cache-0', back);
    expect(back.log).toContain(`master is ${newAddr}`);
    const c = track(client(back.port));
    await waitFor('the old master to sync from the new one', 30_000, async () => {
      const repl = await info(c, 'replication');
      return repl['role'] === 'slave' && repl['master_link_status'] === 'up';
    });
    expect(await c.get('product:7')).toBe('v7');
  });
  it('hands the master role over before its pod stops (preStop): writes wait, none fail or get lost', async () => {
    const app = appClient();
    const masterAddr = await masterFromSentinel(sentinels[0] as Instance);
    const [podName, master] = [...pods].find(([, i]) => `127.0.0.1:${i.port}` === masterAddr) ?? [];
    if (!podName || !master) throw new Error(`no pod for master ${masterAddr}`);
    // Every replica is in sync before the rollout starts.
    await waitFor('replicas in sync', 30_000, async () => {
      const slaves = Object.entries(await info(track(client(master.port)), 'replication')).filter(
        ([k, v]) => /^slave\d+$/.test(k) && v.includes('state=online'),
      );
      return slaves.length === 2;
    });

    // The app writes continuously; record when each write was acknowledged.
    let stop = false;
    let failures = 0;
    const acked: Array<[number, number]> = [];
    const writer = (async () => {
      for (let n = 0; !stop; n++) {
        try {
          await app.set(`handover:${n}`, String(n));
          acked.push([n, Date.now()]);
        } catch {
          failures++;
        }
        await sleep(20);
      }
    })();
    await sleep(500);

    // What the kubelet does on a rollout or drain: run preStop, then SIGTERM.
    const t0 = Date.now();
    const hook = await h.run(podName, 'pre-stop.sh', store.data, store.podEnv(podName));
    const hookMs = Date.now() - t0;
    await h.kill(master, 'SIGTERM');
    await sleep(1500);
    stop = true;
    await writer;

    const newAddr = await masterFromSentinel(sentinels[2] as Instance);
    const gaps = acked.slice(1).map(([, t], i) => t - (acked[i]?.[1] ?? t));
    const maxGap = Math.max(...gaps);
    const promoted = track(client(portOf(newAddr)));
    const values = await Promise.all(acked.map(([n]) => promoted.get(`handover:${n}`)));
    const lost = acked.filter(([n], i) => values[i] !== String(n)).length;
    console.log(
      `handover: preStop took ${hookMs} ms (${hook.out.trim()}); longest wait for a write ${maxGap} ms; ` +
        `${acked.length} writes acknowledged, ${failures} failed, ${lost} lost`,
    );
    expect(hook.code).toBe(0);
    expect(hook.out).toContain(`handed over to ${newAddr}`);
    expect(newAddr).not.toBe(masterAddr);
    expect(failures).toBe(0);
    expect(lost).toBe(0);
    // How long writes waited (no down-after-milliseconds wait): a time, so bench:failover's.
    recordForBench('sentinel-handover', { longestWriteWaitMs: maxGap });
  });
});
