import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  BUCKETS,
  assignBuckets,
  bucketMoves,
  bucketOf,
  bucketSql,
  makeShardMap,
  parseShardMap,
  shardFor,
  toRanges,
} from './index.ts';

const addresses = (n: number) =>
  Array.from({ length: n }, (_, index) => ({
    index,
    primary: `shop-db-${index}.prod.svc`,
    replicas: `shop-db-${index}-ro.prod.svc`,
    port: 5432,
  }));

describe('bucketOf', () => {
  it('is the first 4 bytes of sha256, unsigned big-endian, mod the bucket count', () => {
    const d = createHash('sha256').update('customer-42').digest();
    expect(bucketOf('customer-42')).toBe(d.readUInt32BE(0) % BUCKETS);
  });

  it('hashes integers by their decimal text, so 42, 42n and "42" agree', () => {
    expect(bucketOf(42)).toBe(bucketOf('42'));
    expect(bucketOf(42n)).toBe(bucketOf('42'));
    expect(bucketOf(-9223372036854775808n)).toBe(bucketOf('-9223372036854775808'));
  });

  it('refuses unsafe numbers rather than routing a rounded key', () => {
    expect(() => bucketOf(2 ** 60)).toThrow(/bigint/);
  });

  it('stays in range and spreads keys evenly', () => {
    const counts = new Array<number>(BUCKETS).fill(0);
    for (let i = 0; i < 102_400; i++) counts[bucketOf(`k${i}`)]!++;
    expect(Math.min(...counts)).toBeGreaterThan(50);
    expect(Math.max(...counts)).toBeLessThan(160);
  });

  it('has a SQL twin over any expression', () => {
    expect(bucketSql('customer_id')).toContain('sha256(convert_to((customer_id)::text');
    expect(bucketSql('$1', 16)).toMatch(/% 16\)::integer$/);
  });
});

describe('assignBuckets', () => {
  it('gives every shard a fair share', () => {
    for (const n of [1, 2, 3, 7, 64]) {
      const owner = assignBuckets(n);
      const sizes = Array.from({ length: n }, (_, s) => owner.filter((o) => o === s).length);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    }
  });

  it('moves only the buckets the new shard takes when growing by one', () => {
    for (let n = 1; n < 20; n++) {
      const before = assignBuckets(n);
      const after = assignBuckets(n + 1);
      const moved = before.flatMap((o, b) => (after[b] !== o ? [after[b]] : []));
      expect(moved.every((to) => to === n)).toBe(true);
      expect(moved.length).toBe(after.filter((o) => o === n).length);
    }
  });
});

describe('shard map', () => {
  it('tiles the buckets with ranges and routes keys to their shard', () => {
    const map = makeShardMap({
      version: 3,
      shards: addresses(3),
      database: 'shop',
      shardKey: 'customer_id',
    });
    expect(map.ranges[0]).toEqual({ from: 0, to: 342, shard: 0 });
    expect(parseShardMap(JSON.stringify(map))).toEqual(map);
    const owner = assignBuckets(3);
    for (const key of ['a', 'b', 'customer-7', 123456789n]) {
      expect(shardFor(map, key).index).toBe(owner[bucketOf(key)]);
    }
    expect(shardFor(map, 'a').primary).toMatch(/^shop-db-\d\.prod\.svc$/);
  });

  it('one shard holds every bucket in one range', () => {
    const map = makeShardMap({ version: 1, shards: addresses(1), database: 'shop' });
    expect(map.ranges).toEqual([{ from: 0, to: BUCKETS, shard: 0 }]);
    expect(shardFor(map, 'anything').index).toBe(0);
  });

  it('rejects a map whose ranges leave a gap', () => {
    const map = makeShardMap({ version: 1, shards: addresses(2), database: 'shop' });
    const broken = { ...map, ranges: map.ranges.slice(1) };
    expect(() => parseShardMap(JSON.stringify(broken))).toThrow(/tile/);
    expect(toRanges([0, 0, 1, 0])).toHaveLength(3);
  });
});

describe('bucketMoves', () => {
  it('lists exactly the buckets a resharding must copy, all to the new shards', () => {
    const moves = bucketMoves(2, 3);
    expect(moves.every((m) => m.target === 2 && m.source < 2)).toBe(true);
    const moved = moves.reduce((n, m) => n + m.to - m.from, 0);
    expect(moved).toBe(assignBuckets(3).filter((o) => o === 2).length);
    expect(bucketMoves(3, 3)).toEqual([]);
    const targets = new Set(bucketMoves(1, 4).map((m) => m.target));
    expect([...targets].sort()).toEqual([1, 2, 3]);
  });
});
