import { describe, expect, it } from 'vitest';
import { modelOf } from '../shared/test-helpers.ts';
import {
  DEFAULT_FAILOVER_SECONDS,
  failoverSecondsOf,
  isSilent,
  leaderRecordOf,
  releasePatch,
} from './lease-break.ts';

const configMap = (name: string, annotations: Record<string, string>, rv = '42') => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: {
    name,
    namespace: 'shop-ns',
    resourceVersion: rv,
    labels: { 'scalable.dev/database': 'shop', 'scalable.dev/cluster': 'shop-db-0' },
    annotations,
  },
});

describe('leaderRecordOf', () => {
  it("reads the holder and renewal of a shard's leader key", () => {
    const r = leaderRecordOf(
      configMap('shop-db-0-leader', {
        leader: 'shop-db-0-1',
        renewTime: '2026-11-30T22:00:00+00:00',
        ttl: '20',
        optime: '123',
      }),
    );
    expect(r).toEqual({
      namespace: 'shop-ns',
      name: 'shop-db-0-leader',
      resourceVersion: '42',
      app: 'shop',
      scope: 'shop-db-0',
      leader: 'shop-db-0-1',
      renewTime: '2026-11-30T22:00:00+00:00',
    });
  });

  it('sees no holder in a released lock or in the other keys', () => {
    expect(
      leaderRecordOf(configMap('shop-db-0-leader', { renewTime: 'x' })).leader,
    ).toBeUndefined();
    expect(leaderRecordOf(configMap('shop-db-0-leader', { leader: '' })).leader).toBeUndefined();
    // The failover key has a "leader" annotation too (a switchover's source): not a lock.
    expect(
      leaderRecordOf(configMap('shop-db-0-failover', { leader: 'shop-db-0-1' })).leader,
    ).toBeUndefined();
    // A leader key of another scope than its label says is not trusted.
    expect(
      leaderRecordOf(configMap('shop-db-1-leader', { leader: 'shop-db-1-0' })).leader,
    ).toBeUndefined();
  });
});

describe('isSilent', () => {
  const held = leaderRecordOf(configMap('shop-db-0-leader', { leader: 'shop-db-0-1' }));
  const free = leaderRecordOf(configMap('shop-db-0-leader', {}));

  it('is silent only when a held lock has not changed for longer than the limit', () => {
    expect(isSilent(held, 1_000, 7_001, 6_000)).toBe(true);
    expect(isSilent(held, 1_000, 7_000, 6_000)).toBe(false);
    expect(isSilent(held, 1_000, 2_000, 6_000)).toBe(false);
  });

  it('never for a free lock, or where Patroni alone owns failover', () => {
    expect(isSilent(free, 0, 60_000, 6_000)).toBe(false);
    expect(isSilent(held, 0, 60_000, undefined)).toBe(false);
  });
});

describe('releasePatch', () => {
  it('removes only the holder, on the version judged silent', () => {
    const r = leaderRecordOf(configMap('shop-db-0-leader', { leader: 'shop-db-0-1' }, '77'));
    expect(releasePatch(r)).toEqual({
      metadata: { resourceVersion: '77', annotations: { leader: null } },
    });
  });
});

describe('failoverSecondsOf', () => {
  it("reads a cached spec's failoverSeconds; none when the database tier is off", () => {
    expect(failoverSecondsOf({ database: { failoverSeconds: 30 } })).toBe(30);
    expect(failoverSecondsOf({ database: {} })).toBe(DEFAULT_FAILOVER_SECONDS);
    expect(
      failoverSecondsOf({ database: { enabled: false, failoverSeconds: 12 } }),
    ).toBeUndefined();
    expect(failoverSecondsOf({ web: {} })).toBeUndefined();
    expect(failoverSecondsOf(undefined)).toBeUndefined();
  });

  it("falls back to the schema's default", () => {
    expect(modelOf({ database: {} }).database?.failoverSeconds).toBe(DEFAULT_FAILOVER_SECONDS);
  });
});
