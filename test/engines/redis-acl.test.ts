// Redis ACL users per role (issue 36: one password let app pods CONFIG SET, REPLICAOF and
// SENTINEL MONITOR), on the rendered ConfigMaps with the project's redis image: the app user
// runs data commands only, on Redis and on the Sentinels; replicas sync as the replication
// user and Sentinel watches as its own; the default user is off. And the upgrade: a set on the
// pre-ACL config (the ConfigMap 795e355 rendered) rolls pod by pod onto the ACL users with its
// legacy password still in the -auth Secret: no acknowledged write lost, the old app pods
// (legacy password) and the new ones (app user) both keep working throughout.
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toModel } from '../../operator/api/model.ts';
import { validateApp } from '../../operator/api/validate.ts';
import { buildAll } from '../../operator/tiers/index.ts';
import {
  Harness,
  LEGACY_PASSWORD,
  PASSWORDS,
  ROLE_ENV,
  client,
  configMapData,
  info,
  tlsOptions,
  waitFor,
} from './redis-harness.ts';
import type { Instance } from './redis-harness.ts';
import { portOf, startReplicated } from './redis-replicated.ts';

function render(cache: Record<string, unknown>) {
  const r = validateApp({
    apiVersion: 'scalable.dev/v1alpha1',
    kind: 'ScalableApp',
    metadata: { name: 'shop', namespace: 'prod' },
    spec: { web: { image: 'shop:1' }, cache },
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return buildAll(toModel(r.app));
}

const h = new Harness();
const clients: Redis[] = [];
const track = (c: Redis) => {
  c.on('error', () => undefined);
  clients.push(c);
  return c;
};
const as = (
  port: number,
  username: string | undefined,
  password: string,
  extra: RedisOptions = {},
) =>
  track(
    new Redis({
      host: '127.0.0.1',
      port,
      ...(username === undefined ? {} : { username }),
      password,
      tls: tlsOptions(),
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      ...extra,
    }),
  );

beforeAll(() => h.init());
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await h.cleanup();
});

const NOPERM = /NOPERM/;

describe('Redis ACL users per role', () => {
  it('the app user runs data commands only: CONFIG, REPLICAOF, DEBUG, SHUTDOWN, ACL, MODULE, FLUSHALL are refused; the default user is off', async () => {
    const data = configMapData(render({}), 'shop-cache-config');
    const inst = await h.start('standalone', 'start-redis.sh', data);
    const app = as(inst.port, 'app', PASSWORDS.app);
    // Its data commands, streams (the queue) and scripts included.
    expect(await app.set('k', 'v', 'EX', 60)).toBe('OK');
    expect(await app.get('k')).toBe('v');
    expect(await app.hset('h', 'f', '1')).toBe(1);
    expect(await app.incr('n')).toBe(1);
    const id = await app.xadd('s', '*', 'f', 'v');
    expect(await app.xgroup('CREATE', 's', 'g', '0')).toBe('OK');
    expect(await app.xreadgroup('GROUP', 'g', 'c', 'COUNT', 1, 'STREAMS', 's', '>')).toHaveLength(
      1,
    );
    expect(await app.xack('s', 'g', id ?? '')).toBe(1);
    expect(await app.eval("return redis.call('get', KEYS[1])", 1, 'k')).toBe('v');
    expect(await app.multi().set('a', '1').get('a').exec()).toEqual([
      [null, 'OK'],
      [null, '1'],
    ]);
    expect(await app.info('server')).toContain('redis_version');

    // Nothing that changes the server, its replication or its users.
    const refused: (string | number)[][] = [
      ['CONFIG', 'SET', 'maxmemory', '1'],
      ['CONFIG', 'GET', 'masterauth'],
      ['REPLICAOF', '127.0.0.1', '1'],
      ['SLAVEOF', '127.0.0.1', '1'],
      ['SHUTDOWN', 'NOSAVE'],
      ['ACL', 'SETUSER', 'mallory', 'on', '>x', '+@all'],
      ['ACL', 'LIST'],
      ['MODULE', 'LIST'],
      ['FLUSHALL'],
      ['KEYS', '*'],
      ['CLIENT', 'KILL', 'TYPE', 'replica'],
      ['BGSAVE'],
      ['FAILOVER'],
      // Sentinel's channel: a forged hello could mislead the Sentinels.
      ['PUBLISH', '__sentinel__:hello', 'forged'],
    ];
    for (const [cmd, ...args] of refused)
      await expect(app.call(String(cmd), ...args), `${cmd} ${args.join(' ')}`).rejects.toThrow(
        NOPERM,
      );

    // A script runs with its caller's rights.
    await expect(app.eval("return redis.call('flushall')", 0)).rejects.toThrow(/ACL failure/);
    // DEBUG is off for everyone (enable-debug-command no), checked before the ACL.
    await expect(app.call('DEBUG', 'SLEEP', '0')).rejects.toThrow(
      /NOPERM|DEBUG command not allowed/,
    );
    // The other roles cannot read data either.
    for (const role of ['replication', 'sentinel', 'exporter'] as const)
      await expect(as(inst.port, role, PASSWORDS[role]).get('k'), role).rejects.toThrow(NOPERM);
    // No default user: the admin's password alone, or none, is refused.
    await expect(as(inst.port, undefined, PASSWORDS.admin).ping()).rejects.toThrow(/WRONGPASS/);
    const anon = track(
      new Redis({
        host: '127.0.0.1',
        port: inst.port,
        tls: tlsOptions(),
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      }),
    );
    await expect(anon.get('k')).rejects.toThrow(/NOAUTH/);

    // The server is as configured: still a master with its maxmemory.
    const admin = track(client(inst.port));
    expect(((await admin.call('CONFIG', 'GET', 'maxmemory')) as string[])[1]).toBe(
      String(256 * 2 ** 20),
    );
    expect((await info(admin, 'replication'))['role']).toBe('master');
    await h.kill(inst);
  });

  it('with Sentinel: replicas sync as the replication user, Sentinel watches and fails over as its own; the app may only ask where the master is', async () => {
    const objects = render({ replicas: 2 });
    const set = await startReplicated(h, objects, 'shop-cache', 2);
    const master = set.redis[0] as Instance;
    const admin = track(client(master.port));
    // Who is connected to the master, by user: the replicas as replication, Sentinels as sentinel.
    const users = async () =>
      ((await admin.call('CLIENT', 'LIST')) as string)
        .split('\n')
        .map((l) => /(?:^| )user=(\S+)/.exec(l)?.[1])
        .filter(Boolean);
    await waitFor('2 replicas and 3 Sentinels on the master', 30_000, async () => {
      const u = await users();
      return (
        u.filter((x) => x === 'replication').length === 2 &&
        u.filter((x) => x === 'sentinel').length >= 3
      );
    });
    expect((await users()).filter((x) => x === 'default')).toEqual([]);

    const sentinel = set.sentinels[0] as Instance;
    const appSentinel = as(sentinel.port, 'app', PASSWORDS.app);
    const addr = (await appSentinel.call(
      'SENTINEL',
      'get-master-addr-by-name',
      set.master,
    )) as string[];
    expect(`${addr[0]}:${addr[1]}`).toBe(`127.0.0.1:${master.port}`);
    for (const args of [
      ['MONITOR', 'evil', '127.0.0.1', '1', '1'],
      ['SET', set.master, 'down-after-milliseconds', '1'],
      ['FAILOVER', set.master],
      ['REMOVE', set.master],
      ['RESET', '*'],
      ['CONFIG', 'SET', 'resolve-hostnames', 'no'],
    ])
      await expect(appSentinel.call('SENTINEL', ...args), args.join(' ')).rejects.toThrow(NOPERM);
    await expect(as(sentinel.port, undefined, PASSWORDS.admin).ping()).rejects.toThrow(/WRONGPASS/);

    // A failover, run by Sentinel as its user: a replica is promoted, the other follows it.
    const sentinelAdmin = track(client(sentinel.port));
    expect(await sentinelAdmin.call('SENTINEL', 'FAILOVER', set.master)).toBe('OK');
    let promoted = 0;
    await waitFor('a replica promoted, with the other replica following it', 60_000, async () => {
      const a = (await sentinelAdmin.call(
        'SENTINEL',
        'get-master-addr-by-name',
        set.master,
      )) as string[];
      promoted = Number(a[1]);
      if (promoted === master.port) return false;
      const m = track(client(promoted));
      const r = await info(m, 'replication');
      m.disconnect();
      return r['role'] === 'master' && r['connected_slaves'] === '2';
    });
    expect(promoted).not.toBe(master.port);
    for (const i of [...set.redis, ...set.sentinels]) await h.kill(i);
  });
});

/** The pre-ACL ConfigMap (rendered by 795e355): requirepass/masterauth, one password. */
const OLD_DATA = JSON.parse(
  readFileSync(new URL('./fixtures/redis-cache-config-795e355.json', import.meta.url), 'utf8'),
) as Record<string, string>;
/** A pod's env on the old template: only the single password (the -auth Secret). */
const OLD_ENV = {
  ...Object.fromEntries(Object.keys(ROLE_ENV).map((k) => [k, ''])),
  REDIS_PASSWORD: LEGACY_PASSWORD,
};
/** A pod's env on the new template while the -auth Secret still exists. */
const NEW_ENV = { ...ROLE_ENV, REDIS_PASSWORD: LEGACY_PASSWORD };
const LEGACY_AUTH: RedisOptions = { username: undefined, password: LEGACY_PASSWORD };

describe('upgrade from the single password', () => {
  it('rolls a pre-ACL set pod by pod onto the ACL users: no write lost, old and new app clients keep working', async () => {
    const objects = render({ replicas: 2 });
    const data = configMapData(objects, 'shop-cache-config');
    const old = await startReplicated(h, objects, 'shop-cache', 2, OLD_ENV, {
      data: OLD_DATA,
      auth: LEGACY_AUTH,
    });
    const sentinels = (port: number) => ({ host: '127.0.0.1', port });
    const appClient = (auth: RedisOptions) =>
      track(
        new Redis({
          sentinels: old.sentinels.map((s) => sentinels(s.port)),
          name: old.master,
          ...auth,
          ...(auth.username ? { sentinelUsername: auth.username } : {}),
          sentinelPassword: auth.password,
          tls: tlsOptions(),
          sentinelTLS: tlsOptions(),
          enableTLSForSentinelMode: true,
        }),
      );
    // An app pod still on the old template (the legacy password) writes throughout.
    const oldApp = appClient(LEGACY_AUTH);
    const acked: string[] = [];
    let failed = 0;
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        try {
          await oldApp.set(`old:${i}`, String(i));
          acked.push(`old:${i}`);
        } catch {
          failed++;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    const restart = async (
      i: Instance,
      script: 'start-redis.sh' | 'start-sentinel.sh',
      pod: string,
    ) => {
      await h.kill(i, 'SIGTERM');
      const env = { ...old.podEnv(pod), ...NEW_ENV };
      const next = await h.start(`${i.name}-new`, script, data, env, {
        port: i.port,
        dataDir: i.dataDir,
      });
      // A replica goes on only once it has synced, as the StatefulSet waits for its readiness
      // (a master or a replica in sync; queue-handover.test.ts has the hand-over mid-sync).
      if (script === 'start-redis.sh' && pod !== 'shop-cache-0') {
        const c = track(client(next.port));
        await waitFor(`${pod} to sync`, 60_000, async () => {
          return (await info(c, 'replication'))['master_link_status'] === 'up';
        });
      }
      return next;
    };
    // The StatefulSets roll: replicas from the highest ordinal, the Sentinels one by one.
    const redis = [...old.redis];
    redis[2] = await restart(redis[2] as Instance, 'start-redis.sh', 'shop-cache-2');
    // The first new pod taught the old master and the old Sentinels the new users: an app pod
    // on the new template (the app user) works before they restart.
    const newApp = appClient({ username: 'app', password: PASSWORDS.app });
    expect(await newApp.set('new:1', '1')).toBe('OK');
    redis[1] = await restart(redis[1] as Instance, 'start-redis.sh', 'shop-cache-1');
    const sentinelPods = old.sentinels.map((s, i) => [s, `shop-cache-sentinel-${i}`] as const);
    const newSentinels: Instance[] = [];
    for (const [s, pod] of sentinelPods)
      newSentinels.push(await restart(s, 'start-sentinel.sh', pod));
    // Pod 0, the master, last: the kubelet runs the new pre-stop.sh (the ConfigMap is
    // updated in place) with the old container's env, which hands the master role over.
    const pre = await h.run('redis-0', 'pre-stop.sh', data, {
      ...old.podEnv('shop-cache-0'),
      ...OLD_ENV,
    });
    expect(pre.out).toContain('handed over');
    redis[0] = await restart(redis[0] as Instance, 'start-redis.sh', 'shop-cache-0');

    expect(await newApp.set('new:2', '2')).toBe('OK');
    stop = true;
    await writer;
    // Every acknowledged write is on the master, and both clients still work.
    const s0 = track(client(newSentinels[0]?.port ?? 0));
    const m = (await s0.call('SENTINEL', 'get-master-addr-by-name', old.master)) as string[];
    const master = track(client(portOf(`${m[0]}:${m[1]}`)));
    await waitFor(
      'both replicas on the new master',
      60_000,
      async () => (await info(master, 'replication'))['connected_slaves'] === '2',
    );
    const values = acked.length ? await master.mget(...acked) : [];
    const lost = acked.filter((_, i) => values[i] === null);
    if (lost.length)
      console.log(
        `lost ${lost.length}: ${lost[0]}..${lost.at(-1)}; master ${m[1]} dbsize ${await master.dbsize()}; pods ${redis.map((r) => r.port).join(',')}\n${redis.map((r) => r.log).join('\n----\n')}\n${newSentinels.map((r) => r.log).join('\n----\n')}`,
      );
    expect(lost).toEqual([]);
    expect(acked.length).toBeGreaterThan(20);
    console.log(
      `upgrade: ${acked.length} writes acknowledged, ${failed} failed (retried by the app), none lost`,
    );
    expect(await oldApp.get('old:0')).toBe('0');
    expect(await newApp.get('new:2')).toBe('2');
    for (const i of [...redis, ...newSentinels]) await h.kill(i);
  });
});
