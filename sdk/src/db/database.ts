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
  /** Extra pg pool settings for every pool (e.g. `ssl` once the TLS settings exist). */
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
  readonly #pools = new Map<string, pg.Pool>();
  /** Replica address -> time before which reads skip it. */
  readonly #replicaDownUntil = new Map<string, number>();
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
    return this.#primary(this.route(key).shard).query<R>(text, params);
  }

  async read<R extends QueryResultRow = QueryResultRow>(
    key: ShardKey,
    text: string,
    params: unknown[] = [],
    options: ReadOptions = {},
  ): Promise<QueryResult<R>> {
    const { shard } = this.route(key);
    const primary = this.#primary(shard);
    const replicaAddr = address(shard.replicas, shard.port);
    if (options.primary || (this.#replicaDownUntil.get(replicaAddr) ?? 0) > Date.now())
      return primary.query<R>(text, params);
    const maxLag = options.maxLagSeconds ?? this.#options.replicaMaxLagSeconds;
    try {
      const replica = this.#pool(shard.replicas, shard.port, 'replica');
      if (maxLag === undefined) return await replica.query<R>(text, params);
      const client = await replica.connect();
      let broken: Error | undefined;
      try {
        const lag = (await client.query<{ lag: number }>(LAG_SQL)).rows[0]?.lag ?? 0;
        if (lag <= maxLag) return await client.query<R>(text, params);
      } catch (e) {
        broken = e as Error;
        throw e;
      } finally {
        client.release(broken && isUnavailable(broken) ? broken : undefined);
      }
    } catch (e) {
      if (!isUnavailable(e)) throw e;
      this.#replicaDownUntil.set(replicaAddr, Date.now() + (this.#options.replicaRetryMs ?? 1_000));
      this.#options.onError?.(`replica ${replicaAddr}`, e as Error);
    }
    return primary.query<R>(text, params);
  }

  /** BEGIN ... COMMIT on the key's primary; ROLLBACK and rethrow when fn throws. */
  async tx<T>(key: ShardKey, fn: (q: Queryable) => Promise<T>): Promise<T> {
    const client = await this.#primary(this.route(key).shard).connect();
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
        const client: PoolClient = await this.#primary(shard).connect();
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
    await Promise.all([...this.#pools.values()].map((p) => p.end()));
    this.#pools.clear();
  }

  #primary(shard: ShardAddresses): pg.Pool {
    return this.#pool(shard.primary, shard.port, 'primary');
  }

  #pool(host: string, port: number, role: 'primary' | 'replica'): pg.Pool {
    if (this.#closed) throw new Error('database client is closed');
    const key = address(host, port);
    let pool = this.#pools.get(key);
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
      this.#pools.set(key, pool);
    }
    return pool;
  }

  #endPoolsNotIn(map: ShardMap): void {
    const wanted = new Set(
      map.shards.flatMap((s) => [address(s.primary, s.port), address(s.replicas, s.port)]),
    );
    for (const [key, pool] of this.#pools) {
      if (wanted.has(key)) continue;
      this.#pools.delete(key);
      // Checked-out clients finish their query first; pg ends them on release.
      void pool.end().catch((e: Error) => this.#options.onError?.(`ending pool ${key}`, e));
    }
  }
}

const address = (host: string, port: number) => `${host}:${port}`;
