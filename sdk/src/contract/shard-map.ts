// The shard map: key -> bucket (hash.ts) -> shard -> addresses. Published by the operator
// as JSON in the ConfigMap <app>-shard-map and mounted into app pods; this module is what
// an app (or the operator) uses to read and route with it. No dependency beyond node:crypto.
import { BUCKETS, HASH_NAME, bucketOf, bucketSql } from './hash.ts';
import type { ShardKey } from './hash.ts';

/** Half-open bucket range [from, to) served by one shard. */
export interface BucketRange {
  readonly from: number;
  readonly to: number;
  readonly shard: number;
}

export interface ShardAddresses {
  readonly index: number;
  /** Read-write: the shard's primary (Service <app>-db-<i>). */
  readonly primary: string;
  /** Read-only: the shard's replicas (Service <app>-db-<i>-ro). */
  readonly replicas: string;
  readonly port: number;
}

/**
 * The SQLSTATE of a write the operator's fence refused because its bucket is being moved to
 * another shard (class SB: "scalable bucket"). The statement, or the whole transaction, was
 * rolled back: it may run again on the bucket's owner in the next map version.
 */
export const FENCE_SQLSTATE = 'SB001';

/**
 * A fence's refusal may name the bucket's next owner in its DETAIL ("moving to shard 2"): the
 * write may be tried there before the new map arrives. That shard refuses it too (SB001) until
 * the operator has opened the bucket there, after the copy has caught up.
 */
export function fenceTargetOf(detail: string | undefined): number | undefined {
  const m = /^moving to shard (\d+)$/.exec(detail ?? '');
  return m ? Number(m[1]) : undefined;
}

export interface ShardMap {
  /** Increases whenever buckets move between shards. */
  readonly version: number;
  readonly buckets: number;
  readonly hash: { readonly name: string; readonly sql: string };
  readonly shardKey?: string;
  readonly database: string;
  readonly ranges: readonly BucketRange[];
  readonly shards: readonly ShardAddresses[];
}

/**
 * Bucket -> shard for `shards` shards, built by growing one shard at a time: shard k
 * takes its fair share from the tail of every existing shard's buckets. Going from n to
 * n+1 shards moves only the ~buckets/(n+1) buckets the new shard gets and nothing else
 * (the consistent-hashing property), so resharding copies the least data.
 */
export function assignBuckets(shards: number, buckets: number = BUCKETS): number[] {
  if (!Number.isInteger(shards) || shards < 1 || shards > buckets)
    throw new RangeError(`bad shard count ${shards}`);
  const owner = new Array<number>(buckets).fill(0);
  for (let k = 1; k < shards; k++) {
    const quota = (s: number) => Math.floor(buckets / (k + 1)) + (s < buckets % (k + 1) ? 1 : 0);
    for (let s = 0; s < k; s++) {
      const mine = owner.flatMap((o, b) => (o === s ? [b] : []));
      for (const b of mine.slice(quota(s))) owner[b] = k;
    }
  }
  return owner;
}

/** Run-length ranges of an assignment, in bucket order. */
export function toRanges(owner: readonly number[]): BucketRange[] {
  const ranges: BucketRange[] = [];
  owner.forEach((shard, b) => {
    const last = ranges[ranges.length - 1];
    if (last && last.shard === shard && last.to === b)
      ranges[ranges.length - 1] = { ...last, to: b + 1 };
    else ranges.push({ from: b, to: b + 1, shard });
  });
  return ranges;
}

/** Buckets [from, to) that leave shard `source` for shard `target`. */
export interface BucketMove {
  readonly from: number;
  readonly to: number;
  readonly source: number;
  readonly target: number;
}

/**
 * What growing from `fromShards` to `toShards` shards moves: the bucket ranges whose rows a
 * resharding must copy (rows are found in SQL by `bucketSql(key) >= from AND < to`) before
 * apps switch to the new map version.
 */
export function bucketMoves(
  fromShards: number,
  toShards: number,
  buckets: number = BUCKETS,
): BucketMove[] {
  const before = assignBuckets(fromShards, buckets);
  const after = assignBuckets(toShards, buckets);
  const moves: BucketMove[] = [];
  before.forEach((source, b) => {
    const target = after[b] ?? source;
    if (target === source) return;
    const last = moves[moves.length - 1];
    if (last && last.to === b && last.source === source && last.target === target)
      moves[moves.length - 1] = { ...last, to: b + 1 };
    else moves.push({ from: b, to: b + 1, source, target });
  });
  return moves;
}

export interface ShardMapInput {
  readonly version: number;
  readonly shards: readonly ShardAddresses[];
  readonly database: string;
  readonly shardKey?: string;
  readonly buckets?: number;
}

export function makeShardMap(input: ShardMapInput): ShardMap {
  const buckets = input.buckets ?? BUCKETS;
  return {
    version: input.version,
    buckets,
    hash: { name: HASH_NAME, sql: bucketSql('$1', buckets) },
    ...(input.shardKey ? { shardKey: input.shardKey } : {}),
    database: input.database,
    ranges: toRanges(assignBuckets(input.shards.length, buckets)),
    shards: input.shards,
  };
}

/** The shard serving `bucket` (binary search over the ranges). */
export function shardOfBucket(map: ShardMap, bucket: number): ShardAddresses {
  let lo = 0;
  let hi = map.ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = map.ranges[mid];
    if (!r) break;
    if (bucket < r.from) hi = mid - 1;
    else if (bucket >= r.to) lo = mid + 1;
    else {
      const shard = map.shards.find((s) => s.index === r.shard);
      if (!shard)
        throw new Error(`shard map v${map.version}: bucket ${bucket} -> unknown shard ${r.shard}`);
      return shard;
    }
  }
  throw new Error(`shard map v${map.version}: no range covers bucket ${bucket}`);
}

/** Where a key lives: its bucket's shard. */
export function shardFor(map: ShardMap, key: ShardKey): ShardAddresses {
  return shardOfBucket(map, bucketOf(key, map.buckets));
}

/** Parse and check a shard map (the mounted JSON): ranges must cover every bucket once. */
export function parseShardMap(json: string): ShardMap {
  const map = JSON.parse(json) as ShardMap;
  if (map.hash?.name !== HASH_NAME)
    throw new Error(`unsupported shard hash ${String(map.hash?.name)}`);
  let next = 0;
  for (const r of map.ranges) {
    if (r.from !== next || r.to <= r.from)
      throw new Error(`shard map ranges must tile the buckets (at ${next})`);
    next = r.to;
  }
  if (next !== map.buckets) throw new Error(`shard map covers ${next} of ${map.buckets} buckets`);
  return map;
}
