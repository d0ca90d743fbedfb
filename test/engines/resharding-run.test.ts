// The resharding runner (operator/tiers/database/resharding-run.ts) on two real Postgres 17
// primaries from our image: 1 -> 2 shards driven ONLY by repeated runner steps, while an app
// writes and reads through the SDK (a live shard map file, the SB001 retry) the whole time.
// Every acknowledged write is on the owner its bucket has in the final map, exactly once,
// and nowhere else; every key reads back throughout. Then the same with the operator killed
// right after it wrote each new phase (and once between the fence and recording its LSN),
// a new runner built from the persisted record alone going on; then an abort in CatchUp and
// one during the initial copy, each leaving the source and the map as they were; a move
// of tables with identity or serial columns refused at Prepare with both shards untouched;
// a move refused while a table without the shard key holds rows;
// and a shrink back to 1 shard after the grow, under load (shard 0's old fence on the
// returning buckets lifted before the flip, or every write there would be refused for good).
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { chownSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUCKETS, bucketOf, parseShardMap } from '../../sdk/src/contract/index.ts';
import { Database } from '../../sdk/src/db/database.ts';
import { LiveShardMap } from '../../sdk/src/db/live-shard-map.ts';
import { FENCE_SQLSTATE, fencedTablesSql } from '../../operator/tiers/database/resharding-sql.ts';
import { RESHARD_PHASES, planMoves } from '../../operator/tiers/database/resharding.ts';
import type { ReshardSpec, ReshardingStatus } from '../../operator/tiers/database/resharding.ts';
import { ReshardActionError, ReshardRunner } from '../../operator/tiers/database/resharding-run.ts';
import type {
  ReshardEnv,
  RunOptions,
  StepResult,
} from '../../operator/tiers/database/resharding-run.ts';
import type { PgShardSql } from '../../operator/tiers/database/shard-sql-pg.ts';
import type { Assignment } from '../../operator/tiers/database/shard-authority.ts';
import { ENGINE_UID } from './containers.ts';
import {
  APP_ROLE,
  KEY,
  SUPER_PASSWORD,
  copySchema,
  createAppDatabase,
  execConninfo,
  execCopySchema,
  execSql,
  loopbackMapText,
  randomKey,
  replicationConninfo,
  shardSql,
  startPostgres,
} from './resharding-harness.ts';
import type { Server } from './resharding-harness.ts';

const OPTIONS: RunOptions = { fenceLockTimeoutMs: 2000, deleteBatch: 200 };
const PHASES = RESHARD_PHASES;

/** The operator process dying at a chosen point (thrown by persist). */
class Crash extends Error {}
const isCrash = (e: unknown): boolean =>
  e instanceof Crash || (e instanceof ReshardActionError && e.cause instanceof Crash);
/** A fence that waited longer than its lock_timeout: the next step fences again. */
const lockTimedOut = (e: unknown): boolean =>
  e instanceof ReshardActionError && (e.cause as { code?: string })?.code === '55P03';

type Row = string;

/** One app: its own database on both servers, its shard map file, its SDK client. */
interface App {
  readonly name: string;
  readonly from: Assignment;
  record: Assignment;
  persisted: ReshardingStatus | undefined;
  /** Every record persist was given, in order (a crash's too). */
  readonly writes: (ReshardingStatus | undefined)[];
  readonly mapFile: string;
  readonly db: Database;
  readonly map: LiveShardMap;
  readonly sql: readonly PgShardSql[];
  readonly clients: readonly pg.Client[];
  readonly env: ReshardEnv;
  /** persist dies after writing each new phase, and once before a fence's LSN is written. */
  crashes: boolean;
  restarts: number;
  lsnCrash: boolean;
  /** Writes the fence refused (SB001), each retried by the SDK on the next map. */
  fenced: number;
  readonly ran: string[];
  readonly lockTimeouts: number[];
  /** What the SDK reported through onError, fence refusals aside. */
  readonly sdkErrors: string[];
  /**
   * A second app pod whose kubelet is late: its map file is updated only once it has read
   * for a while after the flip (a pod still on the old map), and Cleanup waits for it.
   */
  late?: {
    readonly db: Database;
    readonly map: LiveShardMap;
    readonly file: string;
    caughtUp: boolean;
  };
}

describe('resharding runner: 1 -> 2 shards on real Postgres 17 under an SDK workload', () => {
  let dir = '';
  let servers: Server[] = [];
  const apps: App[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pg-reshard-run-'));
    chownSync(dir, ENGINE_UID, ENGINE_UID);
    servers = await Promise.all([startPostgres(dir, 'shard0'), startPostgres(dir, 'shard1')]);
  });

  afterAll(async () => {
    for (const app of apps) {
      await app.db.close().catch(() => undefined);
      app.map.close();
      await app.late?.db.close().catch(() => undefined);
      app.late?.map.close();
      for (const s of app.sql) await s.end().catch(() => undefined);
      for (const c of app.clients) await c.end().catch(() => undefined);
    }
    for (const s of servers) {
      await s.client.end().catch(() => undefined);
      await s.container.remove();
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const mapText = (a: Assignment, database: string): string =>
    loopbackMapText(servers, a, database);

  /** The map apps read, as the runner sees the live ConfigMap. */
  const published = (file: string): Assignment => {
    const m = parseShardMap(readFileSync(file, 'utf8'));
    return { version: m.version, ranges: m.ranges };
  };

  /**
   * `exec`: the operator's own transport (reshard-env.ts): SQL through the helper inside the
   * server's container over its socket, the schema copy run in the target's container, the
   * subscription's password put in by the helper from the container's env.
   */
  async function openApp(name: string, version: number, exec = false, late = false): Promise<App> {
    const [src, dst] = await Promise.all(servers.map((s) => createAppDatabase(s, name)));
    if (!src || !dst) throw new Error('two servers');
    // The app's schema, on the source only: two sharded tables, a text and a bigint key.
    await src.query(`SET ROLE ${APP_ROLE}`);
    await src.query(
      `CREATE TABLE items (${KEY} text NOT NULL, seq int NOT NULL, payload text NOT NULL, PRIMARY KEY (${KEY}, seq))`,
    );
    await src.query(
      `CREATE TABLE visits (id uuid PRIMARY KEY, ${KEY} bigint NOT NULL, n int NOT NULL)`,
    );
    await src.query('RESET ROLE');
    const from: Assignment = { version, ranges: [{ from: 0, to: BUCKETS, shard: 0 }] };
    const mapDir = join(dir, name);
    mkdirSync(mapDir);
    const mapFile = join(mapDir, 'shard-map.json');
    writeFileSync(mapFile, mapText(from, name));
    const map = new LiveShardMap(mapFile, { pollMs: 100 });
    const errors: string[] = [];
    const db = new Database(map, {
      database: name,
      user: 'postgres',
      password: SUPER_PASSWORD,
      poolMax: 4,
      moveWaitMs: 300_000,
      onError: (where, e) => {
        if ((e as { code?: string }).code === FENCE_SQLSTATE) app.fenced++;
        else if (!where.startsWith('replica')) errors.push(`${where}: ${e.message}`);
      },
    });
    const sql = servers.map((s) => shardSql(s, name));
    const viaExec = servers.map((s) => execSql(s, name));
    const app: App = {
      name,
      from,
      record: from,
      persisted: undefined,
      writes: [],
      mapFile,
      db,
      map,
      sql,
      clients: [src, dst],
      crashes: false,
      restarts: 0,
      lsnCrash: false,
      fenced: 0,
      sdkErrors: errors,
      ran: [],
      lockTimeouts: [],
      env: {
        database: name,
        replicationRole: 'replicator',
        shard: (i) => {
          const s = exec ? viaExec[i] : sql[i];
          if (!s) throw new Error(`no shard ${i}`);
          return s;
        },
        sourceConninfo: (i) =>
          exec ? execConninfo(servers[i]!, name) : replicationConninfo(servers[i]!, name),
        copySchema: (req) =>
          (exec ? execCopySchema : copySchema)(
            servers[req.source]!,
            servers[req.target]!,
            name,
            req,
          ),
        maps: async () => ({
          record: app.record,
          published: published(mapFile),
          acknowledgedVersion: Math.min(
            db.shardMap.version,
            app.late?.db.shardMap.version ?? Infinity,
          ),
        }),
        publishMap: async (a) => {
          app.record = a; // status.shardMap first, then the copy apps read
          writeFileSync(`${mapFile}.tmp`, mapText(a, name));
          renameSync(`${mapFile}.tmp`, mapFile);
        },
        persist: async (r) => {
          const before = app.persisted;
          if (app.crashes && !app.lsnCrash && r?.moves.some((m) => m.fenceLsn)) {
            // Killed after the fence committed, before its LSN reached status.
            app.lsnCrash = true;
            throw new Crash('died between the fence and writing its LSN');
          }
          app.persisted = r;
          app.writes.push(r);
          if (app.crashes && r?.phase !== before?.phase)
            throw new Crash(`died right after writing phase ${r?.phase ?? '(none)'}`);
        },
      },
    };
    if (late) {
      const file = join(mapDir, 'late', 'shard-map.json');
      mkdirSync(join(mapDir, 'late'));
      writeFileSync(file, mapText(from, name));
      const lateMap = new LiveShardMap(file, { pollMs: 100 });
      const lateDb = new Database(lateMap, {
        database: name,
        user: 'postgres',
        password: SUPER_PASSWORD,
        poolMax: 2,
        onError: (where, e) => {
          if (!where.startsWith('replica')) errors.push(`late ${where}: ${e.message}`);
        },
      });
      app.late = { db: lateDb, map: lateMap, file, caughtUp: false };
    }
    apps.push(app);
    return app;
  }

  /** Runner steps until `until` holds; a crash builds a new runner from the record alone. */
  async function drive(
    app: App,
    spec: ReshardSpec,
    load: Workload,
    until: (r: StepResult) => boolean,
  ): Promise<StepResult> {
    let runner = new ReshardRunner(app.env, app.persisted, OPTIONS);
    const deadline = Date.now() + 300_000;
    let last: StepResult | undefined;
    for (;;) {
      if (Date.now() > deadline)
        throw new Error(
          `${app.name}: no end in 300 s; last: ${JSON.stringify(last?.decision.condition)}`,
        );
      try {
        last = await runner.step(spec);
        app.ran.push(...last.ran.map((a) => a.kind));
        if (until(last)) return last;
      } catch (e) {
        if (isCrash(e)) {
          // An action that throws Crash ran; what died is the record of its result.
          if (e instanceof ReshardActionError) app.ran.push(e.action.kind);
          app.restarts++;
          runner = new ReshardRunner(app.env, app.persisted, OPTIONS);
          continue;
        }
        if (!lockTimedOut(e)) throw e;
        app.lockTimeouts.push(Date.now());
      }
      load.check();
      const late = app.late;
      if (late && !late.caughtUp && load.lateReads >= 40) {
        writeFileSync(`${late.file}.tmp`, mapText(app.record, app.name));
        renameSync(`${late.file}.tmp`, late.file);
        late.caughtUp = true;
      }
      // The app keeps writing between reconciles; at the cutover its writes to the moving
      // buckets wait for the flip, so there only the poll's pace, and once the fence is up
      // (before the flip) a write it refused: the SDK's retry is part of every move.
      const rec = app.persisted;
      if (rec?.phase !== 'Cutover') await load.moreWrites(5);
      else if (rec.moves.every((m) => m.fenceLsn) && app.record.version === app.from.version)
        await load.until(() => app.fenced > 0);
      await sleep(100);
    }
  }

  /** Rows of both tables on a server, as comparable text. */
  const rowsOf = async (c: pg.Client): Promise<Row[]> =>
    [
      ...(
        await c.query<{ k: string; seq: number; payload: string }>(
          `SELECT ${KEY} AS k, seq, payload FROM items`,
        )
      ).rows.map((r) => `items|${r.k}|${r.seq}|${r.payload}`),
      ...(
        await c.query<{ id: string; k: string; n: number }>(
          `SELECT id::text, ${KEY}::text AS k, n FROM visits`,
        )
      ).rows.map((r) => `visits|${r.id}|${r.k}|${r.n}`),
    ].sort();

  const names = async (c: pg.Client, sql: string): Promise<string[]> =>
    (await c.query<{ name: string }>(sql)).rows.map((r) => r.name).sort();

  /** The whole move under load; `crashes`: the operator dies at every phase boundary. */
  async function moveUnderLoad(
    name: string,
    version: number,
    crashes: boolean,
    exec = false,
    late = false,
  ): Promise<App> {
    const app = await openApp(name, version, exec, late);
    app.crashes = crashes;
    const plan = planMoves(app.from, 2);
    expect(plan.moves.map((m) => [m.id, m.source, m.target])).toEqual([
      [`v${version + 1}_s0_s1`, 0, 1],
    ]);
    const moving = (key: string | bigint): boolean =>
      plan.moves.some((m) => m.ranges.some((r) => bucketOf(key) >= r.from && bucketOf(key) < r.to));
    const load = new Workload(app, 3);
    await load.seed(200);
    load.start();
    const spec: ReshardSpec = { shards: 2, shardKey: KEY };
    try {
      await drive(app, spec, load, (r) => r.resharding === undefined && app.writes.length > 0);
    } finally {
      await load.end();
    }
    const [src, dst] = app.clients as [pg.Client, pg.Client];

    // The move went through every phase in order and ended; the map is the plan's, v+1.
    const phases = app.writes.map((w) => w?.phase ?? 'done');
    expect(phases.filter((p, i) => p !== phases[i - 1])).toEqual([...PHASES, 'done']);
    expect(app.persisted).toBeUndefined();
    expect(app.record).toEqual({ version: version + 1, ranges: plan.ranges });
    expect(published(app.mapFile)).toEqual(app.record);
    expect(app.db.shardMap.version).toBe(version + 1);

    // The app: no error, every read found its row, writes acknowledged in every phase, and
    // some writes waited at the fence for the flip (then landed on the new owner).
    expect(load.errors).toEqual([]);
    expect(load.misses).toEqual([]);
    expect(load.reads).toBeGreaterThan(100);
    for (const p of PHASES.filter((x) => x !== 'Cutover'))
      expect(load.ackedIn.get(p) ?? 0, `writes acknowledged in ${p}`).toBeGreaterThan(0);
    expect(app.fenced).toBeGreaterThan(0);
    expect(app.sdkErrors).toEqual([]);
    if (app.late) {
      // The late pod read, on the old map, keys the new map wrote on the new shard: the way
      // back had them on the old shard (3 s after their write: it is asynchronous).
      expect(load.lateMisses).toEqual([]);
      expect(load.lateReads).toBeGreaterThanOrEqual(40);
      expect(load.lateMovedReads).toBeGreaterThan(5);
    }

    // Every acknowledged row on its final owner exactly once; nothing left on the source.
    const want = load.expected();
    const onSource = await rowsOf(src);
    const onTarget = await rowsOf(dst);
    expect(new Set(onTarget).size).toBe(onTarget.length);
    expect(onTarget).toEqual(want.filter((r) => moving(rowKey(r))));
    expect(onSource).toEqual(want.filter((r) => !moving(rowKey(r))));
    expect(onTarget.length).toBeGreaterThan(100);
    expect(onSource.length).toBeGreaterThan(100);

    // No replication objects left; the fence stays on both tables of the source.
    expect(await names(src, 'SELECT pubname AS name FROM pg_publication')).toEqual([]);
    expect(await names(src, 'SELECT slot_name AS name FROM pg_replication_slots')).toEqual([]);
    expect(await names(dst, 'SELECT subname AS name FROM pg_subscription')).toEqual([]);
    const move = plan.moves[0]!;
    const tables = ['items', 'visits'].map((t) => ({
      schema: 'public',
      name: t,
      keyColumn: KEY,
      keyType: t === 'items' ? 'text' : 'bigint',
    }));
    expect(
      (await src.query(fencedTablesSql({ id: move.id, ranges: move.ranges, tables }))).rows,
    ).toEqual([{ n: 2 }]);
    console.log(
      `[reshard-run] ${name}: ${app.writes.length} records, ${app.restarts} restarts, ${load.acked} writes (${app.fenced} refused by the fence, longest write ${load.maxWriteMs} ms), ${load.reads} reads, ${app.lockTimeouts.length} fence lock timeouts, moved ${onTarget.length} rows`,
    );
    return app;
  }

  it('moves half the buckets to a new shard with runner steps only: none lost, doubled or left behind; a pod still on the old map reads what the new one wrote', async () => {
    await moveUnderLoad('runmove', 1, false, false, true);
  }, 600_000);

  it("the same move over the operator's transport: SQL through pods' exec on the socket, the schema copied in the target's container", async () => {
    const app = await moveUnderLoad('runexec', 3, false, true);
    expect(app.ran).toContain('copySchema');
  });

  it('a new runner built from the persisted record alone resumes after every phase boundary', async () => {
    const app = await moveUnderLoad('runrestart', 11, true);
    expect(app.lsnCrash).toBe(true);
    // Six phases and the end, each written then died on, and the lost fence LSN.
    expect(app.restarts).toBe(8);
    // The fence ran again to learn an LSN the dead runner never wrote.
    expect(app.ran.filter((k) => k === 'fence').length).toBeGreaterThanOrEqual(2);
  }, 600_000);

  it('shrinks back 2 -> 1 under load after the grow: shard 0 takes its buckets back, its old fence on them lifted before the flip; shard 1 keeps nothing', async () => {
    const app = await moveUnderLoad('runshrink', 51, false);
    const [zero, one] = app.clients as [pg.Client, pg.Client];
    const before = [...(await rowsOf(zero)), ...(await rowsOf(one))].sort();
    const grown = app.writes.length;
    const back = planMoves(app.record, 1);
    expect(back.moves.map((m) => [m.id, m.source, m.target])).toEqual([['v53_s1_s0', 1, 0]]);
    const returning = (key: string | bigint): boolean =>
      back.moves.some((m) => m.ranges.some((r) => bucketOf(key) >= r.from && bucketOf(key) < r.to));
    // The grow's fence on shard 0 covers exactly the buckets that come back.
    expect(
      await names(
        zero,
        "SELECT tgname AS name FROM pg_trigger WHERE tgname LIKE 'scalable_fence%'",
      ),
    ).toEqual(['scalable_fence_v52_s0_s1', 'scalable_fence_v52_s0_s1']);

    const load = new Workload(app, 3);
    await load.seed(100);
    load.start();
    try {
      await drive(app, { shards: 1, shardKey: KEY }, load, (r) => r.resharding === undefined);
      // After the flip, new writes to the returned buckets land on shard 0 at once.
      await load.moreWrites(30);
    } finally {
      await load.end();
    }
    const phases = app.writes.slice(grown).map((w) => w?.phase ?? 'done');
    expect(phases.filter((p, i) => p !== phases[i - 1])).toEqual([...PHASES, 'done']);
    expect(app.ran).toContain('liftTargetFences');
    expect(app.record).toEqual({ version: 53, ranges: [{ from: 0, to: BUCKETS, shard: 0 }] });
    expect(app.db.shardMap.version).toBe(53);
    expect(load.errors).toEqual([]);
    expect(load.misses).toEqual([]);
    expect(app.sdkErrors).toEqual([]);

    // Every row of both loads on shard 0 exactly once; none left on shard 1.
    const onZero = await rowsOf(zero);
    expect(new Set(onZero).size).toBe(onZero.length);
    expect(onZero).toEqual([...before, ...load.expected()].sort());
    expect(onZero.filter((r) => returning(rowKey(r))).length).toBeGreaterThan(100);
    expect(await rowsOf(one)).toEqual([]);
    // Shard 0 fences nothing now; shard 1 fences the buckets it gave back, on both tables.
    expect(
      await names(
        zero,
        "SELECT tgname AS name FROM pg_trigger WHERE tgname LIKE 'scalable_fence%'",
      ),
    ).toEqual([]);
    expect(
      await names(one, "SELECT tgname AS name FROM pg_trigger WHERE tgname LIKE 'scalable_fence%'"),
    ).toEqual(['scalable_fence_v53_s1_s0', 'scalable_fence_v53_s1_s0']);
    for (const c of [zero, one]) {
      expect(await names(c, 'SELECT pubname AS name FROM pg_publication')).toEqual([]);
      expect(await names(c, 'SELECT subname AS name FROM pg_subscription')).toEqual([]);
      expect(await names(c, 'SELECT slot_name AS name FROM pg_replication_slots')).toEqual([]);
    }
  }, 900_000);

  it('a move of tables with identity or serial columns is refused at Prepare, naming them; nothing changes on either shard', async () => {
    const app = await openApp('runseq', 41);
    const [src, dst] = app.clients as [pg.Client, pg.Client];
    await src.query(`SET ROLE ${APP_ROLE}`);
    // Two moved tables a sequence fills, and a table without the key (not moved: not named).
    await src.query(
      `CREATE TABLE tickets (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ${KEY} text NOT NULL)`,
    );
    await src.query(`CREATE TABLE orders (no bigserial PRIMARY KEY, ${KEY} bigint NOT NULL)`);
    await src.query('CREATE TABLE countries (id serial PRIMARY KEY, name text NOT NULL)');
    await src.query('RESET ROLE');
    await src.query(
      `INSERT INTO tickets (${KEY}) SELECT 'k' || g FROM generate_series(1, 50) g; INSERT INTO orders (${KEY}) SELECT g FROM generate_series(1, 50) g`,
    );
    /** What a move would change on a shard (the source's rows and sequence too). */
    const world = async (c: pg.Client): Promise<Record<string, unknown>> => ({
      tables: await names(
        c,
        "SELECT format('%s.%s', schemaname, tablename) AS name FROM pg_tables WHERE schemaname = 'public'",
      ),
      data:
        c === src
          ? (
              await c.query(
                `SELECT (SELECT string_agg(id || ':' || ${KEY}, ',' ORDER BY id) FROM tickets) AS t, (SELECT string_agg(no || ':' || ${KEY}, ',' ORDER BY no) FROM orders) AS o, (SELECT last_value FROM orders_no_seq) AS seq`,
              )
            ).rows
          : [],
      publications: await names(c, 'SELECT pubname AS name FROM pg_publication'),
      subscriptions: await names(c, 'SELECT subname AS name FROM pg_subscription'),
      slots: await names(c, 'SELECT slot_name AS name FROM pg_replication_slots'),
      triggers: await names(
        c,
        "SELECT tgname AS name FROM pg_trigger WHERE tgname LIKE 'scalable%'",
      ),
      fenceFunction: (await c.query("SELECT to_regprocedure('scalable_fence()')::text AS f")).rows,
      copyGrant: (
        await c.query("SELECT pg_has_role('replicator', 'pg_read_all_data', 'MEMBER') AS g")
      ).rows,
      walLevel: (await c.query("SELECT current_setting('wal_level') AS w")).rows,
    });
    const before = [await world(src), await world(dst)];
    expect(before[0]?.fenceFunction).toEqual([{ f: null }]);

    const spec: ReshardSpec = { shards: 2, shardKey: KEY };
    const runner = new ReshardRunner(app.env, app.persisted, OPTIONS);
    const steps: StepResult[] = [];
    for (let i = 0; i < 4; i++) steps.push(await runner.step(spec));
    const last = steps.at(-1)!;
    expect(last.resharding?.phase).toBe('Prepare');
    expect(last.decision.condition?.reason).toBe('SequenceColumnsRefused');
    const message = last.decision.condition?.message ?? '';
    expect(message).toContain(`public.orders.no (nextval)`);
    expect(message).toContain(`public.tickets.id (identity)`);
    expect(message).not.toContain('countries');
    expect(message).not.toContain('visits'); // its uuid key is no sequence
    expect(steps.flatMap((s) => s.ran)).toEqual([]);
    expect([await world(src), await world(dst)]).toEqual(before);

    // The refused move is aborted: the record goes, with no action, and still nothing changed.
    const aborted = { ...spec, abort: true };
    let end = await runner.step(aborted);
    for (let i = 0; i < 3 && end.resharding; i++) end = await runner.step(aborted);
    expect(end.resharding).toBeUndefined();
    expect(end.decision.condition?.reason).toBe('ReshardingAborted');
    expect(app.persisted).toBeUndefined();
    expect(app.writes.map((w) => w?.phase ?? 'done')).toEqual(['Prepare', 'Aborting', 'done']);
    expect(app.record).toEqual(app.from);
    expect(published(app.mapFile)).toEqual(app.from);
    expect([await world(src), await world(dst)]).toEqual(before);
  }, 300_000);

  it('a move is refused at Prepare while a table without the shard key holds rows, naming it (an empty one passes)', async () => {
    const app = await openApp('runref', 61);
    const [src, dst] = app.clients as [pg.Client, pg.Client];
    await src.query(`SET ROLE ${APP_ROLE}`);
    await src.query('CREATE TABLE plans (name text PRIMARY KEY, price int NOT NULL)');
    await src.query('CREATE TABLE notes (id uuid PRIMARY KEY, body text)');
    await src.query("INSERT INTO plans VALUES ('free', 0), ('pro', 10)");
    await src.query('RESET ROLE');
    const spec: ReshardSpec = { shards: 2, shardKey: KEY };
    const runner = new ReshardRunner(app.env, app.persisted, OPTIONS);
    const steps: StepResult[] = [];
    for (let i = 0; i < 3; i++) steps.push(await runner.step(spec));
    const last = steps.at(-1)!;
    expect(last.resharding?.phase).toBe('Prepare');
    expect(last.decision.condition?.reason).toBe('ReferenceTablesRefused');
    expect(last.decision.condition?.message).toContain(': public.plans;');
    expect(last.decision.condition?.message).not.toContain('notes');
    expect(steps.flatMap((st) => st.ran)).toEqual([]);
    expect(
      await names(dst, 'SELECT tablename AS name FROM pg_tables WHERE schemaname = $$public$$'),
    ).toEqual([]);
    // Emptied, it is a table like `notes`: the move leaves Prepare (then is aborted).
    await src.query('DELETE FROM plans');
    let next = await runner.step(spec);
    for (let i = 0; i < 5 && next.resharding?.phase === 'Prepare'; i++)
      next = await runner.step(spec);
    expect(next.resharding?.phase).toBe('SchemaCopy');
    let end = await runner.step({ ...spec, abort: true });
    for (let i = 0; i < 5 && end.resharding; i++) end = await runner.step({ ...spec, abort: true });
    expect(end.resharding).toBeUndefined();
    expect(app.record).toEqual(app.from);
  }, 300_000);

  const aborts = [
    {
      when: 'in CatchUp',
      name: 'runabort',
      version: 21,
      stop: (r: StepResult) => r.resharding?.phase === 'CatchUp',
      phases: ['Prepare', 'SchemaCopy', 'InitialCopy', 'CatchUp', 'Aborting', 'done'],
    },
    {
      // The subscription was just made: its table copies are under way when the abort comes.
      when: 'during the initial copy',
      name: 'runabortcopy',
      version: 31,
      stop: (r: StepResult) => r.ran.some((a) => a.kind === 'createSubscription'),
      phases: ['Prepare', 'SchemaCopy', 'InitialCopy', 'Aborting', 'done'],
    },
  ];
  for (const c of aborts)
    it(`an abort ${c.when} leaves the source as it was and the map unchanged`, async () => {
      const app = await openApp(c.name, c.version);
      const [src, dst] = app.clients as [pg.Client, pg.Client];
      const load = new Workload(app, 3);
      await load.seed(200);
      load.start();
      try {
        await drive(app, { shards: 2, shardKey: KEY }, load, c.stop);
        // The copy is there: a publication, a slot, a subscription.
        expect(await names(src, 'SELECT pubname AS name FROM pg_publication')).toHaveLength(1);
        expect(await names(dst, 'SELECT subname AS name FROM pg_subscription')).toHaveLength(1);
        await drive(app, { shards: 2, shardKey: KEY, abort: true }, load, (r) => !r.resharding);
        await load.moreWrites(20);
      } finally {
        await load.end();
      }
      const phases = app.writes.map((w) => w?.phase ?? 'done');
      expect(phases.filter((p, i) => p !== phases[i - 1])).toEqual(c.phases);
      // The map never moved: not on record, not where apps read it, not in the app.
      expect(app.record).toEqual(app.from);
      expect(published(app.mapFile)).toEqual(app.from);
      expect(app.db.shardMap.version).toBe(c.version);
      expect(load.errors).toEqual([]);
      expect(load.misses).toEqual([]);
      expect(app.fenced).toBe(0);
      expect(app.sdkErrors).toEqual([]);
      // The source: every acknowledged row, no publication, no slot (the table copies' too),
      // no fence.
      expect(await rowsOf(src)).toEqual(load.expected());
      expect(await names(src, 'SELECT pubname AS name FROM pg_publication')).toEqual([]);
      expect(await names(src, 'SELECT slot_name AS name FROM pg_replication_slots')).toEqual([]);
      expect(
        await names(
          src,
          "SELECT tgname AS name FROM pg_trigger WHERE tgname LIKE 'scalable_fence%'",
        ),
      ).toEqual([]);
      // The target: no subscription, none of the copied rows (its empty tables stay).
      expect(await names(dst, 'SELECT subname AS name FROM pg_subscription')).toEqual([]);
      expect(await rowsOf(dst)).toEqual([]);
    }, 600_000);
});

/** The shard key of a row text (items|key|seq|payload, visits|id|key|n). */
function rowKey(row: Row): string | bigint {
  const parts = row.split('|');
  if (parts[0] === 'visits') return BigInt(parts.at(-2)!);
  return parts.slice(1, -2).join('|');
}

/**
 * Writers (one key set each, so a key's writes are in order) and a reader, all through the
 * SDK: inserts, updates and deletes of items, inserts of visits, each acknowledged write
 * read back at once; the reader reads rows no writer touches. What was acknowledged is
 * the expected state, row by row.
 */
class Workload {
  readonly items = new Map<string, Map<number, string>>(); // key -> seq -> payload
  readonly visits = new Map<string, string>(); // id -> key|n
  readonly stable: string[] = [];
  readonly errors: string[] = [];
  readonly misses: string[] = [];
  readonly ackedIn = new Map<string, number>();
  acked = 0;
  reads = 0;
  maxWriteMs = 0;
  /** Keys written once the map flipped (by the pod on the new map), and when acknowledged. */
  readonly fresh: { key: string; payload: string; at: number }[] = [];
  lateReads = 0;
  lateMovedReads = 0;
  readonly lateMisses: string[] = [];
  #seq = 0;
  #stop = false;
  #running: Promise<void>[] = [];
  readonly #keys: { text: string[]; ints: bigint[] }[];

  constructor(
    private readonly app: App,
    workers: number,
  ) {
    this.#keys = Array.from({ length: workers }, (_, w) => ({
      text: Array.from({ length: 60 }, (_, i) => `c${w}-${i}-${randomKey()}`),
      ints: Array.from({ length: 20 }, () => BigInt(randomInt(1, 2 ** 47))),
    }));
  }

  async seed(opsPerWorker: number): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const key = `stable-${i}-${randomKey()}`;
      await this.app.db.write(key, 'INSERT INTO items VALUES ($1, 0, $2)', [key, 'stable']);
      this.items.set(key, new Map([[0, 'stable']]));
      this.stable.push(key);
    }
    for (const [w] of this.#keys.entries())
      for (let i = 0; i < opsPerWorker; i++) await this.#op(w);
  }

  start(): void {
    this.#running = [
      ...this.#keys.map((_, w) => this.#loop(() => this.#op(w))),
      this.#loop(() => this.#readStable()),
      ...(this.app.late
        ? [this.#loop(() => this.#freshWrite()), this.#loop(() => this.#lateRead())]
        : []),
    ];
  }

  async end(): Promise<void> {
    this.#stop = true;
    await Promise.all(this.#running);
  }

  /** Fails the drive early once the app saw an error. */
  check(): void {
    if (this.errors.length > 0) throw new Error(`the app failed: ${this.errors.join('; ')}`);
  }

  /** Until `n` more writes were acknowledged. */
  async moreWrites(n: number): Promise<void> {
    const want = this.acked + n;
    await this.until(() => this.acked >= want);
  }

  /** Until `done` holds (the app failing ends it with its error). */
  async until(done: () => boolean, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      this.check();
      if (this.#stop) return;
      if (Date.now() > deadline)
        throw new Error(`the app made no progress in ${timeoutMs / 1000} s (${done.toString()})`);
      await sleep(20);
    }
  }

  expected(): Row[] {
    return [
      ...[...this.items].flatMap(([k, rows]) =>
        [...rows].map(([seq, payload]) => `items|${k}|${seq}|${payload}`),
      ),
      ...[...this.visits].map(([id, v]) => `visits|${id}|${v}`),
    ].sort();
  }

  async #loop(op: () => Promise<void>): Promise<void> {
    while (!this.#stop) {
      try {
        await op();
      } catch (e) {
        this.errors.push(`${(e as Error).message} (${(e as { code?: string }).code ?? ''})`);
        return;
      }
    }
  }

  /** A write through the SDK, timed; SB001 refusals show in the count (the SDK retries). */
  async #write(key: string | bigint, text: string, params: unknown[]): Promise<void> {
    const t0 = Date.now();
    await this.app.db.write(key, text, params);
    this.maxWriteMs = Math.max(this.maxWriteMs, Date.now() - t0);
    this.acked++;
    const phase = this.app.persisted?.phase ?? 'none';
    this.ackedIn.set(phase, (this.ackedIn.get(phase) ?? 0) + 1);
  }

  async #read<R extends pg.QueryResultRow>(
    key: string | bigint,
    text: string,
    params: unknown[],
  ): Promise<R[]> {
    this.reads++;
    return (await this.app.db.read<R>(key, text, params)).rows;
  }

  async #op(w: number): Promise<void> {
    const keys = this.#keys[w]!;
    const key = keys.text[randomInt(0, keys.text.length)]!;
    const rows = this.items.get(key) ?? new Map<number, string>();
    this.items.set(key, rows);
    const op = randomInt(0, 10);
    const payloadOf = async (seq: number): Promise<string | undefined> =>
      (
        await this.#read<{ payload: string }>(
          key,
          `SELECT payload FROM items WHERE ${KEY} = $1 AND seq = $2`,
          [key, seq],
        )
      )[0]?.payload;
    const seqs = [...rows.keys()];
    const seq = seqs[randomInt(0, Math.max(1, seqs.length))];
    if (op < 5 || seq === undefined) {
      const s = ++this.#seq;
      const payload = randomBytes(6).toString('hex');
      await this.#write(key, 'INSERT INTO items VALUES ($1, $2, $3)', [key, s, payload]);
      rows.set(s, payload);
      if ((await payloadOf(s)) !== payload) this.misses.push(`insert ${key}|${s}`);
    } else if (op < 7) {
      const ik = keys.ints[randomInt(0, keys.ints.length)]!;
      const id = randomUUID();
      const n = randomInt(0, 1000);
      await this.#write(ik, 'INSERT INTO visits VALUES ($1, $2, $3)', [id, String(ik), n]);
      this.visits.set(id, `${ik}|${n}`);
      const back = await this.#read<{ n: number }>(ik, 'SELECT n FROM visits WHERE id = $1', [id]);
      if (back[0]?.n !== n) this.misses.push(`visit ${ik}|${id}`);
    } else if (op < 9) {
      const payload = randomBytes(6).toString('hex');
      await this.#write(key, `UPDATE items SET payload = $3 WHERE ${KEY} = $1 AND seq = $2`, [
        key,
        seq,
        payload,
      ]);
      rows.set(seq, payload);
      if ((await payloadOf(seq)) !== payload) this.misses.push(`update ${key}|${seq}`);
    } else {
      await this.#write(key, `DELETE FROM items WHERE ${KEY} = $1 AND seq = $2`, [key, seq]);
      rows.delete(seq);
      if ((await payloadOf(seq)) !== undefined) this.misses.push(`delete ${key}|${seq}`);
    }
  }

  /** After the flip, new keys through the pod on the new map. */
  async #freshWrite(): Promise<void> {
    if (this.app.db.shardMap.version === this.app.from.version || this.app.late?.caughtUp) {
      await sleep(20);
      return;
    }
    const key = `fresh-${randomUUID()}-${randomKey()}`;
    const payload = randomBytes(6).toString('hex');
    await this.#write(key, 'INSERT INTO items VALUES ($1, 0, $2)', [key, payload]);
    this.items.set(key, new Map([[0, payload]]));
    this.fresh.push({ key, payload, at: Date.now() });
  }

  /** The late pod (old map) reads fresh keys written at least 3 s ago. */
  async #lateRead(): Promise<void> {
    const late = this.app.late;
    const ready = this.fresh.filter((f) => Date.now() - f.at >= 3000);
    if (!late || late.caughtUp || ready.length === 0) {
      await sleep(20);
      return;
    }
    const f = ready[randomInt(0, ready.length)]!;
    const rows = (
      await late.db.read<{ payload: string }>(
        f.key,
        `SELECT payload FROM items WHERE ${KEY} = $1 AND seq = 0`,
        [f.key],
      )
    ).rows;
    this.lateReads++;
    const owner = (m: Assignment) =>
      m.ranges.find((r) => bucketOf(f.key) >= r.from && bucketOf(f.key) < r.to)?.shard;
    if (owner(this.app.from) !== owner(this.app.record)) this.lateMovedReads++;
    if (rows[0]?.payload !== f.payload) this.lateMisses.push(`${f.key}: ${rows.length} row(s)`);
    await sleep(10);
  }

  async #readStable(): Promise<void> {
    const key = this.stable[randomInt(0, this.stable.length)]!;
    const rows = await this.#read<{ payload: string }>(
      key,
      `SELECT payload FROM items WHERE ${KEY} = $1`,
      [key],
    );
    if (rows.length !== 1 || rows[0]?.payload !== 'stable')
      this.misses.push(`stable ${key}: ${rows.length} row(s)`);
  }
}
