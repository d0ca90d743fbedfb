import { describe, expect, it } from 'vitest';
import { modelOf } from '../shared/test-helpers.ts';
import {
  heldShardMap,
  holdLiveShardMap,
  shardMapConfigMap,
  shardMapOf,
  shardsWithoutBuckets,
} from './shard-map.ts';
import { parseShardMap } from '../../../sdk/src/contract/shard-map.ts';

const mapFor = (shards: number) =>
  shardMapOf(modelOf({ database: { shards, shardKey: 'tenant_id' } }))!;

describe('heldShardMap', () => {
  it('publishes the full assignment when no map is live yet', () => {
    const desired = mapFor(3);
    expect(heldShardMap(undefined, desired)).toBe(desired);
    expect(shardsWithoutBuckets(desired)).toEqual([]);
  });

  it('keeps the live ranges and version when shards grow, listing the new shard without buckets', () => {
    const live = mapFor(2);
    const held = heldShardMap(live, mapFor(3));
    expect(held.ranges).toEqual(live.ranges);
    expect(held.version).toBe(live.version);
    expect(held.shards.map((s) => s.index)).toEqual([0, 1, 2]);
    expect(shardsWithoutBuckets(held)).toEqual([2]);
  });

  it('is what the ConfigMap carries when a live map is given', () => {
    const app = modelOf({ database: { shards: 3, shardKey: 'tenant_id' } });
    const [cm] = shardMapConfigMap(app, mapFor(2));
    const published = parseShardMap((cm!['data'] as Record<string, string>)['shard-map.json']!);
    expect(published.ranges).toEqual(mapFor(2).ranges);
    expect(cm!.metadata.annotations?.['scalable.dev/shard-map-version']).toBe('2');
  });
});

describe('holdLiveShardMap', () => {
  const app3 = modelOf({ database: { shards: 3, shardKey: 'tenant_id' } });
  const [desired] = shardMapConfigMap(app3);
  const json = (m: unknown) => JSON.stringify(m, null, 2) + '\n';

  it('returns the desired object itself when nothing is live or nothing moves', () => {
    expect(holdLiveShardMap(desired!, undefined)).toBe(desired);
    expect(holdLiveShardMap(desired!, json(mapFor(3)))).toBe(desired);
    expect(holdLiveShardMap(desired!, 'not json')).toBe(desired);
  });

  it('keeps the live ranges and version when the spec grew', () => {
    const held = holdLiveShardMap(desired!, json(mapFor(2)));
    const map = parseShardMap((held['data'] as Record<string, string>)['shard-map.json']!);
    expect(map.ranges).toEqual(mapFor(2).ranges);
    expect(map.shards).toHaveLength(3);
    expect(held.metadata.annotations?.['scalable.dev/shard-map-version']).toBe('2');
  });
});
