import { describe, expect, it } from 'vitest';
import { parseShardMap } from '../../../sdk/src/contract/shard-map.ts';
import type { K8sObject } from '../shared/chart.ts';
import type { ObservedObject } from '../shared/report.ts';
import { modelOf } from '../shared/test-helpers.ts';
import type { LiveView } from '../tier.ts';
import { buildDatabase } from './build.ts';
import { holdShardMap } from './shard-hold.ts';
import { BUCKET_RANGES_ANNOTATION } from './shard-authority.ts';
import { SHARD_MAP_KEY, shardMapOf, shardsWithoutBuckets } from './shard-map.ts';

const app = (shards: number) => modelOf({ database: { shards, shardKey: 'tenant_id' } });
const mapFor = (shards: number) => shardMapOf(app(shards))!;
const json = (m: unknown) => JSON.stringify(m, null, 2) + '\n';

/** A cluster holding these objects (by kind/name) and this app status. */
function liveOf(objects: readonly K8sObject[], status: Record<string, unknown> = {}): LiveView {
  return {
    object: (o) =>
      objects.find((l) => l.kind === o.kind && l.metadata.name === o.metadata.name) as
        ObservedObject | undefined,
    status,
  };
}

const held = (shards: number, live: LiveView) =>
  holdShardMap(app(shards), buildDatabase(app(shards)), live);
const mapIn = (objects: readonly K8sObject[]) =>
  parseShardMap(
    (objects.find((o) => o.metadata.name === 'shop-shard-map')!['data'] as Record<string, string>)[
      SHARD_MAP_KEY
    ]!,
  );
const rangesOn = (objects: readonly K8sObject[], shard: number) =>
  objects.find((o) => o.kind === 'StatefulSet' && o.metadata.name === `shop-db-${shard}`)!.metadata
    .annotations?.[BUCKET_RANGES_ANNOTATION];

describe('the shard map hold', () => {
  it('publishes the full spread for a new app and records it on each shard', () => {
    const out = held(2, liveOf([]));
    expect(mapIn(out).ranges).toEqual(mapFor(2).ranges);
    expect(shardsWithoutBuckets(mapIn(out))).toEqual([]);
    expect(rangesOn(out, 0)).toBe('0-512');
    expect(rangesOn(out, 1)).toBe('512-1024');
  });

  it('keeps the live ranges when shards grow; the new shard owns no bucket', () => {
    const out = held(3, liveOf(held(2, liveOf([]))));
    expect(mapIn(out).ranges).toEqual(mapFor(2).ranges);
    expect(mapIn(out).shards).toHaveLength(3);
    expect(shardsWithoutBuckets(mapIn(out))).toEqual([2]);
    expect(rangesOn(out, 2)).toBe('');
  });

  it('restores a deleted or unparsable map from the shards, never a new spread', () => {
    const grown = held(3, liveOf(held(2, liveOf([]))));
    const withoutMap = grown.filter((o) => o.metadata.name !== 'shop-shard-map');
    expect(mapIn(held(3, liveOf(withoutMap))).ranges).toEqual(mapFor(2).ranges);
    const garbled = grown.map((o) =>
      o.metadata.name === 'shop-shard-map' ? { ...o, data: { [SHARD_MAP_KEY]: '{oops' } } : o,
    );
    expect(mapIn(held(3, liveOf(garbled))).ranges).toEqual(mapFor(2).ranges);
  });

  it('restores it from the app status when the shards are gone too (database off, then on)', () => {
    const status = { shardMap: { version: 2, ranges: mapFor(2).ranges } };
    const out = held(3, liveOf([], status));
    expect(mapIn(out).ranges).toEqual(mapFor(2).ranges);
    expect(mapIn(out).version).toBe(2);
  });

  it('after a shrink, publishes the shards that stay: a live map as the API server wrote it (sorted keys) is no conflict', () => {
    // 3 shards, then 2 own every bucket (the shrink's flip is on the StatefulSets); the live
    // map lists shard 2 still, its ranges' keys in the API server's order.
    const three = held(3, liveOf(held(3, liveOf([]))));
    const ranges = mapFor(2).ranges;
    const stamped = three.map((o) =>
      o.kind === 'StatefulSet'
        ? {
            ...o,
            metadata: {
              ...o.metadata,
              annotations: {
                ...o.metadata.annotations,
                [BUCKET_RANGES_ANNOTATION]:
                  o.metadata.name === 'shop-db-0'
                    ? '0-512'
                    : o.metadata.name === 'shop-db-1'
                      ? '512-1024'
                      : '',
                'scalable.dev/shard-map-version': '4',
              },
            },
          }
        : o.metadata.name === 'shop-shard-map'
          ? {
              ...o,
              data: {
                [SHARD_MAP_KEY]: json({
                  ...mapFor(3),
                  version: 4,
                  ranges: ranges.map((r) => ({ from: r.from, shard: r.shard, to: r.to })),
                }),
              },
            }
          : o,
    );
    const out = held(2, liveOf(stamped));
    expect(mapIn(out).shards.map((s) => s.index)).toEqual([0, 1]);
    expect(mapIn(out).version).toBe(4);
    expect(mapIn(out).ranges).toEqual(ranges);
  });

  it('does not overwrite a hand edit that moves buckets away from the shard holding them', () => {
    const live = held(2, liveOf([]));
    const moved = { ...mapFor(2), ranges: [{ from: 0, to: 1024, shard: 0 }] };
    const edited = live.map((o) =>
      o.metadata.name === 'shop-shard-map' ? { ...o, data: { [SHARD_MAP_KEY]: json(moved) } } : o,
    );
    const out = held(2, liveOf(edited));
    expect(mapIn(out).ranges).toEqual(moved.ranges); // left as the human wrote it
    expect(rangesOn(out, 1)).toBe('512-1024'); // the record stands
  });

  it("publishes a resharding's cutover: its record wins over the shards' annotations, all shards at once", () => {
    const grown = held(3, liveOf(held(2, liveOf([]))));
    const ranges = mapFor(3).ranges;
    const status = {
      resharding: {
        phase: 'Cutover',
        fromShards: 2,
        toShards: 3,
        mapVersion: 3,
        ranges,
        moves: [],
        publishedAt: '2026-12-07T15:00:00Z',
      },
    };
    const out = held(3, liveOf(grown, status));
    expect(mapIn(out).version).toBe(3);
    expect(mapIn(out).ranges).toEqual(ranges);
    expect(shardsWithoutBuckets(mapIn(out))).toEqual([]);
    for (const i of [0, 1, 2])
      expect(rangesOn(out, i)).toBe(
        ranges
          .filter((r) => r.shard === i)
          .map((r) => `${r.from}-${r.to}`)
          .join(','),
      );
    // Before its cutover (no publishedAt) a move changes nothing the apps read.
    const unpublished: Record<string, unknown> = { ...status.resharding };
    delete unpublished['publishedAt'];
    const before = held(3, liveOf(grown, { resharding: unpublished }));
    expect(mapIn(before).ranges).toEqual(mapFor(2).ranges);
    expect(mapIn(before).version).toBe(mapIn(grown).version);
  });
});
