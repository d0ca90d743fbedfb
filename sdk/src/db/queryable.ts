// What the router's callers hand it and get back, apart from the router itself (session.ts
// uses them too, and must not import the router).
import type { QueryResult, QueryResultRow } from 'pg';

/** What a transaction body or a per-shard task gets: a connection to query on. */
export interface Queryable {
  query<R extends QueryResultRow = QueryResultRow>(
    text: string,
    params?: unknown[],
  ): Promise<QueryResult<R>>;
}

export interface ReadOptions {
  /** Read from the primary (a session's own writes are seen without it: `db.session()`). */
  readonly primary?: boolean;
  /** Go to the primary while the replica's replay lag is above this (one extra round trip). */
  readonly maxLagSeconds?: number;
}
