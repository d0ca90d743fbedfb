// The schema, created on every shard (each holds its users' rows). Both tables are keyed
// by user_id, the shard key, so a user's photos live on the same shard as the user.
import type { Database } from '@scalable-dev/sdk';

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS users (
  user_id text PRIMARY KEY,
  name text NOT NULL,
  password_hash text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS photos (
  user_id text NOT NULL REFERENCES users,
  photo_id text NOT NULL,
  caption text NOT NULL DEFAULT '',
  image bytea NOT NULL,
  thumbnail bytea,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, photo_id)
);
CREATE INDEX IF NOT EXISTS photos_timeline ON photos (user_id, created_at DESC);
`;

/**
 * Idempotent; every web pod runs it at start. A lock keeps concurrent starts apart: a
 * transaction-level one, released by COMMIT on the connection that took it. Through a
 * transaction-mode pooler (database.pooler) each statement outside a transaction may run on
 * another server connection, so a session lock could be left held on one nobody unlocks.
 */
export async function migrate(db: Database): Promise<void> {
  await db.forEachShard(async (q) => {
    await q.query('BEGIN');
    try {
      await q.query('SELECT pg_advisory_xact_lock(7243)');
      await q.query(SCHEMA);
      await q.query('COMMIT');
    } catch (e) {
      await q.query('ROLLBACK').catch(() => undefined);
      throw e;
    }
  });
}
