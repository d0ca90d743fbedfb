// `npm run bench:reshard`: what an online bucket move (issue 27) costs, 1 -> 2 shards, on two
// Postgres 17 servers from the project's image on loopback (test/engines/resharding-harness.ts:
// the shard's settings that matter, wal_level logical, the app and replication roles).
// BENCH_RESHARD_ROWS (1,000,000) rows of about 100 bytes are seeded on shard 0; then the
// operator's own resharding runner (operator/tiers/database/resharding-run.ts over the pure
// state machine resharding.ts, with its default options, as reshard-watch.ts builds it) is
// stepped every BENCH_RESHARD_STEP_MS (150) until the move ends. The shard map is a file the
// SDK follows (LiveShardMap, as a pod reads its ConfigMap volume), flipped at once by
// publishMap.
// All along, BENCH_RESHARD_WRITERS (4) writers issue BENCH_RESHARD_WRITES_PER_S (200) writes
// per second in all through the SDK's Database: updates of seeded keys and inserts of new
// ones, random keys, open loop (a write that waits does not hold back the next one, as
// requests keep arriving at an app), each timed from issue to acknowledgement. A write the
// fence refuses (SB001) is retried by the SDK once the next map is in use, so its time is the
// write pause an app sees. Measured: the initial copy (subscription created -> every table
// ready) and its rows/s, the catch-up, the cutover (fence -> map published -> the SDK routes
// by it), the writes of moving buckets caught in it, the writes of every phase, the cleanup
// (the moved rows deleted from the source) and apply -> done. A failed write fails the run;
// at the end each server's rows are counted against what was seeded and acknowledged (the
// source holds none of the moved buckets, the target only those), so the figures are of a
// move that worked. Printed as tables and written to BENCHMARKS.md (section "reshard").
import { execFileSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import {
  chownSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeBenchSection } from './benchmarks-file.ts';
import { BUCKETS, bucketOf, parseShardMap } from '../sdk/src/contract/index.ts';
import { Database } from '../sdk/src/db/database.ts';
import { LiveShardMap } from '../sdk/src/db/live-shard-map.ts';
import { CUTOVER_PAUSE_MS, RESHARD_TICK_MS } from '../operator/tiers/database/reshard-watch.ts';
import { RESHARD_PHASES, planMoves } from '../operator/tiers/database/resharding.ts';
import type {
  MoveRecord,
  ReshardPhase,
  ReshardSpec,
  ReshardingStatus,
} from '../operator/tiers/database/resharding.ts';
import {
  ReshardActionError,
  ReshardRunner,
  moveSqlOf,
} from '../operator/tiers/database/resharding-run.ts';
import type { ReshardEnv, ShardSql } from '../operator/tiers/database/resharding-run.ts';
import { FENCE_SQLSTATE, countInMoveSql } from '../operator/tiers/database/resharding-sql.ts';
import type { MovedTable } from '../operator/tiers/database/resharding-sql.ts';
import type { Assignment } from '../operator/tiers/database/shard-authority.ts';
import { ENGINE_IMAGES, ENGINE_UID } from '../test/engines/containers.ts';
import {
  APP_ROLE,
  KEY,
  REPLICATION_ROLE,
  SUPER_PASSWORD,
  copySchema,
  loopbackMapText,
  randomKey,
  replicationConninfo,
  shardSql,
  startPostgres,
} from '../test/engines/resharding-harness.ts';
import type { Server } from '../test/engines/resharding-harness.ts';
import { buildImages } from '../test/images/build.ts';

const ROWS = Number(process.env['BENCH_RESHARD_ROWS'] ?? 1_000_000);
const WRITERS = Number(process.env['BENCH_RESHARD_WRITERS'] ?? 4);
const WRITES_PER_S = Number(process.env['BENCH_RESHARD_WRITES_PER_S'] ?? 200);
const STEP_MS = Number(process.env['BENCH_RESHARD_STEP_MS'] ?? 150);
/** Writes before the first step: the app's latency with no move under way. */
const WARMUP_S = Number(process.env['BENCH_RESHARD_WARMUP_S'] ?? 10);
const TIMEOUT_S = Number(process.env['BENCH_RESHARD_TIMEOUT_S'] ?? 3600);
/** The SDK's pool per server (DatabaseOptions.poolMax). */
const POOL_MAX = 10;
/** Writes waiting at once past which a writer skips (and counts) a write instead. */
const MAX_IN_FLIGHT = 5000;
/** The app database on both servers: the one startPostgres creates, owned by the app role. */
const DB = APP_ROLE;
const TABLE = 'items';
const MOVED_TABLE: MovedTable = { schema: 'public', name: TABLE, keyColumn: KEY, keyType: 'text' };
const SPEC: ReshardSpec = { shards: 2, shardKey: KEY };
const PHASES = RESHARD_PHASES;
const log = (m: string) => console.log(`[bench:reshard] ${m}`);
const now = () => performance.now();

const quantile = (sorted: readonly number[], q: number): number =>
  sorted.length ? (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN) : NaN;
const int = (n: number) => Math.round(n).toLocaleString('en-US');
const sec = (ms: number) => (ms / 1000).toFixed(1);

/** One acknowledged write: issued and acknowledged (performance.now()), its bucket moving. */
interface Sample {
  readonly t0: number;
  readonly t1: number;
  readonly moving: boolean;
}

/**
 * Open-loop writers through the SDK: each issues a write every `1000 * writers / perSecond`
 * ms whether or not the previous ones were acknowledged. Half updates of seeded keys (one
 * row each, or it is an error: a row lost in the move), half inserts of new random keys.
 */
class Writers {
  readonly samples: Sample[] = [];
  readonly errors: string[] = [];
  readonly inserted = { moving: 0, staying: 0 };
  skipped = 0;
  readonly #inFlight = new Set<Promise<void>>();
  #loops: Promise<void>[] = [];
  #stop = false;
  #n = 0;

  constructor(
    private readonly db: Database,
    private readonly moving: (key: string) => boolean,
  ) {}

  start(): void {
    const interval = (1000 * WRITERS) / WRITES_PER_S;
    this.#loops = Array.from({ length: WRITERS }, (_, w) =>
      this.#loop(interval, (interval * w) / WRITERS),
    );
  }

  /** Stops issuing (a failed run: the writes under way end with the Database). */
  halt(): void {
    this.#stop = true;
  }

  /** Stops issuing and waits for every write issued to end. */
  async stop(): Promise<void> {
    this.#stop = true;
    await Promise.all(this.#loops);
    await Promise.all([...this.#inFlight]);
  }

  async #loop(interval: number, offset: number): Promise<void> {
    let next = now() + offset;
    while (!this.#stop) {
      if (this.#inFlight.size >= MAX_IN_FLIGHT) this.skipped++;
      else {
        const p: Promise<void> = this.#write().finally(() => this.#inFlight.delete(p));
        this.#inFlight.add(p);
      }
      next += interval;
      const wait = next - now();
      if (wait > 0) await sleep(wait);
      else if (wait < -1000) next = now(); // the event loop stalled: no burst to catch up
    }
  }

  async #write(): Promise<void> {
    const update = randomInt(0, 2) === 0;
    const key = update ? `c${randomInt(1, ROWS + 1)}` : `n${++this.#n}-${randomKey()}`;
    const moving = this.moving(key);
    const payload = randomBytes(50).toString('hex');
    const t0 = now();
    try {
      const r = update
        ? await this.db.write(
            key,
            `UPDATE ${TABLE} SET payload = $2 WHERE ${KEY} = $1 AND seq = 0`,
            [key, payload],
          )
        : await this.db.write(
            key,
            `INSERT INTO ${TABLE} (${KEY}, seq, payload) VALUES ($1, 0, $2)`,
            [key, payload],
          );
      if (r.rowCount !== 1)
        throw new Error(`${update ? 'update' : 'insert'} of ${key} touched ${r.rowCount} rows`);
      this.samples.push({ t0, t1: now(), moving });
      if (!update) this.inserted[moving ? 'moving' : 'staying']++;
    } catch (e) {
      this.errors.push(`${(e as Error).message} (${(e as { code?: string }).code ?? ''})`);
    }
  }
}

/** When the runner's SQL of interest ran (performance.now()), and what the cleanup cost. */
interface Marks {
  subscribed?: number;
  fenceStart?: number;
  fenceEnd?: number;
  deleteMs: number;
  deleted: number;
  deleteBatches: number;
  /** The Cleanup steps' counts of the moved buckets' rows on the source. */
  countMs: number;
  counts: number;
}

/** A ShardSql that notes the subscription, the fence, the cleanup's deletes and row counts. */
function observed(inner: ShardSql, marks: Marks, phase: () => ReshardPhase | undefined): ShardSql {
  return {
    async query<R extends object = Record<string, unknown>>(
      text: string,
      params?: readonly unknown[],
    ) {
      const t0 = now();
      const r = await inner.query<R>(text, params);
      if (text.startsWith('CREATE SUBSCRIPTION "scalable_move_')) marks.subscribed ??= now();
      if (phase() === 'Cleanup' && text.startsWith('SELECT count(*)::bigint AS n FROM')) {
        marks.countMs += now() - t0;
        marks.counts++;
      }
      return r;
    },
    async script(statements: readonly string[]) {
      const t0 = now();
      const fence = statements.some((s) => s.startsWith('CREATE TRIGGER'));
      const del = statements.findIndex((s) => s.startsWith('DELETE'));
      const r = await inner.script(statements);
      if (fence) {
        marks.fenceStart = t0;
        marks.fenceEnd = now();
      }
      if (del >= 0) {
        marks.deleteMs += now() - t0;
        marks.deleted += r[del]?.rowCount ?? 0;
        marks.deleteBatches++;
      }
      return r;
    },
  };
}

/** A fence that waited longer than its lock_timeout: the next step fences again. */
const lockTimedOut = (e: unknown): boolean =>
  e instanceof ReshardActionError && (e.cause as { code?: string })?.code === '55P03';

function at<T>(xs: readonly T[], i: number): T {
  const x = xs[i];
  if (x === undefined) throw new Error(`no element ${i}`);
  return x;
}

interface Step {
  /** The phase on record when the step began. */
  readonly phase: ReshardPhase;
  /** When it began (performance.now()) and how long it took. */
  readonly at: number;
  readonly ms: number;
}

interface Result {
  readonly postgres: string;
  readonly settings: string;
  readonly seedMs: number;
  readonly tableBytes: number;
  readonly move: MoveRecord;
  readonly seededMoving: number;
  readonly phaseStart: ReadonlyMap<ReshardPhase | 'done', number>;
  readonly applyAt: number;
  readonly warmupAt: number;
  readonly steps: readonly Step[];
  readonly lockTimeouts: number;
  readonly marks: Marks;
  readonly publishedAt: number;
  readonly mapSeenAt: number;
  readonly fenced: number;
  readonly sessionsOpened: number;
  readonly writers: Writers;
  readonly loadEnd: number;
  readonly check: {
    readonly source: number;
    readonly target: number;
    readonly expectedSource: number;
    readonly expectedTarget: number;
  };
  readonly loads: readonly number[];
}

async function main(): Promise<void> {
  buildImages(['postgres-patroni']);
  const dir = mkdtempSync(join(tmpdir(), 'bench-reshard-'));
  chownSync(dir, ENGINE_UID, ENGINE_UID);
  const loads: number[] = [loadavg()[0] ?? 0];
  const loadTimer = setInterval(() => loads.push(loadavg()[0] ?? 0), 5000);
  let servers: Server[] = [];
  const closers: (() => Promise<void> | void)[] = [];
  try {
    log(`starting two Postgres servers (${ENGINE_IMAGES.postgres})`);
    servers = await Promise.all([startPostgres(dir, 'shard0'), startPostgres(dir, 'shard1')]);
    const server = (i: number): Server => at(servers, i);
    const [src, dst] = [server(0).client, server(1).client];
    const postgres =
      (
        await src.query<{ v: string }>(
          "SELECT split_part(current_setting('server_version'), ' ', 1) AS v",
        )
      ).rows[0]?.v ?? '?';
    const settings = (
      await src.query<{ name: string; setting: string }>(
        "SELECT name, current_setting(name) AS setting FROM pg_settings WHERE name IN ('shared_buffers', 'max_wal_size', 'synchronous_commit', 'max_sync_workers_per_subscription') ORDER BY name",
      )
    ).rows
      .map((r) => `${r.name} ${r.setting}`)
      .join(', ');

    // The app's table, on the source only, seeded in SQL.
    log(`seeding ${int(ROWS)} rows`);
    const seed0 = now();
    await src.query(`SET ROLE ${APP_ROLE}`);
    await src.query(
      `CREATE TABLE ${TABLE} (${KEY} text NOT NULL, seq int NOT NULL, payload text NOT NULL, PRIMARY KEY (${KEY}, seq))`,
    );
    await src.query('RESET ROLE');
    await src.query(
      `INSERT INTO ${TABLE} SELECT 'c' || g, 0, left(repeat(md5(g::text), 4), 100) FROM generate_series(1, $1::int) g`,
      [ROWS],
    );
    await src.query(`VACUUM ANALYZE ${TABLE}`);
    await src.query('CHECKPOINT');
    const seedMs = now() - seed0;
    const tableBytes = Number(
      (await src.query<{ n: string }>(`SELECT pg_total_relation_size($1)::bigint AS n`, [TABLE]))
        .rows[0]?.n,
    );

    const from: Assignment = { version: 1, ranges: [{ from: 0, to: BUCKETS, shard: 0 }] };
    const plan = planMoves(from, SPEC.shards);
    const move = at(plan.moves, 0);
    if (plan.moves.length !== 1) throw new Error(`expected one move, planned ${plan.moves.length}`);
    const inMove = countInMoveSql(moveSqlOf(move, [MOVED_TABLE]), MOVED_TABLE);
    const countOf = async (c: typeof src, sql: string): Promise<number> =>
      Number((await c.query<{ n: string }>(sql)).rows[0]?.n);
    const seededMoving = await countOf(src, inMove);
    log(
      `seeded in ${sec(seedMs)} s (${(tableBytes / 2 ** 20).toFixed(0)} MiB with its index); ${int(seededMoving)} rows in the moving buckets`,
    );
    const moving = (key: string): boolean => {
      const b = bucketOf(key);
      return move.ranges.some((r) => b >= r.from && b < r.to);
    };

    // The map apps read: a file, as a pod's ConfigMap volume, replaced atomically.
    const mapFile = join(dir, 'map', 'shard-map.json');
    const mapText = (a: Assignment): string => loopbackMapText(servers, a, DB);
    const publish = (a: Assignment): void => {
      writeFileSync(`${mapFile}.tmp`, mapText(a));
      renameSync(`${mapFile}.tmp`, mapFile);
    };
    mkdirSync(join(dir, 'map'));
    publish(from);
    const map = new LiveShardMap(mapFile, { pollMs: 100 });
    closers.push(() => map.close());
    let mapSeenAt = NaN;
    map.onChange((next) => {
      if (next.version > from.version && Number.isNaN(mapSeenAt)) mapSeenAt = now();
    });
    let fenced = 0;
    const sdkErrors: string[] = [];
    const db = new Database(map, {
      database: DB,
      user: APP_ROLE,
      password: SUPER_PASSWORD,
      poolMax: POOL_MAX,
      onError: (where, e) => {
        if ((e as { code?: string }).code === FENCE_SQLSTATE) fenced++;
        else if (!where.startsWith('replica')) sdkErrors.push(`${where}: ${e.message}`);
      },
    });
    closers.push(() => db.close());

    // The runner's world, as the engine test builds it: SQL on each primary, the schema copy
    // in a container of the image, the map file, the record kept in memory.
    const marks: Marks = {
      deleteMs: 0,
      deleted: 0,
      deleteBatches: 0,
      countMs: 0,
      counts: 0,
    };
    const sql = servers.map((s) => shardSql(s, DB));
    closers.push(async () => {
      for (const s of sql) await s.end();
    });
    let record = from;
    let persisted: ReshardingStatus | undefined;
    const viaMarks = sql.map((s) => observed(s, marks, () => persisted?.phase));
    let publishedAt = NaN;
    const phaseStart = new Map<ReshardPhase | 'done', number>();
    const env: ReshardEnv = {
      database: DB,
      replicationRole: REPLICATION_ROLE,
      shard: (i) => at(viaMarks, i),
      sourceConninfo: (i) => replicationConninfo(server(i), DB),
      copySchema: (req) => copySchema(server(req.source), server(req.target), DB, req),
      maps: async () => ({
        record,
        published: (() => {
          const m = parseShardMap(readFileSync(mapFile, 'utf8'));
          return { version: m.version, ranges: m.ranges };
        })(),
        acknowledgedVersion: db.shardMap.version,
      }),
      publishMap: async (a) => {
        record = a; // status.shardMap first, then the copy apps read
        publish(a);
        publishedAt = now();
      },
      persist: async (r) => {
        persisted = r;
        const p = r?.phase ?? 'done';
        if (!phaseStart.has(p)) {
          phaseStart.set(p, now());
          log(`phase ${p}`);
        }
      },
    };

    // Sessions opened to shard 0's app database over the run: the writers' pool, and one more
    // for every connection a pool dropped.
    const sessions = async () =>
      countOf(src, `SELECT sessions AS n FROM pg_stat_database WHERE datname = '${DB}'`);
    const sessionsBefore = await sessions();
    const writers = new Writers(db, moving);
    closers.push(() => writers.halt());
    writers.start();
    const warmupAt = now();
    log(
      `${WRITERS} writers, ${WRITES_PER_S} writes/s in all; ${WARMUP_S} s of writes before the move`,
    );
    await sleep(WARMUP_S * 1000);

    // The move: runner steps until the record is gone again.
    const runner = new ReshardRunner(env, undefined);
    const steps: Step[] = [];
    let lockTimeouts = 0;
    let lastProgress = now();
    const applyAt = now();
    const deadline = applyAt + TIMEOUT_S * 1000;
    for (;;) {
      if (now() > deadline) throw new Error(`the move did not end in ${TIMEOUT_S} s`);
      if (writers.errors.length > 0 || sdkErrors.length > 0)
        throw new Error(`the app failed: ${[...writers.errors, ...sdkErrors].join('; ')}`);
      const phase = persisted?.phase ?? 'Prepare';
      const t0 = now();
      try {
        const r = await runner.step(SPEC);
        steps.push({ phase, at: t0, ms: now() - t0 });
        if (r.resharding === undefined && phaseStart.has('done')) break;
      } catch (e) {
        if (!lockTimedOut(e)) throw e;
        steps.push({ phase, at: t0, ms: now() - t0 });
        lockTimeouts++;
      }
      if (phase === 'InitialCopy' && now() - lastProgress > 10_000) {
        lastProgress = now();
        const copied = await countOf(
          dst,
          'SELECT coalesce(sum(tuples_processed), 0)::bigint AS n FROM pg_stat_progress_copy',
        );
        log(`initial copy: ${int(copied)} rows on the target so far`);
      }
      await sleep(STEP_MS);
    }
    log(`move done in ${sec(now() - applyAt)} s; ${int(WARMUP_S)} s more of writes`);
    await sleep(WARMUP_S * 1000);
    await writers.stop();
    const loadEnd = now();
    await sleep(1500); // backends report their session counts within a second
    const sessionsOpened = (await sessions()) - sessionsBefore;
    if (writers.errors.length > 0 || sdkErrors.length > 0)
      throw new Error(`the app failed: ${[...writers.errors, ...sdkErrors].join('; ')}`);

    // The move worked: the final map is the plan's, and every row is where it names.
    const final = parseShardMap(readFileSync(mapFile, 'utf8'));
    if (
      final.version !== 2 ||
      JSON.stringify(final.ranges) !== JSON.stringify(plan.ranges) ||
      db.shardMap.version !== 2
    )
      throw new Error(`the map did not end as planned: v${final.version}`);
    const total = `SELECT count(*)::bigint AS n FROM ${TABLE}`;
    const check = {
      source: await countOf(src, total),
      target: await countOf(dst, total),
      expectedSource: ROWS - seededMoving + writers.inserted.staying,
      expectedTarget: seededMoving + writers.inserted.moving,
    };
    const sourceInMove = await countOf(src, inMove);
    const targetInMove = await countOf(dst, inMove);
    if (
      check.source !== check.expectedSource ||
      check.target !== check.expectedTarget ||
      sourceInMove !== 0 ||
      targetInMove !== check.target
    )
      throw new Error(
        `rows not where the map puts them: source ${check.source} (expected ${check.expectedSource}, ${sourceInMove} of moved buckets), target ${check.target} (expected ${check.expectedTarget}, ${targetInMove} of moved buckets)`,
      );
    log('check: every row on the shard the final map names');

    report({
      postgres,
      settings,
      seedMs,
      tableBytes,
      move,
      seededMoving,
      phaseStart,
      applyAt,
      warmupAt,
      steps,
      lockTimeouts,
      marks,
      publishedAt,
      mapSeenAt,
      fenced,
      sessionsOpened,
      writers,
      loadEnd,
      check,
      loads: [...loads, loadavg()[0] ?? 0],
    });
  } finally {
    clearInterval(loadTimer);
    for (const c of closers.reverse()) await Promise.resolve(c()).catch(() => undefined);
    for (const s of servers) {
      await s.client.end().catch(() => undefined);
      await s.container.remove();
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Stats {
  readonly n: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

function stats(samples: readonly Sample[]): Stats {
  const sorted = samples.map((s) => s.t1 - s.t0).sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    max: sorted.at(-1) ?? NaN,
  };
}

const ms = (x: number) => (Number.isNaN(x) ? '–' : x.toFixed(x < 10 ? 1 : 0));
const statsText = (s: Stats) =>
  `${ms(s.p50)} / ${ms(s.p99)} / ${ms(s.max)} ms (${int(s.n)} writes)`;

function report(r: Result): void {
  const start = (p: ReshardPhase | 'done'): number => {
    const t = r.phaseStart.get(p);
    if (t === undefined) throw new Error(`phase ${p} never began`);
    return t;
  };
  const phaseEnd = (p: ReshardPhase): number => start(PHASES[PHASES.indexOf(p) + 1] ?? 'done');
  const done = start('done');
  const copyMs = start('CatchUp') - (r.marks.subscribed ?? NaN);
  const fenceStart = r.marks.fenceStart ?? NaN;
  const fenceEnd = r.marks.fenceEnd ?? NaN;
  /** Steps that ran at some time between `from` and `to`. */
  const stepsIn = (from: number, to: number) =>
    r.steps.filter((s) => s.at + s.ms >= from && s.at <= to).length;
  // The pause: writes of moving buckets in flight between the fence and the SDK's new map.
  const inWindow = (s: Sample) => s.t1 >= fenceStart && s.t0 <= r.mapSeenAt;
  const pause = stats(r.writers.samples.filter((s) => s.moving && inWindow(s)));
  const staying = stats(r.writers.samples.filter((s) => !s.moving && inWindow(s)));
  const issued = (from: number, to: number) =>
    r.writers.samples.filter((s) => s.t0 >= from && s.t0 < to);
  const rowsPerS = (r.seededMoving / copyMs) * 1000;
  const movedMiB = ((r.tableBytes * r.seededMoving) / ROWS / 2 ** 20) * (1000 / copyMs);
  const buckets = r.move.ranges.map((x) => `${x.from}–${x.to - 1}`).join(', ');
  const acked = r.writers.samples.length;
  const offeredSeconds = (r.loadEnd - r.warmupAt) / 1000;
  const cutoverSteps = stepsIn(fenceStart, r.publishedAt);

  const main = [
    '| measure | result |',
    '|---|---|',
    `| table on shard 0 before the move | ${int(ROWS)} rows (key text, ~100-byte payload), ${(r.tableBytes / 2 ** 20).toFixed(0)} MiB with its primary key |`,
    `| rows moved (buckets ${buckets} of ${BUCKETS} to shard 1) | ${int(r.seededMoving)} seeded + ${int(r.writers.inserted.moving)} inserted by the writers during the run |`,
    `| initial copy: subscription created -> every table ready | ${sec(copyMs)} s: ${int(rowsPerS)} rows/s (about ${movedMiB.toFixed(1)} MiB/s of table and index) |`,
    `| catch-up (phase CatchUp) | ${sec(phaseEnd('CatchUp') - start('CatchUp'))} s |`,
    `| cutover: the fence's transaction (CREATE TRIGGER under lock_timeout) | ${ms(fenceEnd - fenceStart)} ms |`,
    `| cutover: fence -> new map published | ${ms(r.publishedAt - fenceStart)} ms (${cutoverSteps} runner steps, the fence's to the publish's) |`,
    `| new map published -> the SDK routes by it | ${ms(r.mapSeenAt - r.publishedAt)} ms |`,
    `| write pause: writes of moving buckets in flight from the fence to the SDK's new map, p50 / p99 / max | ${statsText(pause)}; ${int(r.fenced)} refused by the fence (SB001) and retried by the SDK |`,
    `| the same window, writes of staying buckets | ${statsText(staying)} |`,
    `| connections opened to shard 0's database during the run | ${int(r.sessionsOpened)} (the SDK's pool holds up to ${POOL_MAX}) |`,
    `| cleanup (phase Cleanup: way back stopped, moved rows deleted) | ${sec(done - start('Cleanup'))} s: ${int(r.marks.deleted)} rows deleted in ${int(r.marks.deleteBatches)} batches (${sec(r.marks.deleteMs)} s), ${int(r.marks.counts)} row counts of the moved buckets (${sec(r.marks.countMs)} s) |`,
    `| apply -> done | ${sec(done - r.applyAt)} s (${r.steps.length} runner steps${r.lockTimeouts ? `, ${r.lockTimeouts} fence lock timeouts` : ''}) |`,
    `| writes acknowledged / failed | ${int(acked)} / 0 (${(acked / offeredSeconds).toFixed(0)} per second${r.writers.skipped ? `, ${int(r.writers.skipped)} skipped at ${MAX_IN_FLIGHT} in flight` : ''}) |`,
    `| check after the move | source ${int(r.check.source)} rows, none of the moved buckets; target ${int(r.check.target)} rows, all of them; as seeded + acknowledged inserts |`,
  ].join('\n');

  const rows: string[] = [];
  const phaseRow = (name: string, from: number, to: number, steps: string) => {
    const all = stats(issued(from, to));
    const mv = stats(issued(from, to).filter((s) => s.moving));
    rows.push(
      `| ${name} | ${sec(to - from)} | ${steps} | ${int(all.n)} | ${ms(all.p50)} | ${ms(all.p99)} | ${ms(all.max)} | ${ms(mv.p99)} | ${ms(mv.max)} |`,
    );
  };
  phaseRow('before the move', r.warmupAt, r.applyAt, '–');
  for (const p of PHASES) {
    const from = p === 'Prepare' ? r.applyAt : start(p);
    const to = phaseEnd(p);
    const ss = r.steps.filter((s) => s.phase === p);
    const slowest = Math.max(...ss.map((s) => s.ms));
    phaseRow(p, from, to, `${ss.length} (slowest ${ms(slowest)} ms)`);
  }
  phaseRow('after the move', done, r.loadEnd, '–');
  const byPhase = [
    '| phase | seconds | runner steps | writes issued | p50 ms | p99 ms | max ms | moving buckets: p99 ms | moving buckets: max ms |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
  console.log(`${main}\n\n${byPhase}`);

  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: join(import.meta.dirname, '..'), encoding: 'utf8' }).trim();
  const dirty = git('status', '--porcelain', '--', 'operator', 'sdk') !== '';
  const code = `${git('rev-parse', '--short', 'HEAD')}${dirty ? ' with uncommitted changes in operator/ or sdk/' : ''}`;
  const machine = `${cpus()[0]?.model ?? 'unknown CPU'} x ${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Linux ${release()}, Node ${process.version}`;
  const loads = r.loads.map((l) => l.toFixed(1));
  const section = [
    '<!-- bench:reshard -->',
    '## Online resharding (`npm run bench:reshard`)',
    '',
    `Run ${new Date().toISOString()} (code ${code}) on ${machine}; load average ${loads[0]} at the start, at most ${Math.max(...r.loads).toFixed(1)} during the run, ${loads.at(-1)} at the end (the machine is shared with other work). Two Postgres ${r.postgres} servers from the postgres-patroni image on loopback (test/engines/resharding-harness.ts: initdb's defaults plus wal_level logical; ${r.settings}; data on the host's disk). A 1 -> 2 shard move of ${int(ROWS)} seeded rows (seeded in ${sec(r.seedMs)} s, then VACUUM ANALYZE) driven by the operator's ReshardRunner with its default options, one step every ${STEP_MS} ms plus the step's own time, SQL over direct connections; the shard map a file the SDK follows (LiveShardMap, poll ${100} ms and a directory watch), flipped at once. ${WRITERS} open-loop SDK writers issue ${WRITES_PER_S} writes/s in all (half updates of seeded keys, half inserts of new random keys) from ${WARMUP_S} s before the move to ${WARMUP_S} s after it; every write is acknowledged, none failed, and the rows are counted on both servers at the end.`,
    '',
    main,
    '',
    byPhase,
    '',
    `A write's time runs from its issue to its acknowledgement; "in flight from the fence to the SDK's new map" counts every write of a moving bucket acknowledged after the fence began and issued before the SDK had the new map: those refused by the fence wait for the map and run again on shard 1. Writes are open loop, so a write issued early in that window waits longest (about the whole window), one issued late waits least. Phases start when the runner records them; the initial copy ends at the step that sees every table ready (a resolution of one step).`,
    '',
    `A refused write keeps its pooled connection (the SDK returns a connection the server refused a statement on to its pool; node-postgres' Pool.query dropped it, and the first runs of this bench opened about one connection per refusal: 87 for 75). The cleanup's time is its batched deletes and a count of the moved buckets' rows on the source at every Cleanup step (a full scan hashing every key, ${sec(r.marks.countMs / Math.max(1, r.marks.counts))} s each here).`,
    '',
    `What this does not contain: on a cluster the operator steps every ${RESHARD_TICK_MS / 1000} s (reshard-watch.ts RESHARD_TICK_MS), not every ${STEP_MS} ms, except from the fence to the flip, whose ${cutoverSteps} steps it runs ${CUTOVER_PAUSE_MS} ms apart; its SQL goes through pods/exec (each step's probes are a few execs), so there the fence stands for seconds (about 20 s on kind), not ${sec(r.publishedAt - fenceStart)} s; and a pod sees the new map only when its kubelet refreshes the ConfigMap volume (about a minute by default), which the writes of moving buckets wait for too. Those figures are in [Online resharding on kind](#online-resharding-on-kind-observed-by-npm-run-testreshard).`,
    '<!-- /bench:reshard -->',
  ].join('\n');
  log(`written to ${writeBenchSection('reshard', section)}`);
}

await main();
