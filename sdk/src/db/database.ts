// Per key: the shard's primary and replica pools. Writes and transactions go to the
// primary (Service <app>-db-<i>); reads go to the replicas (<app>-db-<i>-ro) and fall back
// to the primary when no replica answers, when the one that answered has not replayed the
// reading session's own writes (read-your-writes, session.ts), or, opt-in, when it lags.
// Pools are keyed by address, so a new shard map that moves a shard opens new pools and
// ends the old ones, while routing always uses the map in use at the moment of the call.
import pg from 'pg';
import type { PoolClient, PoolConfig, QueryResult, QueryResultRow } from 'pg';
import type { Queryable, ReadOptions } from './queryable.ts';
import { bucketOf, fenceTargetOf, shardOfBucket } from '../contract/index.ts';
import type { ShardAddresses, ShardKey, ShardMap } from '../contract/index.ts';
import {
  BucketMovingError,
  ShardRoutingError,
  isBucketMoving,
  isStatementError,
  isUnavailable,
} from './errors.ts';
import type { LiveShardMap } from './live-shard-map.ts';
import { DbSession } from './session.ts';
import type { SessionPort } from './session.ts';
import { parseLsn, parseWriteToken } from './write-token.ts';
import type { WritePositions } from './write-token.ts';

export type { Queryable, ReadOptions } from './queryable.ts';

export interface Route {
  readonly key: ShardKey;
  readonly bucket: number;
  readonly shard: ShardAddresses;
  readonly mapVersion: number;
}

export interface DatabaseOptions {
  readonly database: string;
  readonly user: string;
  readonly password?: string;
  readonly poolMax: number;
  readonly replicaMaxLagSeconds?: number;
  /** A replica that has not accepted the connection by then is skipped for the primary (1000). */
  readonly replicaConnectTimeoutMs?: number;
  /** Extra pg pool settings for every pool (e.g. `ssl`, from sslmode: db/tls.ts). */
  readonly pool?: Partial<PoolConfig>;
  /** How long a replica that failed is skipped before it is tried again. */
  readonly replicaRetryMs?: number;
  readonly onError?: (where: string, e: Error) => void;
  /**
   * How long a write whose bucket the operator has fenced for a move (SQLSTATE SB001) waits
   * for a newer shard map before it fails with a BucketMovingError (120000). Once one is in
   * use the write runs again, on the bucket's owner in it. The new map reaches a pod when its
   * kubelet refreshes the ConfigMap volume (within its sync period, 1 min by default): the
   * default covers that twice (on kind, 30 s failed a write).
   */
  readonly moveWaitMs?: number;
}

/** DatabaseOptions.moveWaitMs's default: twice the kubelet's default sync period. */
export const DEFAULT_MOVE_WAIT_MS = 120_000;

/** How often a fenced write re-reads the shard map file (the directory watch is quicker). */
const MOVE_POLL_MS = 100;
/** How often a write redirected to a bucket's next owner is tried there while it refuses. */
const REDIRECT_POLL_MS = 250;

// What a replica has: its replay lag in seconds (0 when everything received is replayed, so
// an idle primary's old last-transaction timestamp does not read as lag), and the WAL
// position it has replayed (a primary behind the -ro Service: the position it has written).
const FRESHNESS_SQL = `SELECT CASE WHEN NOT pg_is_in_recovery()
  OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
  ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END::float8 AS lag,
  (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
   ELSE pg_current_wal_lsn() END)::text AS lsn`;

// After a commit, on its connection: the insert position is at or past the end of the
// commit record whatever synchronous_commit says (the written position, pg_current_wal_lsn(),
// may still be short of it under asynchronous commit). It may name a page header past the
// last record; a replica then passes it with the next record written, and until then the
// read goes to the primary: never stale, at worst not offloaded.
const WRITE_POSITION_SQL = 'SELECT pg_current_wal_insert_lsn()::text AS lsn';

/** What a read asks of a replica beyond answering. */
interface Freshness {
  readonly maxLag: number | undefined;
  /** The WAL position the replica must have replayed: the reading session's last write. */
  readonly minLsn: bigint | undefined;
}

export class Database {
  readonly #map: LiveShardMap;
  readonly #options: DatabaseOptions;
  /** One pool per address (host:port). */
  readonly #byAddress = new Map<string, pg.Pool>();
  /** Per shard entry of the map in use: its two pools, found without building a key. */
  #byShard = new WeakMap<ShardAddresses, ShardPools>();
  /**
   * Per replica connection, the highest WAL position seen replayed on it. A connection stays
   * on one server and replay only moves forward there, so a position it already showed
   * covers every token at or below it without asking again.
   */
  readonly #replayed = new WeakMap<pg.PoolClient, bigint>();
  /** What a DbSession needs from this router, kept off its public surface. */
  readonly #sessionPort: SessionPort = {
    write: (key, text, params) => this.#writeAt(key, text, params),
    tx: (key, fn) => this.#tx(key, fn, true),
    read: (key, text, params, options, after) => this.#read(key, text, params, options, after),
  };
  readonly #unsubscribe: () => void;
  #closed = false;
  /** Buckets a fence sent to their next owner, which took a write: where they are now. */
  readonly #opened = new Map<number, { shard: ShardAddresses; mapVersion: number }>();

  constructor(map: LiveShardMap, options: DatabaseOptions) {
    this.#map = map;
    this.#options = options;
    this.#unsubscribe = map.onChange((next) => {
      this.#opened.clear();
      this.#endPoolsNotIn(next);
    });
  }

  /** The shard map in use. */
  get shardMap(): ShardMap {
    return this.#map.current;
  }

  /** Where a key lives now; a ShardRoutingError when its bucket has no serving shard. */
  route(key: ShardKey): Route {
    const map = this.#map.current;
    const bucket = bucketOf(key, map.buckets);
    // A bucket this client already wrote on its next owner (a fence named it) stays there
    // until the map moves on: its reads then find what it wrote.
    const opened = this.#opened.get(bucket);
    if (opened?.mapVersion === map.version)
      return { key, bucket, shard: opened.shard, mapVersion: map.version };
    try {
      return { key, bucket, shard: shardOfBucket(map, bucket), mapVersion: map.version };
    } catch (e) {
      const detail = (e as Error).message.replace(/^shard map v\d+: /, '');
      throw new ShardRoutingError(key, bucket, map.version, detail);
    }
  }

  async write<R extends QueryResultRow = QueryResultRow>(
    key: ShardKey,
    text: string,
    params: unknown[] = [],
  ): Promise<QueryResult<R>> {
    return this.#onOwner(key, (shard) => keptQuery<R>(this.#pools(shard).primary, text, params));
  }

  /**
   * Runs a primary operation on the key's shard. When the operator's fence refuses it (the
   * bucket is being moved: the statement or transaction was rolled back, nothing written), it
   * runs again on the shard the refusal names as the next owner, if the map in use lists it,
   * and there again every REDIRECT_POLL_MS while that shard refuses too (not open yet); it
   * follows a newer shard map as soon as one arrives; past moveWaitMs, a BucketMovingError.
   */
  async #onOwner<T>(key: ShardKey, run: (shard: ShardAddresses) => Promise<T>): Promise<T> {
    const start = Date.now();
    const deadline = start + (this.#options.moveWaitMs ?? DEFAULT_MOVE_WAIT_MS);
    // The shard a refusal named, for the map version it was named under.
    let redirect: { shard: ShardAddresses; mapVersion: number } | undefined;
    const tried = new Set<number>();
    for (;;) {
      const route = this.route(key);
      if (redirect && redirect.mapVersion !== route.mapVersion) redirect = undefined;
      const shard = redirect?.shard ?? route.shard;
      try {
        const result = await run(shard);
        if (redirect && this.#map.current.version === redirect.mapVersion)
          this.#opened.set(route.bucket, redirect);
        return result;
      } catch (e) {
        if (!isBucketMoving(e)) throw e;
        tried.add(shard.index);
        this.#options.onError?.(
          `bucket ${route.bucket} moving (map v${route.mapVersion}, shard ${shard.index})`,
          e as Error,
        );
        const next = fenceTargetOf((e as { detail?: string }).detail);
        const listed = this.#map.current.shards.find((s) => s.index === next);
        if (listed && !tried.has(listed.index)) {
          redirect = { shard: listed, mapVersion: route.mapVersion };
          continue; // a first try on the next owner at once
        }
        const newer = await this.#mapNewerThan(
          route.mapVersion,
          redirect ? Math.min(deadline, Date.now() + REDIRECT_POLL_MS) : deadline,
        );
        if (!newer && Date.now() >= deadline)
          throw new BucketMovingError(
            key,
            route.bucket,
            route.mapVersion,
            Date.now() - start,
            e as Error,
          );
      }
    }
  }

  /** Waits until the map in use is newer than `version` (true) or the deadline (false). */
  async #mapNewerThan(version: number, deadline: number): Promise<boolean> {
    for (;;) {
      if (this.#map.current.version > version) return true;
      const left = deadline - Date.now();
      if (left <= 0 || this.#closed) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(left, MOVE_POLL_MS));
        const off = this.#map.onChange(done);
        function done(): void {
          clearTimeout(timer);
          off();
          resolve();
        }
      });
      this.#map.refresh();
    }
  }

  /**
   * A session that reads its own writes: its reads go to a replica only once that replica
   * has replayed the session's last write on the key's shard, else to the primary. `token`
   * is a previous session's `token` (kept with the user's session): the guarantee carries
   * over requests and processes.
   */
  session(token?: string): DbSession {
    return new DbSession(this.#sessionPort, parseWriteToken(token));
  }

  read<R extends QueryResultRow = QueryResultRow>(
    key: ShardKey,
    text: string,
    params: unknown[] = [],
    options: ReadOptions = {},
  ): Promise<QueryResult<R>> {
    return this.#read<R>(key, text, params, options, undefined);
  }

  /** `after`: a session's write positions; the replica must have replayed the shard's. */
  #read<R extends QueryResultRow>(
    key: ShardKey,
    text: string,
    params: unknown[],
    options: ReadOptions,
    after: WritePositions | undefined,
  ): Promise<QueryResult<R>> {
    let shard: ShardAddresses;
    try {
      shard = this.route(key).shard;
    } catch (e) {
      return Promise.reject(e as Error); // a routing error rejects, as every other one does
    }
    const pools = this.#pools(shard);
    if (options.primary || pools.replicaDownUntil > Date.now())
      return pools.primary.query<R>(text, params);
    const maxLag = options.maxLagSeconds ?? this.#options.replicaMaxLagSeconds;
    const minLsn = after?.get(shard.index);
    // The hot path: one query on the replica pool, no extra await.
    const onReplica =
      maxLag === undefined && minLsn === undefined
        ? pools.replica.query<R>(text, params)
        : this.#readIfFresh<R>(pools.replica, { maxLag, minLsn }, text, params);
    return onReplica.then(
      (result) => result ?? pools.primary.query<R>(text, params),
      (e: unknown) => {
        if (!isUnavailable(e)) throw e;
        pools.replicaDownUntil = Date.now() + (this.#options.replicaRetryMs ?? 1_000);
        this.#options.onError?.(`replica ${shard.replicas}:${shard.port}`, e as Error);
        return pools.primary.query<R>(text, params);
      },
    );
  }

  /** The query on one replica connection if that server is fresh enough, else undefined. */
  async #readIfFresh<R extends QueryResultRow>(
    replica: pg.Pool,
    want: Freshness,
    text: string,
    params: unknown[],
  ): Promise<QueryResult<R> | undefined> {
    const client = await replica.connect();
    let broken: Error | undefined;
    try {
      return (await this.#isFresh(client, want)) ? await client.query<R>(text, params) : undefined;
    } catch (e) {
      broken = e as Error;
      throw e;
    } finally {
      client.release(broken && isUnavailable(broken) ? broken : undefined);
    }
  }

  async #isFresh(client: pg.PoolClient, { maxLag, minLsn }: Freshness): Promise<boolean> {
    if (
      maxLag === undefined &&
      minLsn !== undefined &&
      minLsn <= (this.#replayed.get(client) ?? -1n)
    )
      return true;
    const row = (await client.query<{ lag: number; lsn: string | null }>(FRESHNESS_SQL)).rows[0];
    const replayed = row?.lsn ? parseLsn(row.lsn) : -1n;
    this.#replayed.set(client, replayed);
    return (maxLag === undefined || (row?.lag ?? 0) <= maxLag) && replayed >= (minLsn ?? -1n);
  }

  /** BEGIN ... COMMIT on the key's primary; ROLLBACK and rethrow when fn throws. */
  async tx<T>(key: ShardKey, fn: (q: Queryable) => Promise<T>): Promise<T> {
    return (await this.#tx(key, fn, false)).value;
  }

  /** A write on the key's primary and the WAL position it reached there. */
  async #writeAt<R extends QueryResultRow>(
    key: ShardKey,
    text: string,
    params: unknown[],
  ): Promise<{ value: QueryResult<R>; shard: number; lsn: bigint }> {
    return this.#onOwner(key, async (shard) => {
      const client = await this.#pools(shard).primary.connect();
      try {
        const value = await client.query<R>(text, params);
        return { value, shard: shard.index, lsn: await writePosition(client) };
      } finally {
        client.release();
      }
    });
  }

  /** `track`: also the WAL position the commit reached (one more round trip). */
  async #tx<T>(
    key: ShardKey,
    fn: (q: Queryable) => Promise<T>,
    track: boolean,
  ): Promise<{ value: T; shard: number; lsn: bigint }> {
    // Refused by a fence, the transaction was rolled back whole, so fn runs again whole on
    // the new owner (as after a serialization failure): fn's effects must stay inside it.
    return this.#onOwner(key, (shard) => this.#txOn(shard, fn, track));
  }

  async #txOn<T>(
    shard: ShardAddresses,
    fn: (q: Queryable) => Promise<T>,
    track: boolean,
  ): Promise<{ value: T; shard: number; lsn: bigint }> {
    const client = await this.#pools(shard).primary.connect();
    let broken: Error | undefined;
    let value: T;
    try {
      await client.query('BEGIN');
      value = await fn(client);
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
      client.release(broken);
      throw e;
    }
    try {
      return { value, shard: shard.index, lsn: track ? await writePosition(client) : 0n };
    } finally {
      client.release();
    }
  }

  /** Run fn on every shard's primary (schema migrations): shards listed without buckets too. */
  async forEachShard<T>(fn: (q: Queryable, shard: ShardAddresses) => Promise<T>): Promise<T[]> {
    return Promise.all(
      this.#map.current.shards.map(async (shard) => {
        const client: PoolClient = await this.#pools(shard).primary.connect();
        try {
          return await fn(client, shard);
        } finally {
          client.release();
        }
      }),
    );
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    await Promise.all([...this.#byAddress.values()].map((p) => p.end()));
    this.#byAddress.clear();
  }

  #pools(shard: ShardAddresses): ShardPools {
    let pools = this.#byShard.get(shard);
    if (!pools) {
      pools = {
        primary: this.#pool(shard.primary, shard.port, 'primary'),
        replica: this.#pool(shard.replicas, shard.port, 'replica'),
        replicaDownUntil: 0,
      };
      this.#byShard.set(shard, pools);
    }
    return pools;
  }

  #pool(host: string, port: number, role: 'primary' | 'replica'): pg.Pool {
    if (this.#closed) throw new Error('database client is closed');
    const key = address(host, port);
    let pool = this.#byAddress.get(key);
    if (!pool) {
      const o = this.#options;
      pool = new pg.Pool({
        host,
        port,
        database: o.database,
        user: o.user,
        ...(o.password === undefined ? {} : { password: o.password }),
        max: o.poolMax,
        // A replica that does not answer quickly is skipped for the primary.
        connectionTimeoutMillis: role === 'replica' ? (o.replicaConnectTimeoutMs ?? 1_000) : 5_000,
        idleTimeoutMillis: 30_000,
        keepAlive: true,
        ...o.pool,
      });
      // An idle connection dropped by a failover: the pool replaces it on the next checkout.
      pool.on('error', (e) => o.onError?.(`${role} ${key} idle connection`, e));
      // A checked-out connection has no listener of the pool's: one that dies between two
      // of its queries (the server gone mid-transaction; a pooler reports that as a FATAL
      // error at once) would emit an unhandled 'error' and end the process. Its next query
      // fails instead, and the release drops it (pg-pool never reuses a broken client).
      pool.on('connect', (client) =>
        client.on('error', (e) => o.onError?.(`${role} ${key} connection`, e)),
      );
      this.#byAddress.set(key, pool);
    }
    return pool;
  }

  #endPoolsNotIn(map: ShardMap): void {
    const wanted = new Set(
      map.shards.flatMap((s) => [address(s.primary, s.port), address(s.replicas, s.port)]),
    );
    this.#byShard = new WeakMap();
    for (const [key, pool] of this.#byAddress) {
      if (wanted.has(key)) continue;
      this.#byAddress.delete(key);
      // Checked-out clients finish their query first; pg ends them on release.
      void pool.end().catch((e: Error) => this.#options.onError?.(`ending pool ${key}`, e));
    }
  }
}

interface ShardPools {
  readonly primary: pg.Pool;
  readonly replica: pg.Pool;
  /** Time before which reads skip a replica pool that just failed. */
  replicaDownUntil: number;
}

const address = (host: string, port: number) => `${host}:${port}`;

async function writePosition(client: pg.PoolClient): Promise<bigint> {
  const lsn = (await client.query<{ lsn: string }>(WRITE_POSITION_SQL)).rows[0]?.lsn;
  if (!lsn) throw new Error('the primary did not report its WAL position');
  return parseLsn(lsn);
}

/**
 * One query on a pooled connection. pg-pool's own query drops the connection after any
 * error; a statement the server refused (a constraint, every write the fence refuses at a
 * cutover) leaves it sound, so it goes back to the pool (after a ROLLBACK, harmless when no
 * transaction is open, in case the text opened one) instead of costing a new connection.
 */
async function keptQuery<R extends QueryResultRow>(
  pool: pg.Pool,
  text: string,
  params: unknown[],
): Promise<QueryResult<R>> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    return await client.query<R>(text, params);
  } catch (e) {
    broken = e as Error;
    if (isStatementError(e))
      broken = await client.query('ROLLBACK').then(
        () => undefined,
        (rollbackError: Error) => rollbackError,
      );
    throw e;
  } finally {
    client.release(broken);
  }
}
