// A bucket move on real Postgres 17 (the postgres-patroni image), with the statements the
// operator will run (operator/tiers/database/resharding-sql.ts): the schema copied by
// pg_dump, a publication whose row filter is the moving buckets, a subscription on the
// target, a writer busy on the source the whole time (moving and staying keys, inserts,
// updates, deletes), then the cutover: the fence, the source's LSN, the slot caught up to
// it, the replication objects dropped, the moved rows deleted from the source. Every
// acknowledged row of the moving buckets is on the target exactly once, none of the others
// is, and the source keeps exactly the others.
import { randomBytes, randomInt } from 'node:crypto';
import { chownSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../devcluster/testing.ts';
import {
  BUCKETS,
  bucketMoves,
  bucketOf,
  bucketSql,
  makeShardMap,
  toRanges,
} from '../../sdk/src/contract/index.ts';
import { Database } from '../../sdk/src/db/database.ts';
import { BucketMovingError } from '../../sdk/src/db/errors.ts';
import { LiveShardMap } from '../../sdk/src/db/live-shard-map.ts';
import {
  FENCE_SQLSTATE,
  beforeSchemaRestoreSql,
  bucketExpression,
  countInMoveSql,
  createPublicationSql,
  createSubscriptionSql,
  currentLsnSql,
  deleteMovedBatchSql,
  dropFenceTriggersSql,
  dropPublicationSql,
  dropSubscriptionSql,
  fenceFunctionSql,
  fenceSql,
  fenceTriggerName,
  grantCopySql,
  guardSql,
  liftFencesSql,
  schemaDumpArgs,
  shardedTablesSql,
  slotCaughtUpSql,
  tablesNotReadySql,
  userTablesSql,
} from '../../operator/tiers/database/resharding-sql.ts';
import type { MoveSql, MovedTable } from '../../operator/tiers/database/resharding-sql.ts';
import { ENGINE_UID } from './containers.ts';
import {
  APP_ROLE as DB,
  KEY,
  REPLICATION_ROLE,
  SUPER_PASSWORD,
  copySchema,
  randomKey,
  replicationConninfo,
  startPostgres,
} from './resharding-harness.ts';
import type { Server } from './resharding-harness.ts';

type Row = string; // "table|key|seq|payload"

describe('resharding: moving buckets between two real Postgres 17 primaries', () => {
  let dir = '';
  let source: Server;
  let target: Server;
  // Two shards growing to three: shard 0's share for the new shard, a range with both ends
  // inside the bucket space (an off-by-one at either end shows).
  const moves = bucketMoves(2, 3).filter((m) => m.source === 0);
  let move: MoveSql;
  const inMove = (key: string | bigint): boolean =>
    moves.some((m) => bucketOf(key) >= m.from && bucketOf(key) < m.to);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pg-reshard-'));
    chownSync(dir, ENGINE_UID, ENGINE_UID);
    [source, target] = await Promise.all([
      startPostgres(dir, 'source'),
      startPostgres(dir, 'target'),
    ]);
    // The app's schema, on the source only: two sharded tables (a text and a bigint key),
    // one of them referencing nothing, one with an identity column.
    await source.client.query(`SET ROLE ${DB}`);
    await source.client.query(
      `CREATE TABLE items (${KEY} text NOT NULL, seq int NOT NULL, payload text NOT NULL, PRIMARY KEY (${KEY}, seq))`,
    );
    await source.client.query(
      `CREATE TABLE visits (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ${KEY} bigint NOT NULL, n int NOT NULL)`,
    );
    await source.client.query('RESET ROLE');
  });

  afterAll(async () => {
    await source?.client.end().catch(() => undefined);
    await target?.client.end().catch(() => undefined);
    await source?.container.remove();
    await target?.container.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('spells the bucket in the row filter exactly as scalable_bucket() and bucketOf do', async () => {
    const keys = Array.from({ length: 5000 }, randomKey);
    keys.push('', '\\', '\\x41', "o'hara", 'é', '日本', '🚀');
    const { rows } = await source.client.query<{ f: number; b: number }>(
      `SELECT ${bucketExpression('k')} AS f, scalable_bucket(k) AS b FROM unnest($1::text[]) WITH ORDINALITY AS t(k, i) ORDER BY i`,
      [keys],
    );
    expect(rows.filter((r, i) => r.f !== r.b || r.f !== bucketOf(keys[i]!))).toEqual([]);
    const ints = Array.from({ length: 2000 }, () => randomBytes(8).readBigInt64BE(0));
    const { rows: irows } = await source.client.query<{ f: number; b: number }>(
      `SELECT ${bucketExpression('textin(int8out(k))')} AS f, ${bucketSql('k')} AS b FROM unnest($1::bigint[]) WITH ORDINALITY AS t(k, i) ORDER BY i`,
      [ints.map(String)],
    );
    expect(irows.filter((r, i) => r.f !== r.b || r.f !== bucketOf(ints[i]!))).toEqual([]);
  });

  it('copies the moving buckets while writes go on, and cuts over with none lost or doubled', async () => {
    const { rows: tables } = await source.client.query<MovedTable>(shardedTablesSql(KEY));
    expect(tables.map((t) => `${t.name}:${t.keyType}`)).toEqual(['items:text', 'visits:bigint']);
    move = { id: 'v3_s0_s2', ranges: moves.map((m) => ({ from: m.from, to: m.to })), tables };
    expect(moves.map((m) => [m.source, m.target])).toEqual([[0, 2]]);
    expect(moves[0]!.from).toBeGreaterThan(0);
    expect(moves[0]!.to).toBeLessThan(1024);

    // What the source acknowledged: the expected final state, row by row.
    const items = new Map<string, string>(); // key|seq -> payload
    const visits = new Map<string, string>(); // id -> key|n
    // Random keys, and keys of the buckets on either side of each end of the range (an
    // off-by-one there must show).
    const edges = moves.flatMap((m) => [m.from - 1, m.from, m.to - 1, m.to]);
    const keyIn = <K>(bucket: number, make: (i: number) => K): K => {
      for (let i = 0; ; i++) if (bucketOf(make(i) as string | bigint) === bucket) return make(i);
    };
    const textKeys = [
      ...Array.from({ length: 400 }, (_, i) => `customer-${i}-${randomKey()}`),
      ...edges.map((b) => keyIn(b, (i) => `edge-${b}-${i}`)),
    ];
    const intKeys = [
      ...Array.from({ length: 200 }, () => BigInt(randomInt(1, 2 ** 47))),
      ...edges.map((b) => keyIn(b, (i) => BigInt(b) * 1_000_000n + BigInt(i))),
    ];
    let seq = 0;
    let movingAcked = 0; // acknowledged writes of the moving buckets
    const write = async (c: pg.Client): Promise<'ok' | 'fenced'> => {
      const key = textKeys[randomInt(0, textKeys.length)]!;
      let used: string | bigint = key;
      const op = randomInt(0, 10);
      try {
        if (op < 6) {
          const s = ++seq;
          const payload = randomBytes(6).toString('hex');
          await c.query('INSERT INTO items VALUES ($1, $2, $3)', [key, s, payload]);
          items.set(`${key}|${s}`, payload);
        } else if (op < 8) {
          const ik = intKeys[randomInt(0, intKeys.length)]!;
          used = ik;
          const n = randomInt(0, 1000);
          const { rows } = await c.query<{ id: string }>(
            'INSERT INTO visits (customer_id, n) VALUES ($1, $2) RETURNING id',
            [String(ik), n],
          );
          visits.set(rows[0]!.id, `${ik}|${n}`);
        } else {
          // Update or delete an acknowledged row of this key, if it has one.
          const mine = [...items.keys()].filter((k) => k.startsWith(`${key}|`));
          const row = mine[randomInt(0, Math.max(1, mine.length))];
          if (!row) return 'ok';
          const s = Number(row.slice(key.length + 1));
          if (op === 8) {
            const payload = randomBytes(6).toString('hex');
            await c.query('UPDATE items SET payload = $3 WHERE customer_id = $1 AND seq = $2', [
              key,
              s,
              payload,
            ]);
            items.set(row, payload);
          } else {
            await c.query('DELETE FROM items WHERE customer_id = $1 AND seq = $2', [key, s]);
            items.delete(row);
          }
        }
        if (inMove(used)) movingAcked++;
        return 'ok';
      } catch (e) {
        if ((e as { code?: string }).code === FENCE_SQLSTATE) return 'fenced';
        throw e;
      }
    };
    const writer = new pg.Client({
      host: '127.0.0.1',
      port: source.port,
      user: DB,
      password: SUPER_PASSWORD,
      database: DB,
    });
    await writer.connect();
    for (const [i, key] of textKeys.slice(-edges.length).entries()) {
      await writer.query('INSERT INTO items VALUES ($1, $2, $3)', [key, ++seq, 'edge']);
      items.set(`${key}|${seq}`, 'edge');
      const ik = intKeys[intKeys.length - edges.length + i]!;
      const { rows } = await writer.query<{ id: string }>(
        'INSERT INTO visits (customer_id, n) VALUES ($1, 0) RETURNING id',
        [String(ik)],
      );
      visits.set(rows[0]!.id, `${ik}|0`);
    }
    for (let i = 0; i < 3000; i++) await write(writer);

    // Writes go on from here to the end of the cutover.
    let stop = false;
    let fencedWrites = 0;
    let writesDuringCopy = 0;
    let copying = false;
    const writing = (async () => {
      while (!stop) {
        if ((await write(writer)) === 'fenced') fencedWrites++;
        else if (copying) writesDuringCopy++;
      }
    })();

    try {
      // Schema copy: the target is empty; pg_dump of the source, restored with psql in one
      // transaction with the bucket function's drop before it and the source's fences' after.
      expect((await target.client.query(userTablesSql())).rows).toEqual([]);
      await copySchema(source, target, DB, {
        dumpArgs: schemaDumpArgs(DB),
        before: beforeSchemaRestoreSql(),
        after: [dropFenceTriggersSql()],
      });
      expect((await target.client.query(userTablesSql())).rows).toEqual([
        { schema: 'public', name: 'items' },
        { schema: 'public', name: 'visits' },
      ]);

      // Publication on the source (the moving buckets only), subscription on the target.
      await source.client.query(grantCopySql(REPLICATION_ROLE));
      await source.client.query(fenceFunctionSql());
      await source.client.query(createPublicationSql(move));
      copying = true;
      await target.client.query(createSubscriptionSql(move, replicationConninfo(source, DB)));
      await eventually(
        'the initial copy of every table done (state r)',
        async () => {
          const { rows } = await target.client.query<{ n: number }>(tablesNotReadySql(move));
          return rows[0]?.n === 0 ? true : undefined;
        },
        120_000,
        250,
      );
      // Writes kept going while the rows were copied and streamed.
      const before = writesDuringCopy;
      await eventually('more writes while streaming', async () =>
        writesDuringCopy > before + 200 ? true : undefined,
      );

      // The target falls behind: a lock on its table stops the apply worker while the writer
      // goes on, so the fence below finds writes the target has not applied yet.
      const blocker = new pg.Client({
        host: '127.0.0.1',
        port: target.port,
        user: 'postgres',
        password: SUPER_PASSWORD,
        database: DB,
      });
      await blocker.connect();
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE items IN SHARE MODE');
      const ackedBefore = movingAcked;
      await eventually('writes the target has not applied', async () =>
        movingAcked > ackedBefore + 50 ? true : undefined,
      );

      // Cutover: fence the moving buckets, then wait until the target has the source's WAL
      // up to the fence.
      for (const s of fenceSql(move)) await source.client.query(s);
      const lsn = (await source.client.query<{ lsn: string }>(currentLsnSql())).rows[0]!.lsn;
      let behind = false;
      await eventually(
        `the slot confirmed the source up to ${lsn}`,
        async () => {
          const { rows } = await source.client.query<{ done: boolean }>(slotCaughtUpSql(move, lsn));
          if (rows[0]?.done) return true;
          // Seen behind the fence: let the apply worker go on.
          if (!behind) await blocker.query('COMMIT');
          behind = true;
          return undefined;
        },
        120_000,
        100,
      );
      expect(behind).toBe(true);
      // Nothing of the moving buckets can change on the source any more: the stream's job is
      // done (the operator flips the map next), and the subscription goes, its slot with it.
      await target.client.query(dropSubscriptionSql(move));
      if (!behind) await blocker.query('COMMIT');
      await blocker.end();
      // The fence refuses writes to a moving bucket, and only those.
      await eventually('a write refused by the fence', async () =>
        fencedWrites > 0 ? true : undefined,
      );
      const moving = textKeys.find((k) => inMove(k))!;
      await expect(
        writer.query('INSERT INTO items VALUES ($1, -1, $2)', [moving, 'x']),
      ).rejects.toMatchObject({ code: FENCE_SQLSTATE });
    } finally {
      stop = true;
      await writing;
    }
    await writer.end();

    await source.client.query(dropPublicationSql(move));
    expect((await source.client.query('SELECT slot_name FROM pg_replication_slots')).rows).toEqual(
      [],
    );

    const itemRows = (rows: { customer_id: string; seq: number; payload: string }[]): Row[] =>
      rows.map((r) => `items|${r.customer_id}|${r.seq}|${r.payload}`).sort();
    const visitRows = (rows: { id: string; customer_id: string; n: number }[]): Row[] =>
      rows.map((r) => `visits|${r.id}|${r.customer_id}|${r.n}`).sort();
    const expected = (moved: boolean): Row[] =>
      [
        ...[...items]
          .filter(([k]) => inMove(k.slice(0, k.lastIndexOf('|'))) === moved)
          .map(([k, p]) => `items|${k}|${p}`),
        ...[...visits]
          .filter(([, v]) => inMove(BigInt(v.split('|')[0]!)) === moved)
          .map(([id, v]) => `visits|${id}|${v}`),
      ].sort();
    const rowsOf = async (c: pg.Client): Promise<Row[]> =>
      [
        ...itemRows((await c.query('SELECT customer_id, seq, payload FROM items')).rows),
        ...visitRows((await c.query('SELECT id::text, customer_id::text, n FROM visits')).rows),
      ].sort();

    // The target: every acknowledged row of the moving buckets, once; nothing else.
    const onTarget = await rowsOf(target.client);
    expect(new Set(onTarget).size).toBe(onTarget.length);
    const wantMoved = expected(true);
    expect(wantMoved.length).toBeGreaterThan(300);
    expect(onTarget.length).toBe(wantMoved.length);
    expect(onTarget).toEqual(wantMoved);

    // Cleanup on the source, batch by batch, in reverse table order.
    for (const t of [...move.tables].reverse())
      for (;;) {
        let deleted = 0;
        for (const s of deleteMovedBatchSql(move, t, 500)) {
          const r = await source.client.query(s);
          if (r.command === 'DELETE') deleted = r.rowCount ?? 0;
        }
        if (deleted < 500) break;
      }
    for (const t of move.tables)
      expect((await source.client.query(countInMoveSql(move, t))).rows[0]).toEqual({ n: '0' });
    expect(await rowsOf(source.client)).toEqual(expected(false));
    // The fence stays: a writer with the old map still cannot write a moved bucket there.
    await expect(
      source.client.query(`INSERT INTO items VALUES ($1, -2, 'late')`, [
        textKeys.find((k) => inMove(k))!,
      ]),
    ).rejects.toMatchObject({ code: FENCE_SQLSTATE });
  });

  it("the SDK's writes to a fenced bucket wait for the map flip and land on the new owner", async () => {
    // The app's view: shard 0 is the source, shard 1 the target; v1 routes every bucket to
    // the source, v2 the moving ones to the target. The fence is on the source's items.
    const sdkMove: MoveSql = {
      id: 'sdk',
      ranges: moves.map((m) => ({ from: m.from, to: m.to })),
      tables: [{ schema: 'public', name: 'items', keyColumn: KEY, keyType: 'text' }],
    };
    await target.client.query(
      `CREATE TABLE IF NOT EXISTS items (${KEY} text NOT NULL, seq int NOT NULL, payload text NOT NULL, PRIMARY KEY (${KEY}, seq))`,
    );
    await source.client.query(fenceFunctionSql());
    for (const s of fenceSql(sdkMove)) await source.client.query(s);
    const shards = [source, target].map((srv, index) => ({
      index,
      primary: '127.0.0.1',
      replicas: '127.0.0.1',
      port: srv.port,
    }));
    const mapOf = (version: number, moved: boolean) =>
      JSON.stringify({
        ...makeShardMap({ version, shards, database: DB }),
        ranges: toRanges(
          Array.from({ length: BUCKETS }, (_, b) =>
            moved && moves.some((m) => b >= m.from && b < m.to) ? 1 : 0,
          ),
        ),
      });
    const publish = (file: string, text: string) => {
      writeFileSync(`${file}.tmp`, text);
      renameSync(`${file}.tmp`, file);
    };
    const keys = Array.from({ length: 400 }, (_, i) => `sdk-${i}`).filter((k) => inMove(k));
    const [k1, k2, k3] = keys;
    if (!k1 || !k2 || !k3) throw new Error('no moving keys');
    const rowsFor = async (c: pg.Client, k: string) =>
      (await c.query<{ payload: string }>(`SELECT payload FROM items WHERE ${KEY} = $1`, [k])).rows;
    const connection = { database: DB, user: 'postgres', password: SUPER_PASSWORD, poolMax: 2 };

    // Flipped within the wait: the write and the transaction land on the target, once.
    const file = join(dir, 'shard-map.json');
    publish(file, mapOf(1, false));
    const map = new LiveShardMap(file, { pollMs: 100 });
    const refused: string[] = [];
    const db = new Database(map, {
      ...connection,
      moveWaitMs: 300_000,
      onError: (where, e) => void refused.push(`${where}: ${(e as { code?: string }).code}`),
    });
    const settled: string[] = [];
    try {
      const write = db
        .write(k1, `INSERT INTO items VALUES ($1, 1, 'write')`, [k1])
        .finally(() => settled.push('write'));
      const tx = db
        .tx(k2, async (q) => {
          await q.query(`INSERT INTO items VALUES ($1, 1, 'tx')`, [k2]);
          return q.query(`UPDATE items SET payload = 'tx2' WHERE ${KEY} = $1`, [k2]);
        })
        .finally(() => settled.push('tx'));
      await eventually('both refused by the fence', async () =>
        refused.length >= 2 ? true : undefined,
      );
      expect(refused.every((r) => r.endsWith(`(map v1, shard 0): ${FENCE_SQLSTATE}`))).toBe(true);
      expect(settled).toEqual([]); // waiting for the flip, not failed
      expect(await rowsFor(source.client, k1)).toEqual([]);
      publish(file, mapOf(2, true));
      await Promise.all([write, tx]);
      expect(db.shardMap.version).toBe(2);
      expect(await rowsFor(target.client, k1)).toEqual([{ payload: 'write' }]);
      expect(await rowsFor(target.client, k2)).toEqual([{ payload: 'tx2' }]);
      expect(await rowsFor(source.client, k1)).toEqual([]);
      expect(await rowsFor(source.client, k2)).toEqual([]);
    } finally {
      await db.close();
      map.close();
    }

    // No flip within the wait: a BucketMovingError naming the key and bucket, nothing written.
    const still = join(dir, 'shard-map-v1.json');
    publish(still, mapOf(1, false));
    const oldMap = new LiveShardMap(still, { pollMs: 100 });
    const late = new Database(oldMap, { ...connection, moveWaitMs: 1500 });
    try {
      const err = await late.write(k3, `INSERT INTO items VALUES ($1, 1, 'late')`, [k3]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(BucketMovingError);
      expect(err).toMatchObject({ key: k3, bucket: bucketOf(k3), mapVersion: 1 });
      expect((err as Error).cause).toMatchObject({ code: FENCE_SQLSTATE });
      expect(await rowsFor(source.client, k3)).toEqual([]);
      expect(await rowsFor(target.client, k3)).toEqual([]);
    } finally {
      await late.close();
      oldMap.close();
    }

    // A fence naming the next owner: the write goes there at once, is refused by the target's
    // guard while the copy would still be catching up, and lands on the target as soon as the
    // guard is lifted, with the app's map still at v1 (no kubelet to wait for).
    const named: MoveSql = { ...sdkMove, id: 'sdkr' };
    await source.client.query(`DROP TRIGGER ${fenceTriggerName(sdkMove)} ON items`);
    for (const st of fenceSql(named, 2000, 1)) await source.client.query(st);
    await target.client.query(fenceFunctionSql());
    for (const st of guardSql(named)) await target.client.query(st);
    const v1 = join(dir, 'shard-map-redirect.json');
    publish(v1, mapOf(1, false));
    const v1Map = new LiveShardMap(v1, { pollMs: 100 });
    const tries: string[] = [];
    const early = new Database(v1Map, {
      ...connection,
      moveWaitMs: 300_000,
      onError: (where) => void tries.push(where),
    });
    try {
      let done = false;
      const write = early
        .write(k3, `INSERT INTO items VALUES ($1, 1, 'early')`, [k3])
        .finally(() => (done = true));
      await eventually('the write tried on the target, refused by its guard', async () =>
        tries.filter((t) => t.endsWith('(map v1, shard 1)')).length >= 2 ? true : undefined,
      );
      expect(tries[0]).toMatch(/\(map v1, shard 0\)$/);
      expect(done).toBe(false);
      expect(await rowsFor(target.client, k3)).toEqual([]);
      for (const st of liftFencesSql(named)) await target.client.query(st);
      await write;
      expect(early.shardMap.version).toBe(1);
      expect(await rowsFor(target.client, k3)).toEqual([{ payload: 'early' }]);
      expect(await rowsFor(source.client, k3)).toEqual([]);
    } finally {
      await early.close();
      v1Map.close();
    }
  }, 600_000);
});
