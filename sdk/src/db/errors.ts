// What can go wrong when routing or reaching a shard, told apart so a read can fall back
// to the primary for exactly the failures that mean "this replica cannot answer now".
import { FENCE_SQLSTATE } from '../contract/index.ts';
import type { ShardKey } from '../contract/index.ts';

/** The key's bucket is not served by any shard of the map in use: refused, never guessed. */
export class ShardRoutingError extends Error {
  override name = 'ShardRoutingError';
  readonly key: ShardKey;
  readonly bucket: number;
  readonly mapVersion: number;
  constructor(key: ShardKey, bucket: number, mapVersion: number, detail: string) {
    super(`key ${String(key)} (bucket ${bucket}): ${detail} in shard map v${mapVersion}`);
    this.key = key;
    this.bucket = bucket;
    this.mapVersion = mapVersion;
  }
}

// SQLSTATEs that say the server, not the statement, is the problem: connection exceptions
// (class 08), shutdowns and "cannot connect now" (57P01-57P03, e.g. a replica still starting),
// and 40001, which on a read-only replica query can only be a recovery conflict.
// pg's two TLS-negotiation failures carry no code: the peer answered the SSLRequest with
// neither 'S' nor 'N' (no Postgres there: seen on kind when a -ro Service without endpoints
// let the packet leave the cluster), or refused TLS. Both happen before any query is sent, so
// the read can go to the primary, whose connection verifies TLS as every connection does.
const UNAVAILABLE_STATES = /^(08...|57P0[123]|40001)$/;
const UNAVAILABLE_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|timeout expired|connection error|ECONNREFUSED|There was an error establishing an SSL connection|The server does not support SSL connections/;

/** True when an error means the server could not serve the query, not that the query is wrong. */
export function isUnavailable(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (/^E[A-Z_]+$/.test(code)) return true; // a socket error: ECONNREFUSED, ETIMEDOUT, ...
    if (UNAVAILABLE_STATES.test(code)) return true;
    return false;
  }
  return UNAVAILABLE_MESSAGES.test(e.message);
}

/** A write refused by the operator's fence: its bucket is being moved to another shard. */
export const isBucketMoving = (e: unknown): boolean =>
  e instanceof Error && (e as { code?: unknown }).code === FENCE_SQLSTATE;

/**
 * The key's bucket was fenced for a move and no newer shard map arrived within the wait
 * (DatabaseOptions.moveWaitMs): nothing was written. `cause` is the fence's refusal.
 */
export class BucketMovingError extends Error {
  override name = 'BucketMovingError';
  readonly key: ShardKey;
  readonly bucket: number;
  readonly mapVersion: number;
  constructor(key: ShardKey, bucket: number, mapVersion: number, waitedMs: number, cause: Error) {
    super(
      `key ${String(key)} (bucket ${bucket}): being moved, and no shard map newer than v${mapVersion} after ${waitedMs} ms`,
      { cause },
    );
    this.key = key;
    this.bucket = bucket;
    this.mapVersion = mapVersion;
  }
}

/**
 * True when the server answered the statement with an error (a SQLSTATE: a constraint, the
 * fence's SB001) over a connection that is still sound, so the connection can be reused.
 */
export function isStatementError(e: unknown): boolean {
  const code = (e as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !isUnavailable(e);
}
