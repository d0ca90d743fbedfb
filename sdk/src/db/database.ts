// Per key: the shard's primary and replica pools. Writes and transactions go to the
// primary (Service <app>-db-<i>); reads go to the replicas (<app>-db-<i>-ro) and fall back
// to the primary when no replica answers or, opt-in, when the one that answered lags.
// Pools are keyed by address, so a new shard map that moves a shard opens new pools and
// ends the old ones, while routing always uses the map in use at the moment of the call.
import pg from 'pg';
import type { PoolClient, PoolConfig, QueryResult, QueryResultRow } from 'pg';
import { bucketOf, shardOfBucket } from '../contract/index.ts';
import type { ShardAddresses, ShardKey, ShardMap } from '../contract/index.ts';
import { ShardRoutingError, isUnavailable } from './errors.ts';
import type { LiveShardMap } from './live-shard-map.ts';

/** What a transaction body or a per-shard task gets: a connection to query on. */
export interface Queryable {
  query<R extends QueryResultRow = QueryResultRow>(
    text: string,
    params?: unknown[],
  ): Promise<QueryResult<R>>;
}

export interface ReadOptions {
  /** Read from the primary: for reading your own write right after it. */
  readonly primary?: boolean;
  /** Go to the primary while the replica's replay lag is above this (one extra round trip). */
  readonly maxLagSeconds?: number;
}

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
  /** Extra pg pool settings for every pool (e.g. `ssl`, from sslmode: db/tls.ts). */
  readonly pool?: Partial<PoolConfig>;
  /** How long a replica that failed is skipped before it is tried again. */
  readonly replicaRetryMs?: number;
  readonly onError?: (where: string, e: Error) => void;
}

// Replay lag in seconds; 0 when everything received is replayed, so an idle primary's old
// last-transaction timestamp does not read as lag.
const LAG_SQL = `SELECT CASE WHEN NOT pg_is_in_recovery()
  OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
  ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END::float8 AS lag`;

export class Database {
  readonly #map: LiveShardMap;
  readonly #options: DatabaseOptions;
  /** One pool per address (host:port). */
  readonly #byAddress = new Map<string, pg.Pool>();
  /** Per shard entry of the map in use: its two pools, found without building a key. */
  #byShard = new WeakMap<ShardAddresses, ShardPools>();
  readonly #unsubscribe: () => void;
  #closed = false;

  constructor(map: LiveShardMap, options: DatabaseOptions) {
    this.#map = map;
    this.#options = options;
    this.#unsubscribe = map.onChange((next) => this.#endPoolsNotIn(next));
  }

  /** The shard map in use. */
  get shardMap(): ShardMap {
    return this.#map.current;
  }

  /** Where a key lives now; a ShardRoutingError when its bucket has no serving shard. */
  route(key: ShardKey): Route {
    const map = this.#map.current;
    const bucket = bucketOf(key, map.buckets);
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
    return this.#pools(this.route(key).shard).primary.query<R>(text, params);
  }

  read<R extends QueryResultRow = QueryResultRow>(
    key: ShardKey,
    text: string,
    params: unknown[] = [],
    options: ReadOptions = {},
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
    // The hot path: one query on the replica pool, no extra await.
    const onReplica =
      maxLag === undefined
        ? pools.replica.query<R>(text, params)
        : this.#readIfFresh<R>(pools.replica, maxLag, text, params);
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

  /** The query on one replica connection if its replay lag is within maxLag, else undefined. */
  async #readIfFresh<R extends QueryResultRow>(
    replica: pg.Pool,
    maxLag: number,
    text: string,
    params: unknown[],
  ): Promise<QueryResult<R> | undefined> {
    const client = await replica.connect();
    let broken: Error | undefined;
    try {
      const lag = (await client.query<{ lag: number }>(LAG_SQL)).rows[0]?.lag ?? 0;
      return lag <= maxLag ? await client.query<R>(text, params) : undefined;
    } catch (e) {
      broken = e as Error;
      throw e;
    } finally {
      client.release(broken && isUnavailable(broken) ? broken : undefined);
    }
  }

  /** BEGIN ... COMMIT on the key's primary; ROLLBACK and rethrow when fn throws. */
  async tx<T>(key: ShardKey, fn: (q: Queryable) => Promise<T>): Promise<T> {
    const client = await this.#pools(this.route(key).shard).primary.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (e) {
      await client.query('ROLLBACK').catch((rollbackError: Error) => (broken = rollbackError));
      throw e;
    } finally {
      client.release(broken);
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
        connectionTimeoutMillis: role === 'replica' ? 1_000 : 5_000,
        idleTimeoutMillis: 30_000,
        keepAlive: true,
        ...o.pool,
      });
      // An idle connection dropped by a failover: the pool replaces it on the next checkout.
      pool.on('error', (e) => o.onError?.(`${role} ${key} idle connection`, e));
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
