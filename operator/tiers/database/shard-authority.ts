// Which shard holds which buckets' rows: the one fact the shard map must never lose. The
// published ConfigMap is only a copy for apps to read; the record lives where deleting or
// hand-editing that ConfigMap cannot reach it: on each shard's own StatefulSet (annotations),
// and in the app's status (status.shardMap.ranges), which outlives the StatefulSets when the
// database is switched off. The map published is always the record; a live ConfigMap that
// disagrees with it is a conflict the operator reports and does not overwrite.
import type { BucketRange, ShardMap } from '../../../sdk/src/contract/shard-map.ts';
import { BUCKETS } from '../../../sdk/src/contract/hash.ts';

/** On each shard's StatefulSet: the half-open bucket ranges it holds, "0-512,700-800". */
export const BUCKET_RANGES_ANNOTATION = 'scalable.dev/bucket-ranges';

/** The bucket assignment and its version, as recorded. */
export interface Assignment {
  readonly version: number;
  readonly ranges: readonly BucketRange[];
}

export const formatShardRanges = (ranges: readonly BucketRange[], shard: number): string =>
  ranges
    .filter((r) => r.shard === shard)
    .map((r) => `${r.from}-${r.to}`)
    .join(',');

function parseShardRanges(text: string, shard: number): BucketRange[] | undefined {
  const out: BucketRange[] = [];
  for (const part of text.split(',').filter(Boolean)) {
    const m = /^(\d+)-(\d+)$/.exec(part);
    if (!m) return undefined;
    out.push({ from: Number(m[1]), to: Number(m[2]), shard });
  }
  return out;
}

/** Ranges that tile [0, buckets) exactly once, sorted; undefined when they do not. */
export function complete(
  ranges: readonly BucketRange[],
  buckets = BUCKETS,
): BucketRange[] | undefined {
  const sorted = [...ranges].sort((a, b) => a.from - b.from);
  let at = 0;
  for (const r of sorted) {
    if (r.from !== at || r.to <= r.from) return undefined;
    at = r.to;
  }
  return at === buckets ? sorted : undefined;
}

/** The record on the shards' StatefulSets (annotations by shard index), when whole. */
export function assignmentOnShards(
  shards: readonly { readonly index: number; readonly annotations?: Record<string, string> }[],
  versionAnnotation: string,
): Assignment | undefined {
  const ranges: BucketRange[] = [];
  let version = 0;
  for (const s of shards) {
    const text = s.annotations?.[BUCKET_RANGES_ANNOTATION];
    if (text === undefined) continue;
    const mine = parseShardRanges(text, s.index);
    if (!mine) return undefined;
    ranges.push(...mine);
    version = Math.max(version, Number(s.annotations?.[versionAnnotation] ?? 0));
  }
  const whole = complete(ranges);
  return whole && version > 0 ? { version, ranges: whole } : undefined;
}

/** The record in the app's status (status.shardMap), when whole. */
export function assignmentInStatus(
  status: Readonly<Record<string, unknown>>,
): Assignment | undefined {
  const sm = status['shardMap'] as { version?: unknown; ranges?: unknown } | undefined;
  if (!sm || typeof sm.version !== 'number' || !Array.isArray(sm.ranges)) return undefined;
  const ranges = (sm.ranges as Partial<BucketRange>[]).filter(
    (r): r is BucketRange =>
      typeof r.from === 'number' && typeof r.to === 'number' && typeof r.shard === 'number',
  );
  const whole = complete(ranges);
  return whole ? { version: sm.version, ranges: whole } : undefined;
}

/**
 * The assignment a resharding's cutover made the record (status.resharding with publishedAt):
 * it wins over the shards' annotations until the next reconcile has stamped it there. One
 * status write flips it, so no reader ever sees half of the shards moved.
 */
export function assignmentInResharding(
  status: Readonly<Record<string, unknown>>,
): Assignment | undefined {
  return publishedMove(status['resharding'] as MoveOnRecord | undefined);
}

/** What of status.resharding names the cutover's assignment. */
interface MoveOnRecord {
  readonly publishedAt?: unknown;
  readonly mapVersion?: unknown;
  readonly ranges?: unknown;
}

/** The assignment a move's record names once its cutover published it. */
export function publishedMove(r: MoveOnRecord | undefined): Assignment | undefined {
  if (!r || typeof r.publishedAt !== 'string' || typeof r.mapVersion !== 'number') return undefined;
  return assignmentInStatus({ shardMap: { version: r.mapVersion, ranges: r.ranges } });
}

/**
 * Which assignment is the record: a published move's, until the shards' StatefulSets carry
 * it (or a newer one); else theirs; else `fallback` (the app's status, the live map).
 */
export function assignmentOfRecord(
  moved: Assignment | undefined,
  onShards: Assignment | undefined,
  fallback: () => Assignment | undefined,
): Assignment | undefined {
  if (moved && (!onShards || moved.version > onShards.version)) return moved;
  return onShards ?? fallback();
}

// Not JSON.stringify: ranges read back from the API server (status, a ConfigMap it wrote)
// have their keys sorted, ranges parsed from an annotation do not.
const canonical = (ranges: readonly BucketRange[]): string =>
  [...ranges]
    .sort((x, y) => x.from - y.from || x.to - y.to)
    .map((r) => `${r.from}-${r.to}:${r.shard}`)
    .join(',');

/** The same buckets to the same shards, whatever the order of the ranges or of their keys. */
export const sameRanges = (a: readonly BucketRange[], b: readonly BucketRange[]): boolean =>
  canonical(a) === canonical(b);

/** The buckets a map would route away from the shard that holds their rows. */
export function movedBuckets(map: ShardMap, record: Assignment): string[] {
  const moved: string[] = [];
  for (const r of record.ranges)
    for (const p of map.ranges)
      if (p.shard !== r.shard && p.from < r.to && r.from < p.to)
        moved.push(
          `${Math.max(p.from, r.from)}-${Math.min(p.to, r.to)} (shard ${r.shard} -> ${p.shard})`,
        );
  return moved;
}
