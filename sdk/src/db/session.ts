// Read-your-writes. A replica answers with what it has replayed, so a user who writes and
// then reads (signs up, then loads their profile) can be told their write does not exist.
// A session remembers, per shard, the WAL position its last write reached on the primary
// (write-token.ts); its reads go to a replica only once that replica has replayed past it,
// else straight to the primary, which has every committed write. No waiting: the primary
// answers now, and a replica that has caught up serves the next read.
import type { QueryResult, QueryResultRow } from 'pg';
import type { ShardKey } from '../contract/index.ts';
import type { Queryable, ReadOptions } from './queryable.ts';
import { formatWriteToken } from './write-token.ts';
import type { WritePositions } from './write-token.ts';

/** A write's value with the shard it went to and the WAL position it reached there. */
export interface Written<T> {
  readonly value: T;
  readonly shard: number;
  readonly lsn: bigint;
}

/** What a session needs from the router (Database), off the router's public surface. */
export interface SessionPort {
  write<R extends QueryResultRow>(
    key: ShardKey,
    text: string,
    params: unknown[],
  ): Promise<Written<QueryResult<R>>>;
  tx<T>(key: ShardKey, fn: (q: Queryable) => Promise<T>): Promise<Written<T>>;
  read<R extends QueryResultRow>(
    key: ShardKey,
    text: string,
    params: unknown[],
    options: ReadOptions,
    after: WritePositions,
  ): Promise<QueryResult<R>>;
}

/**
 * One user's view of the database that always includes their own writes. Make one per
 * request from the token kept with the user's session (`db.session(token)`), and keep
 * `token` again after a write: `req.session.dbToken = s.token`.
 */
export class DbSession {
  readonly #port: SessionPort;
  readonly #positions: Map<number, bigint>;

  constructor(port: SessionPort, positions: Map<number, bigint>) {
    this.#port = port;
    this.#positions = positions;
  }

  /** The session's write positions as a short string; undefined before any write. */
  get token(): string | undefined {
    return formatWriteToken(this.#positions);
  }

  /** On the key's primary, like `db.write`; the session then reads this write everywhere. */
  async write<R extends QueryResultRow = QueryResultRow>(
    key: ShardKey,
    text: string,
    params: unknown[] = [],
  ): Promise<QueryResult<R>> {
    return this.#note(await this.#port.write<R>(key, text, params));
  }

  /** BEGIN ... COMMIT on the key's primary, like `db.tx`; the commit is read from then on. */
  async tx<T>(key: ShardKey, fn: (q: Queryable) => Promise<T>): Promise<T> {
    return this.#note(await this.#port.tx(key, fn));
  }

  /** Like `db.read`, from a replica only if it has replayed this session's writes. */
  read<R extends QueryResultRow = QueryResultRow>(
    key: ShardKey,
    text: string,
    params: unknown[] = [],
    options: ReadOptions = {},
  ): Promise<QueryResult<R>> {
    return this.#port.read<R>(key, text, params, options, this.#positions);
  }

  #note<T>(w: Written<T>): T {
    if ((this.#positions.get(w.shard) ?? -1n) < w.lsn) this.#positions.set(w.shard, w.lsn);
    return w.value;
  }
}
