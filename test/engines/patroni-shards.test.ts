// Two shards, each its own Patroni cluster (primary + 1 replica) under one ServiceAccount
// and Role: each elects its own primary, each primary Service selects only its shard's
// primary, and keys routed with the published shard map land on the shard whose bucket
// ranges contain the bucket Postgres computes for them in SQL.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseShardMap, shardFor } from '../../sdk/src/contract/index.ts';
import type { ShardMap } from '../../sdk/src/contract/index.ts';
import { REPLICA_ROLE, appDatabaseName } from '../../operator/tiers/database/names.ts';
import {
  DCS_CONFIG_ANNOTATION,
  dcsConfigMapName,
  dcsConfigUpdate,
} from '../../operator/tiers/database/patroni-config.ts';
import { PASSWORDS, appModel, eventually, sql, startDatabase, sslOf } from './patroni-harness.ts';
import type { Harness, Member } from './patroni-harness.ts';

describe('Patroni shards: two Patroni clusters, keys routed by the shard map', () => {
  let h: Harness;
  let map: ShardMap;

  beforeAll(async () => {
    h = await startDatabase('pg-shards', {
      shards: 2,
      replicasPerShard: 1,
      shardKey: 'customer_id',
    });
    const cm = JSON.parse(
      h.kubectl(['-n', h.ns, 'get', 'configmap', 'shop-shard-map', '-o', 'json']),
    ) as {
      data: Record<string, string>;
    };
    map = parseShardMap(cm.data['shard-map.json'] ?? '');
  });

  afterAll(async ({}, suite) => {
    await h?.stop(suite);
  });

  it('elects a primary per shard, and each primary Service selects only its own', async () => {
    const primaries = await eventually(
      'a primary and a replica in each shard',
      async () => {
        const p0 = h.primaryOf(0);
        const p1 = h.primaryOf(1);
        const replicas = h
          .pods()
          .filter((p) => p.metadata.labels?.['scalable.dev/role'] === REPLICA_ROLE).length;
        return p0 && p1 && replicas === 2 ? [p0, p1] : undefined;
      },
      120_000,
      500,
    );
    expect(primaries.map((p) => p.shard)).toEqual([0, 1]);
    for (const [i, p] of primaries.entries()) {
      await eventually(
        `Service shop-db-${i} on ${p.name}`,
        async () =>
          JSON.stringify(h.endpointsOf(`shop-db-${i}`)) === JSON.stringify([p.name])
            ? true
            : undefined,
        30_000,
        500,
      );
      const replica = h.members.find((m) => m.shard === i && m !== p);
      expect(h.endpointsOf(`shop-db-${i}-ro`)).toEqual([replica?.name]);
    }
  });

  it('routes 2,000 keys to the shard whose buckets hold them, as computed in SQL', async () => {
    const db = appDatabaseName(h.app);
    const clients = new Map<number, pg.Client>();
    const primaryOf = (shard: number): Member => {
      const p = h.primaryOf(shard);
      if (!p) throw new Error(`no primary in shard ${shard}`);
      return p;
    };
    try {
      for (const s of map.shards) {
        const c = new pg.Client({
          host: '127.0.0.1',
          port: primaryOf(s.index).pgPort,
          ...sslOf(primaryOf(s.index).pgPort),
          user: db,
          password: PASSWORDS.app,
          database: db,
        });
        await c.connect();
        await c.query('CREATE TABLE orders (customer_id text, n int)');
        clients.set(s.index, c);
      }
      const keys = Array.from({ length: 1000 }, (_, i) => `customer-${i}`);
      const ids = Array.from({ length: 1000 }, (_, i) => BigInt(i) * 7919n - 3_000_000n);
      const perShard = new Map<number, number>();
      for (const key of [...keys, ...ids]) {
        const shard = shardFor(map, key).index;
        await clients.get(shard)?.query('INSERT INTO orders VALUES ($1, 1)', [String(key)]);
        perShard.set(shard, (perShard.get(shard) ?? 0) + 1);
      }
      // Half the buckets each: both shards get a fair share.
      for (const n of perShard.values()) expect(n).toBeGreaterThan(800);

      for (const s of map.shards) {
        const mine = map.ranges.filter((r) => r.shard === s.index);
        const inRange = mine
          .map(
            (r) =>
              `(scalable_bucket(customer_id) >= ${r.from} AND scalable_bucket(customer_id) < ${r.to})`,
          )
          .join(' OR ');
        const { rows } = await (clients.get(s.index) as pg.Client).query<{
          total: string;
          misplaced: string;
        }>(
          `SELECT count(*) AS total, count(*) FILTER (WHERE NOT (${inRange})) AS misplaced FROM orders`,
        );
        expect(Number(rows[0]?.total)).toBe(perShard.get(s.index));
        expect(Number(rows[0]?.misplaced)).toBe(0);
      }
    } finally {
      await Promise.all([...clients.values()].map((c) => c.end()));
    }
  });

  it('applies spec.database.synchronous to running clusters through their DCS config', async () => {
    // What the reconciler does when the spec changes after bootstrap.
    const synced = appModel(h.ns, {
      shards: 2,
      replicasPerShard: 1,
      shardKey: 'customer_id',
      synchronous: true,
    });
    for (const shard of [0, 1]) {
      const name = dcsConfigMapName(synced, shard);
      const cm = JSON.parse(h.kubectl(['-n', h.ns, 'get', 'configmap', name, '-o', 'json'])) as {
        metadata: { annotations?: Record<string, string> };
      };
      const next = dcsConfigUpdate(synced, shard, cm.metadata.annotations?.[DCS_CONFIG_ANNOTATION]);
      expect(next, `shard ${shard} starts asynchronous`).toBeDefined();
      h.kubectl([
        '-n',
        h.ns,
        'annotate',
        '--overwrite',
        'configmap',
        name,
        `${DCS_CONFIG_ANNOTATION}=${next ?? ''}`,
      ]);
    }
    for (const shard of [0, 1]) {
      await eventually(
        `a synchronous standby in shard ${shard}`,
        async () => {
          const p = h.primaryOf(shard);
          const rows =
            p &&
            (await sql<{ s: string }>(p.pgPort, 'SELECT sync_state AS s FROM pg_stat_replication'));
          return rows && rows.some((r) => r.s === 'sync') ? true : undefined;
        },
        60_000,
        500,
      );
      const live = JSON.parse(
        h.kubectl(['-n', h.ns, 'get', 'configmap', dcsConfigMapName(synced, shard), '-o', 'json']),
      ) as {
        metadata: { annotations?: Record<string, string> };
      };
      expect(
        dcsConfigUpdate(synced, shard, live.metadata.annotations?.[DCS_CONFIG_ANNOTATION]),
      ).toBeUndefined();
    }
  });
});
