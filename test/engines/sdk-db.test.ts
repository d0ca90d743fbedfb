// The SDK's database router on real Patroni clusters (2 shards, a primary and a replica
// each), reached through stand-ins for the rendered Services that follow their
// EndpointSlices, with the app's env as the operator renders it and the shard map written
// as the kubelet writes ConfigMap volumes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ShardRoutingError,
  bucketOf,
  connect,
  formatLsn,
  parseShardMap,
  parseWriteToken,
} from '../../sdk/src/index.ts';
import type { Scalable, ShardMap } from '../../sdk/src/index.ts';
import { buildAll } from '../../operator/tiers/index.ts';
import { REPLICA_ROLE, appSecretName } from '../../operator/tiers/database/names.ts';
import { PASSWORDS, eventually, freePort, sql, startDatabase } from './patroni-harness.ts';
import type { Harness } from './patroni-harness.ts';
import { holdReplay, patientSql, serviceProxies, writeConfigMapVolume } from './sdk-db-harness.ts';
import type { ServiceProxies } from './sdk-db-harness.ts';
import { podEnv } from './sdk-harness.ts';
import { installScratchApp } from './sdk-scratch-app.ts';

let h: Harness;
let proxies: ServiceProxies;
let rendered: ShardMap;
let port: number;
let mapDir: string;
let sdk: Scalable;
/** The pod env as the operator renders it, the Services and CA pointed at the stand-ins. */
let env: Record<string, string>;
/** Shard maps the running client refused, as its onError reported them. */
const refusals: Error[] = [];

/** The rendered map with each Service name replaced by its loopback stand-in's address. */
function loopbackMap(over: Partial<ShardMap> = {}, shard1Host = '127.0.1.12'): ShardMap {
  return {
    ...rendered,
    shards: rendered.shards.map((s) => ({
      ...s,
      primary: s.index === 1 ? shard1Host : `127.0.1.${10 + 2 * s.index}`,
      replicas: `127.0.1.${11 + 2 * s.index}`,
      port,
    })),
    ...over,
  };
}

const publish = (map: ShardMap) =>
  writeConfigMapVolume(mapDir, { 'shard-map.json': JSON.stringify(map, null, 2) + '\n' });

const COUNT_ON =
  'SELECT pg_is_in_recovery() AS replica, (SELECT count(*) FROM items WHERE user_id = $1)::int AS n';

/**
 * A plain read of `key`'s row count, as the replica answers it. A replica slow to accept a
 * connection (a loaded machine) is skipped for the primary for a second: wait for an answer
 * from the replica itself, then judge it.
 */
const countOnReplica = (key: string) =>
  eventually(`a read of ${key} answered by the replica`, async () => {
    const r = (await sdk.db!.read<{ replica: boolean; n: number }>(key, COUNT_ON, [key])).rows[0];
    return r?.replica ? r : undefined;
  });

/** A key whose bucket the map gives to `shard`. */
function keyOn(map: ShardMap, shard: number, from = 0): string {
  for (let i = from; ; i++) {
    const b = bucketOf(`user-${i}`);
    if (map.ranges.some((r) => r.shard === shard && b >= r.from && b < r.to)) return `user-${i}`;
  }
}

beforeAll(async () => {
  // The Service stand-ins' loopback IPs are in the certificates: the SDK verifies
  // (verify-full, as rendered) the address it connects to.
  h = await startDatabase('sdk-db', { shards: 2, replicasPerShard: 1, shardKey: 'user_id' }, [
    '127.0.1.10',
    '127.0.1.11',
    '127.0.1.12',
    '127.0.1.13',
    '127.0.1.22',
  ]);
  await eventually(
    'a primary and a streaming replica in each shard',
    async () => {
      const primaries = [h.primaryOf(0), h.primaryOf(1)];
      if (primaries.some((p) => !p)) return undefined;
      for (const p of primaries) {
        const rows = await sql<{ n: string }>(
          p!.pgPort,
          "SELECT count(*) AS n FROM pg_stat_replication WHERE state = 'streaming'",
        );
        if (rows[0]?.n !== '1') return undefined;
      }
      const replicas = h
        .pods()
        .filter((p) => p.metadata.labels?.['scalable.dev/role'] === REPLICA_ROLE);
      return replicas.length === 2 ? true : undefined;
    },
    150_000,
    500,
  );
  const cm = JSON.parse(
    h.kubectl(['-n', h.ns, 'get', 'configmap', 'shop-shard-map', '-o', 'json']),
  ) as {
    data: Record<string, string>;
  };
  rendered = parseShardMap(cm.data['shard-map.json'] ?? '');
  port = await freePort();
  proxies = serviceProxies(h);
  for (const s of rendered.shards) {
    await proxies.add(`shop-db-${s.index}`, `127.0.1.${10 + 2 * s.index}`, port);
    await proxies.add(`shop-db-${s.index}-ro`, `127.0.1.${11 + 2 * s.index}`, port);
  }
  mapDir = mkdtempSync(join(tmpdir(), 'sdk-shard-map-'));
  publish(loopbackMap());
  env = podEnv(buildAll(h.app), {
    secrets: { [appSecretName(h.app)]: PASSWORDS.app },
    values: {
      '/etc/scalable/shard-map/shard-map.json': join(mapDir, 'shard-map.json'),
      '/etc/scalable/ca/database-ca/ca.crt': h.caFile,
    },
  });
  expect(env['DATABASE_SSLMODE']).toBe('verify-full');
  sdk = await connect({
    env,
    onError: (where, e) => void (where === 'shard map' && refusals.push(e)),
  });
  await sdk.db!.forEachShard((q) =>
    q.query('CREATE TABLE items (user_id text PRIMARY KEY, n int NOT NULL)'),
  );
});

afterAll(async ({}, suite) => {
  await sdk?.close();
  await proxies?.close();
  await h?.stop(suite);
  if (mapDir) rmSync(mapDir, { recursive: true, force: true });
});

describe('SDK database router on Patroni shards', () => {
  it('writes 2,000 keys, each to the shard the SQL bucket function names', async () => {
    const keys = Array.from({ length: 2_000 }, (_, i) => `user-${i}`);
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < keys.length) {
          const i = next++;
          await sdk.db!.write(keys[i]!, 'INSERT INTO items VALUES ($1, $2)', [keys[i], i]);
        }
      }),
    );
    let total = 0;
    for (const s of rendered.shards) {
      const inRange = rendered.ranges
        .filter((r) => r.shard === s.index)
        .map(
          (r) => `(scalable_bucket(user_id) >= ${r.from} AND scalable_bucket(user_id) < ${r.to})`,
        )
        .join(' OR ');
      const rows = await patientSql<{ total: string; misplaced: string }>(
        h.primaryOf(s.index)!.pgPort,
        `SELECT count(*) AS total, count(*) FILTER (WHERE NOT (${inRange})) AS misplaced FROM items`,
        [],
        'shop',
      );
      expect(Number(rows[0]?.misplaced)).toBe(0);
      expect(Number(rows[0]?.total)).toBeGreaterThan(800); // about half the keys each
      total += Number(rows[0]?.total);
    }
    expect(total).toBe(2_000);
  }, 600_000); // 10,000 commits took over 180 s at a load average of 50 on 2 cores; 2,000 prove the routing as well

  it('the SDK installed from its tarball outside the repository writes and reads back through the same shards', async () => {
    const scratch = installScratchApp();
    try {
      const keys = Array.from({ length: 200 }, (_, i) => `packed-${i}`);
      const r = await scratch.run(
        `import { connect } from '@scalable-dev/sdk';
const sdk = await connect();
const keys = ${JSON.stringify(keys)};
const s = sdk.db.session();
for (const [i, k] of keys.entries()) await s.write(k, 'INSERT INTO items VALUES ($1, $2)', [k, i]);
let seen = 0;
for (const k of keys) seen += (await s.read(k, 'SELECT n FROM items WHERE user_id = $1', [k])).rows.length;
await sdk.close();
console.log(JSON.stringify({ seen, token: s.token !== undefined }));
`,
        env,
      );
      expect(r.code, r.out).toBe(0);
      // Read-your-writes through the packed build: every key read back in its session.
      expect(JSON.parse(r.out.trim().split('\n').at(-1) ?? '')).toEqual({ seen: 200, token: true });
      // Each key once, on the primary of the shard whose ranges hold its bucket as the SQL
      // function on the shard computes it (not the SDK's own code).
      const found: string[] = [];
      for (const s of rendered.shards) {
        const inRange = rendered.ranges
          .filter((x) => x.shard === s.index)
          .map(
            (x) => `(scalable_bucket(user_id) >= ${x.from} AND scalable_bucket(user_id) < ${x.to})`,
          )
          .join(' OR ');
        const rows = await patientSql<{ user_id: string; placed: boolean }>(
          h.primaryOf(s.index)!.pgPort,
          `SELECT user_id, (${inRange}) AS placed FROM items WHERE user_id LIKE 'packed-%'`,
          [],
          'shop',
        );
        expect(rows.filter((x) => !x.placed)).toEqual([]);
        expect(rows.length).toBeGreaterThan(0);
        found.push(...rows.map((x) => x.user_id));
      }
      expect(found.sort()).toEqual([...keys].sort());
    } finally {
      scratch.remove();
    }
  }, 600_000);

  it('reads from a replica; with an opt-in lag bound, a lagging replica is skipped for the primary', async () => {
    const key = keyOn(rendered, 0, 20_000);
    const q =
      'SELECT pg_is_in_recovery() AS replica, (SELECT count(*) FROM items WHERE user_id = $1)::int AS n';
    await sdk.db!.write(key, 'INSERT INTO items VALUES ($1, 1)', [key]);
    const seen = await eventually('the row on the replica', async () => {
      const r = (await sdk.db!.read<{ replica: boolean; n: number }>(key, q, [key])).rows[0];
      return r?.replica && r.n === 1 ? r : undefined;
    });
    expect(seen).toEqual({ replica: true, n: 1 });

    const late = keyOn(rendered, 0, 30_000);
    const hold = await holdReplay(h, 0, rendered.database);
    try {
      await sdk.db!.write(late, 'INSERT INTO items VALUES ($1, 1)', [late]);
      await eventually('the replica to lag by more than the bound', async () => {
        const rows = await sql<{ lag: number }>(
          hold.replica.pgPort,
          'SELECT EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8 AS lag',
        );
        return (rows[0]?.lag ?? 0) > 1 ? true : undefined;
      });
      const bounded = await sdk.db!.read<{ replica: boolean; n: number }>(late, q, [late], {
        maxLagSeconds: 0.5,
      });
      expect(bounded.rows[0]).toEqual({ replica: false, n: 1 });
      expect(await countOnReplica(late)).toEqual({ replica: true, n: 0 });
    } finally {
      await hold.release();
    }
  });

  it("reads its own writes: a replica serves a session only once it has replayed the session's last write", async () => {
    const key = keyOn(rendered, 0, 80_000);
    const other = keyOn(rendered, 1, 80_000);
    const q =
      'SELECT pg_is_in_recovery() AS replica, (SELECT count(*) FROM items WHERE user_id = $1)::int AS n';
    const onShard0 = (t: string | undefined) => parseWriteToken(t).get(0);
    const hold = await holdReplay(h, 0, rendered.database);
    const session = sdk.db!.session();
    let later = session;
    expect(session.token).toBeUndefined();
    try {
      await session.write(key, 'INSERT INTO items VALUES ($1, 1)', [key]);
      const written = onShard0(session.token);
      expect(written).toBeDefined();
      // The control: a read that does not carry the session is served stale by the replica.
      expect(await countOnReplica(key)).toEqual({ replica: true, n: 0 });
      // The session's read goes to the primary, which has the write.
      expect((await session.read(key, q, [key])).rows[0]).toEqual({ replica: false, n: 1 });
      // The token carries the guarantee to another request: a session rebuilt from the string.
      later = sdk.db!.session(session.token);
      expect((await later.read(key, q, [key])).rows[0]).toEqual({ replica: false, n: 1 });
      // A transaction's commit counts too, and moves the token forward.
      await later.tx(key, (t) => t.query('UPDATE items SET n = 2 WHERE user_id = $1', [key]));
      expect(onShard0(later.token)! > written!).toBe(true);
      expect(
        (
          await later.read(
            key,
            'SELECT pg_is_in_recovery() AS replica, n FROM items WHERE user_id = $1',
            [key],
          )
        ).rows[0],
      ).toEqual({ replica: false, n: 2 });
      // The position is per shard: shard 1's replica, not held, still serves this session.
      await sdk.db!.write(other, 'INSERT INTO items VALUES ($1, 1)', [other]);
      // (A replica slow to accept a connection is skipped for the primary: wait for its answer.)
      const onOther = await eventually("shard 1's replica to serve the session", async () => {
        const r = (await later.read<{ replica: boolean; n: number }>(other, q, [other])).rows[0];
        return r?.replica && r.n === 1 ? r : undefined;
      });
      expect(onOther).toEqual({ replica: true, n: 1 });
      // Replay was held all along: the reads above met a replica that lacked the write.
      expect(await hold.replayed(formatLsn(written!))).toBe(false);
    } finally {
      await hold.release();
    }
    // Replay resumed: once the replica has the session's last write it serves the session
    // again, with that write.
    const back = await eventually('the replica to serve the session again', async () => {
      const r = (
        await later.read<{ replica: boolean; n: number }>(
          key,
          'SELECT pg_is_in_recovery() AS replica, n FROM items WHERE user_id = $1',
          [key],
        )
      ).rows[0];
      return r?.replica ? r : undefined;
    });
    expect(back).toEqual({ replica: true, n: 2 });
  });

  it('commits a transaction, and rolls it back when the body throws', async () => {
    const key = keyOn(rendered, 1, 40_000);
    await sdk.db!.tx(key, async (t) => {
      await t.query('INSERT INTO items VALUES ($1, 1)', [key]);
      await t.query('UPDATE items SET n = n + 1 WHERE user_id = $1', [key]);
    });
    await expect(
      sdk.db!.tx(key, async (t) => {
        await t.query('UPDATE items SET n = 100 WHERE user_id = $1', [key]);
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    const r = await sdk.db!.read<{ n: number }>(
      key,
      'SELECT n FROM items WHERE user_id = $1',
      [key],
      {
        primary: true,
      },
    );
    expect(r.rows[0]?.n).toBe(2);
  });

  it('a write the server refuses (here a unique violation; the fence is another) keeps its pooled connection', async () => {
    const key = keyOn(rendered, 0, 50_000);
    await sdk.db!.write(key, 'INSERT INTO items VALUES ($1, 1)', [key]);
    const pids = new Set<number>();
    for (let i = 0; i < 10; i++) {
      await expect(
        sdk.db!.write(key, 'INSERT INTO items VALUES ($1, 1)', [key]),
      ).rejects.toMatchObject({ code: '23505' });
      // One caller at a time and pg-pool hands out the last client back: the same server
      // process each time, unless the refusal cost the connection.
      const r = await sdk.db!.write<{ pid: number }>(key, 'SELECT pg_backend_pid() AS pid');
      pids.add(r.rows[0]!.pid);
    }
    expect(pids.size).toBe(1);
  });

  it('follows the shard map file live: a new version is used, an older one and a bad one are refused', async () => {
    const v = rendered.version;
    const key1 = keyOn(rendered, 1, 50_000);
    // Shard 1's primary Service gets a new address (a second stand-in for the same Service).
    const moved = await proxies.add('shop-db-1', '127.0.1.22', port);
    publish(loopbackMap({ version: v + 1 }, '127.0.1.22'));
    await eventually('the running client to take map v+1', async () =>
      sdk.db!.shardMap.version === v + 1 ? true : undefined,
    );
    expect(sdk.db!.route(key1).shard.primary).toBe('127.0.1.22');
    await sdk.db!.write(key1, 'INSERT INTO items VALUES ($1, 1)', [key1]);
    expect(moved.connections).toBeGreaterThan(0);

    // An older version is refused: the client keeps routing with v+1.
    publish(loopbackMap({ version: v }));
    await eventually('the refusal', async () =>
      sdk.db!.shardMap.version === v + 1 && refusals.at(-1)?.message.includes('older')
        ? true
        : undefined,
    );

    // A map giving shard 1's buckets to a shard it does not list: those keys get a clear
    // error, never another shard; keys on shard 0 still work.
    const dangling = loopbackMap({
      version: v + 2,
      ranges: rendered.ranges.map((r) => (r.shard === 1 ? { ...r, shard: 9 } : r)),
    });
    publish(dangling);
    await eventually('map v+2', async () =>
      sdk.db!.shardMap.version === v + 2 ? true : undefined,
    );
    await expect(sdk.db!.read(key1, 'SELECT 1')).rejects.toThrow(ShardRoutingError);
    await expect(sdk.db!.read(key1, 'SELECT 1')).rejects.toThrow(/unknown shard 9 in shard map v/);
    const key0 = keyOn(rendered, 0, 60_000);
    expect((await sdk.db!.read(key0, 'SELECT 1 AS one')).rows[0]).toEqual({ one: 1 });

    publish(loopbackMap({ version: v + 3 }));
    await eventually('map v+3', async () =>
      sdk.db!.shardMap.version === v + 3 ? true : undefined,
    );
    expect((await sdk.db!.read(key1, 'SELECT 1 AS one')).rows[0]).toEqual({ one: 1 });
  });

  it('with every replica stopped, reads are served by the primary', async () => {
    const replicas = h.members.filter((m) => m !== h.primaryOf(m.shard));
    expect(replicas).toHaveLength(2);
    for (const m of replicas) h.killMember(m);
    for (const shard of [0, 1]) {
      const key = keyOn(rendered, shard, 70_000);
      await sdk.db!.write(key, 'INSERT INTO items VALUES ($1, 7)', [key]);
      const r = await sdk.db!.read<{ replica: boolean; n: number }>(
        key,
        'SELECT pg_is_in_recovery() AS replica, n FROM items WHERE user_id = $1',
        [key],
      );
      expect(r.rows[0]).toEqual({ replica: false, n: 7 });
    }
  });
});
