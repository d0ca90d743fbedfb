// Key -> bucket, identically in TypeScript and in Postgres SQL.
//
// Why sha256 and not hashtextextended/hashint8extended: those are Postgres-internal
// (Jenkins lookup3) and differ between text and bigint, so reproducing them needs a port
// of src/common/hashfn.c and stays tied to one server's internals. sha256() is SQL on every
// supported major (16-18, since 11), survives FIPS mode (md5() does not), and is
// node:crypto in TypeScript, so equality is by construction. The first 4 digest bytes,
// read as an unsigned big-endian integer, modulo the bucket count, give the bucket.
// Bigint keys hash their canonical decimal text (int8out == BigInt#toString), so
// 42, 42n and '42' share a bucket: a key is a key, whatever column type holds it.
import { hash } from 'node:crypto';

/** Fixed bucket count: resharding moves whole buckets, never rehashes keys. */
export const BUCKETS = 1024;

export const HASH_NAME = 'sha256-u32be-mod';

export type ShardKey = string | bigint | number;

/** Canonical text of a key: what Postgres's `::text` gives for text and bigint. */
export function keyText(key: ShardKey): string {
  if (typeof key === 'string') return key;
  if (typeof key === 'number') {
    if (!Number.isSafeInteger(key))
      throw new RangeError(`shard key ${key} is not a safe integer; pass a bigint`);
    return BigInt(key).toString();
  }
  return key.toString();
}

/** Bucket of a key in [0, buckets). */
export function bucketOf(key: ShardKey, buckets: number = BUCKETS): number {
  if (!Number.isInteger(buckets) || buckets < 1)
    throw new RangeError(`buckets must be a positive integer`);
  // One-shot hash: no Hash object per key (this runs on every routed query).
  const digest = hash('sha256', keyText(key), 'buffer');
  return digest.readUInt32BE(0) % buckets;
}

/**
 * The same function as a SQL expression over `expr` (any type with a text cast: text,
 * varchar, bigint, integer). `bit(32)::bigint` reads the 4 bytes unsigned.
 */
export function bucketSql(expr: string, buckets: number = BUCKETS): string {
  return (
    `(('x' || encode(substring(sha256(convert_to((${expr})::text, 'UTF8')) from 1 for 4), 'hex'))` +
    `::bit(32)::bigint % ${buckets})::integer`
  );
}

/** DDL for an IMMUTABLE SQL function `name(text)` returning the bucket (usable in indexes). */
export function bucketFunctionSql(name = 'scalable_bucket', buckets: number = BUCKETS): string {
  return (
    `CREATE OR REPLACE FUNCTION ${name}(key text) RETURNS integer ` +
    `LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE RETURN ${bucketSql('key', buckets)};`
  );
}
