// ShardSql (resharding-run.ts) over the pg package: a small pool per shard primary. A
// script runs on one checked-out connection; when it fails, that connection is destroyed
// rather than returned, so a half-run BEGIN ... COMMIT never outlives it.
import pg from 'pg';
import type { PoolConfig } from 'pg';
import type { ShardSql, SqlResult } from './resharding-run.ts';

export interface PgShardSql extends ShardSql {
  end(): Promise<void>;
}

export function pgShardSql(
  config: PoolConfig,
  onError: (e: Error) => void = () => undefined,
): PgShardSql {
  const pool = new pg.Pool({ max: 2, connectionTimeoutMillis: 5_000, ...config });
  // An idle connection dropped by a failover: the next checkout opens a new one.
  pool.on('error', onError);
  return {
    async query<R extends object>(text: string, params?: readonly unknown[]) {
      const r = await pool.query(text, params ? [...params] : undefined);
      return { rows: r.rows as R[], rowCount: r.rowCount };
    },
    async script(statements: readonly string[]) {
      const client = await pool.connect();
      const out: SqlResult<Record<string, unknown>>[] = [];
      try {
        for (const s of statements) {
          const r = await client.query(s);
          out.push({ rows: r.rows as Record<string, unknown>[], rowCount: r.rowCount });
        }
      } catch (e) {
        client.release(e as Error);
        throw e;
      }
      client.release();
      return out;
    },
    end: () => pool.end(),
  };
}
