import { describe, expect, it } from 'vitest';
import { assignBuckets, toRanges } from '../../../sdk/src/contract/shard-map.ts';
import { buildAll, holdsOf, withHolds } from '../index.ts';
import { modelOf } from '../shared/test-helpers.ts';
import { heldShardCount, shardsOwningOnObjects, withHeldShards } from './held-shards.ts';
import { planMoves } from './resharding.ts';
import { BUCKET_RANGES_ANNOTATION } from './shard-authority.ts';

const shardMapOf = (shards: number, version = shards) => ({
  version,
  ranges: toRanges(assignBuckets(shards)),
});

describe('heldShardCount', () => {
  it('is the highest shard the record needs, plus one: owners in status.shardMap', () => {
    expect(heldShardCount({})).toBe(0);
    expect(heldShardCount({ shardMap: shardMapOf(3) })).toBe(3);
  });

  it('keeps every shard a recorded move names, after the flip too (a departing source)', () => {
    const plan = planMoves(shardMapOf(3), 2);
    const resharding = { phase: 'Cleanup', moves: plan.moves, ranges: plan.ranges };
    // The flip made shards 0 and 1 the owners; the departing shard 2 still has rows to delete.
    expect(heldShardCount({ shardMap: { version: 4, ranges: plan.ranges }, resharding })).toBe(3);
    expect(heldShardCount({ shardMap: { version: 4, ranges: plan.ranges } })).toBe(2);
  });

  it('counts a StatefulSet whose record annotation names buckets, not one it emptied', () => {
    const sts = (name: string, ranges?: string) => ({
      kind: 'StatefulSet',
      metadata: {
        name,
        ...(ranges === undefined ? {} : { annotations: { [BUCKET_RANGES_ANNOTATION]: ranges } }),
      },
    });
    const objects = [
      sts('shop-db-0', '0-512'),
      sts('shop-db-1', ''),
      sts('shop-db-4', '512-1024'),
      sts('shop-db-x', '0-1'),
      sts('shop-cache'),
      { kind: 'Service', metadata: { name: 'shop-db-7' } },
    ];
    expect(shardsOwningOnObjects('shop', objects)).toEqual([0, 4]);
    // A status lost (restored without it) does not drop a shard that holds rows.
    expect(heldShardCount({}, [0, 4])).toBe(5);
  });
});

describe('withHeldShards', () => {
  const model = modelOf({ database: { shards: 2, shardKey: 'user_id' } });

  it('renders the departing shard groups exactly as before the spec lowered the count', () => {
    const three = modelOf({ database: { shards: 3, shardKey: 'user_id' } });
    const held = buildAll(withHeldShards(model, 3)).filter((o) =>
      o.metadata.name.includes('-db-2'),
    );
    const before = buildAll(three).filter((o) => o.metadata.name.includes('-db-2'));
    expect(held.length).toBeGreaterThan(3);
    expect(held).toEqual(before);
  });

  it('never renders fewer shards than the spec asks for', () => {
    expect(withHeldShards(model, 1)).toBe(model);
    expect(withHeldShards(model, 0)).toBe(model);
    expect(withHeldShards(model, 3).database?.shards).toBe(3);
  });
});

describe('the registry: holdsOf and withHolds (what the reconcile keys its plan by)', () => {
  it("gives the database tier's hold by name, and renders it", () => {
    const status = { shardMap: shardMapOf(3) };
    expect(holdsOf('shop', status, [])).toEqual({ database: 3 });
    expect(holdsOf('shop', {}, [])).toEqual({});
    const model = modelOf({ database: { shards: 2, shardKey: 'user_id' } });
    expect(withHolds(model, { database: 3 }).database?.shards).toBe(3);
    expect(withHolds(model, {})).toBe(model);
  });
});
