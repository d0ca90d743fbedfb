import { describe, expect, it } from 'vitest';
import { modelOf } from '../shared/test-helpers.ts';
import {
  DEFAULT_FAILOVER_SECONDS,
  FENCE_MARGIN_SECONDS,
  MIN_FAILOVER_SECONDS,
  RELEASE_ANNOTATION,
  RENEWING,
  failoverSpecOf,
  fenceSeconds,
  fenceVerdict,
  isSilent,
  leaderRecordOf,
  memberViewOf,
  releaseAfterSeconds,
  releasePatch,
  releaseVerdict,
  timingsOf,
} from './lease-break.ts';
import type { MemberView, ReleaseInput } from './lease-break.ts';

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

describe('timingsOf', () => {
  it("keeps Patroni's rule loop_wait + 2 x retry_timeout <= ttl and its floors", () => {
    for (let s = MIN_FAILOVER_SECONDS; s <= 300; s++) {
      const t = timingsOf(s);
      expect(t.ttl).toBe(Math.max(20, s));
      expect(t.loop_wait + 2 * t.retry_timeout, `failoverSeconds ${s}`).toBeLessThanOrEqual(t.ttl);
      expect(t.loop_wait).toBeGreaterThanOrEqual(1);
      expect(t.retry_timeout).toBeGreaterThanOrEqual(3);
    }
    expect(timingsOf(10)).toEqual({ ttl: 20, loop_wait: 1, retry_timeout: 3 });
    expect(timingsOf(30)).toEqual({ ttl: 30, loop_wait: 2, retry_timeout: 5 });
    expect(timingsOf(100)).toEqual({ ttl: 100, loop_wait: 9, retry_timeout: 10 });
  });

  it('depends on the lease alone: a primary renewing with the live ttl runs all three', () => {
    for (let s = MIN_FAILOVER_SECONDS; s <= 20; s++) expect(timingsOf(s)).toEqual(timingsOf(20));
  });

  it('fences before the lease ends, and after what a live primary needs between renewals', () => {
    for (let s = 20; s <= 300; s++) {
      const t = timingsOf(s);
      const fence = fenceSeconds(t);
      // A renewal's answer can reach Patroni retry_timeout after it was committed: the fence
      // still fires (with a second to kill the postmaster) before the replicas' lease ends.
      expect(fence + t.retry_timeout + 1, `failoverSeconds ${s}`).toBeLessThan(t.ttl);
      // Patroni's own check (timing_slack): the watchdog is fed every loop_wait at least.
      expect(fence, `failoverSeconds ${s}`).toBeGreaterThanOrEqual(t.loop_wait);
      // With failsafe_mode, a primary cut off from the API server feeds it once per failed
      // request (retry_timeout): the fence must not fire on that.
      expect(fence, `failoverSeconds ${s}`).toBeGreaterThan(t.retry_timeout + 1);
    }
  });
});

describe('releaseAfterSeconds', () => {
  it('is for synchronous shards below 20 s only', () => {
    expect(releaseAfterSeconds({ synchronous: true, failoverSeconds: 10 })).toBe(9);
    expect(releaseAfterSeconds({ synchronous: true, failoverSeconds: 15 })).toBe(14);
    expect(releaseAfterSeconds({ synchronous: true, failoverSeconds: 20 })).toBeUndefined();
    expect(releaseAfterSeconds({ synchronous: false, failoverSeconds: 10 })).toBeUndefined();
  });

  it('waits for the fence, a late renewal answer and Patroni’s own rule, and leaves time', () => {
    for (let s = MIN_FAILOVER_SECONDS; s < 20; s++) {
      const t = timingsOf(s);
      const after = releaseAfterSeconds({ synchronous: true, failoverSeconds: s }) ?? NaN;
      expect(after, `failoverSeconds ${s}`).toBeGreaterThan(fenceSeconds(t) + t.retry_timeout);
      expect(after, `failoverSeconds ${s}`).toBeGreaterThan(t.loop_wait + 2 * t.retry_timeout);
      expect(after, `failoverSeconds ${s}`).toBeLessThan(t.ttl);
      expect(after + 1, `failoverSeconds ${s}`).toBeLessThanOrEqual(s);
    }
  });

  it('follows a larger fence margin (a pod running another fence)', () => {
    expect(releaseAfterSeconds({ synchronous: true, failoverSeconds: 10 }, 12)).toBe(12);
  });
});

describe('failoverSpecOf', () => {
  it("reads a cached spec's mode and failoverSeconds, with the default of its mode", () => {
    expect(failoverSpecOf({ database: { synchronous: true, failoverSeconds: 12 } })).toEqual({
      synchronous: true,
      failoverSeconds: 12,
    });
    expect(failoverSpecOf({ database: { synchronous: true } })).toEqual({
      synchronous: true,
      failoverSeconds: DEFAULT_FAILOVER_SECONDS.synchronous,
    });
    expect(failoverSpecOf({ database: {} })).toEqual({
      synchronous: false,
      failoverSeconds: DEFAULT_FAILOVER_SECONDS.asynchronous,
    });
    expect(failoverSpecOf({ database: { enabled: false } })).toBeUndefined();
    expect(failoverSpecOf({ web: {} })).toBeUndefined();
    expect(failoverSpecOf(undefined)).toBeUndefined();
  });

  it('agrees with the model', () => {
    expect(modelOf({ database: {} }).database?.failoverSeconds).toBe(30);
    expect(modelOf({ database: { synchronous: true } }).database?.failoverSeconds).toBe(10);
  });
});

describe('leaderRecordOf', () => {
  it("reads the holder, renewal, ttl and a recorded release of a shard's leader key", () => {
    const intent = { member: 'shop-db-0-1', uid: 'u1', at: '2026-11-30T22:00:00Z' };
    const r = leaderRecordOf(
      configMap('shop-db-0-leader', {
        leader: 'shop-db-0-1',
        renewTime: '2026-11-30T22:00:00+00:00',
        ttl: '20',
        optime: '123',
        [RELEASE_ANNOTATION]: JSON.stringify(intent),
      }),
    );
    expect(r).toMatchObject({
      namespace: 'shop-ns',
      name: 'shop-db-0-leader',
      resourceVersion: '42',
      app: 'shop',
      scope: 'shop-db-0',
      key: 'leader',
      leader: 'shop-db-0-1',
      renewTime: '2026-11-30T22:00:00+00:00',
      ttl: '20',
      released: intent,
    });
  });

  it('sees no holder in a released lock, and no lock in the other keys', () => {
    expect(
      leaderRecordOf(configMap('shop-db-0-leader', { renewTime: 'x' })).leader,
    ).toBeUndefined();
    expect(leaderRecordOf(configMap('shop-db-0-leader', { leader: '' })).leader).toBeUndefined();
    // The failover key has a "leader" annotation too (a switchover's source): not a lock.
    expect(leaderRecordOf(configMap('shop-db-0-failover', { leader: 'shop-db-0-1' })).key).toBe(
      'other',
    );
    // A leader key of another scope than its label says is not trusted.
    expect(leaderRecordOf(configMap('shop-db-1-leader', { leader: 'shop-db-1-0' })).key).toBe(
      'other',
    );
    expect(
      leaderRecordOf(configMap('shop-db-0-leader', { [RELEASE_ANNOTATION]: '{' })).released,
    ).toBeUndefined();
  });

  it('reads the live timings and modes of the config key and the standbys of the sync key', () => {
    const config = leaderRecordOf(
      configMap('shop-db-0-config', {
        config: JSON.stringify({
          ttl: 20,
          loop_wait: 1,
          retry_timeout: 3,
          synchronous_mode: true,
          failsafe_mode: true,
          postgresql: {},
        }),
      }),
    );
    expect(config.key).toBe('config');
    expect(config.config).toEqual({
      ttl: 20,
      loop_wait: 1,
      retry_timeout: 3,
      synchronous_mode: true,
      failsafe_mode: true,
    });
    const sync = leaderRecordOf(
      configMap('shop-db-0-sync', {
        leader: 'shop-db-0-0',
        sync_standby: 'shop-db-0-1,shop-db-0-2',
      }),
    );
    expect(sync).toMatchObject({
      key: 'sync',
      leader: 'shop-db-0-0',
      syncStandbys: ['shop-db-0-1', 'shop-db-0-2'],
    });
    expect(leaderRecordOf(configMap('shop-db-0-sync', { leader: 'x' })).syncStandbys).toEqual([]);
  });
});

describe('memberViewOf', () => {
  it("reads the role label, readiness, the fence and Patroni's replication state", () => {
    const pod = {
      metadata: {
        name: 'shop-db-0-1',
        uid: 'u1',
        labels: { 'scalable.dev/role': 'replica' },
        annotations: {
          'scalable.dev/fence-margin': '15',
          status: JSON.stringify({ role: 'replica', replication_state: 'streaming' }),
        },
      },
      status: { conditions: [{ type: 'Ready', status: 'True' }] },
    };
    expect(memberViewOf(pod)).toEqual({
      name: 'shop-db-0-1',
      uid: 'u1',
      labelledPrimary: false,
      ready: true,
      terminating: false,
      fenceMargin: 15,
      streaming: true,
    });
    expect(
      memberViewOf({
        metadata: {
          name: 'shop-db-0-0',
          uid: 'u0',
          deletionTimestamp: '2026-01-01T00:00:00Z',
          labels: { 'scalable.dev/role': 'master' },
        },
      }),
    ).toEqual({
      name: 'shop-db-0-0',
      uid: 'u0',
      labelledPrimary: true,
      ready: false,
      terminating: true,
      fenceMargin: undefined,
      streaming: false,
    });
  });
});

const member = (name: string, over: Partial<MemberView> = {}): MemberView => ({
  name,
  uid: `uid-${name}`,
  labelledPrimary: false,
  ready: true,
  terminating: false,
  fenceMargin: FENCE_MARGIN_SECONDS,
  streaming: false,
  ...over,
});

describe('releaseVerdict', () => {
  const liveConfig = (extra: object = {}) =>
    leaderRecordOf(
      configMap('shop-db-0-config', {
        config: JSON.stringify({
          ...timingsOf(10),
          synchronous_mode: true,
          failsafe_mode: true,
          ...extra,
        }),
      }),
    );
  const silent: ReleaseInput = {
    spec: { synchronous: true, failoverSeconds: 10 },
    leader: leaderRecordOf(configMap('shop-db-0-leader', { leader: 'shop-db-0-0', ttl: '20' })),
    config: liveConfig(),
    sync: leaderRecordOf(
      configMap('shop-db-0-sync', { leader: 'shop-db-0-0', sync_standby: 'shop-db-0-1' }),
    ),
    members: [member('shop-db-0-0', { labelledPrimary: true }), member('shop-db-0-1')],
    silentMs: 9_001,
    configStableMs: Infinity,
  };
  const why = (over: Partial<ReleaseInput>) => {
    const v = releaseVerdict({ ...silent, ...over });
    return v.release ? 'release' : v.why;
  };

  it('releases a silent synchronous primary whose standby stopped streaming from it', () => {
    expect(releaseVerdict(silent)).toEqual({ release: true, afterSeconds: 9 });
  });

  it('not before the fence and a late renewal answer (9 s at failoverSeconds 10)', () => {
    expect(why({ silentMs: 9_000 })).toBe(RENEWING);
    expect(why({ silentMs: 500 })).toBe(RENEWING);
  });

  it('never on an asynchronous shard, nor where Patroni’s lease is short enough', () => {
    expect(why({ spec: { synchronous: false, failoverSeconds: 10 } })).toMatch(/^asynchronous/);
    expect(why({ spec: { synchronous: true, failoverSeconds: 20 } })).toMatch(/lease alone/);
  });

  it('not while the standby still streams: the primary is alive (failsafe_mode keeps it)', () => {
    expect(
      why({
        members: [
          member('shop-db-0-0', { labelledPrimary: true }),
          member('shop-db-0-1', { streaming: true }),
        ],
      }),
    ).toMatch(/stopped streaming/);
  });

  it('only to a ready synchronous standby', () => {
    const unready = [
      member('shop-db-0-0', { labelledPrimary: true }),
      member('shop-db-0-1', { ready: false }),
    ];
    expect(why({ members: unready })).toMatch(/no ready synchronous standby/);
    expect(
      why({ sync: leaderRecordOf(configMap('shop-db-0-sync', { leader: 'shop-db-0-0' })) }),
    ).toMatch(/no synchronous standby recorded/);
    // The sync key of another primary (stale) does not count.
    expect(
      why({
        sync: leaderRecordOf(
          configMap('shop-db-0-sync', { leader: 'shop-db-0-2', sync_standby: 'shop-db-0-1' }),
        ),
      }),
    ).toMatch(/no synchronous standby recorded/);
  });

  it('only where the holder’s pod runs the fence', () => {
    expect(
      why({
        members: [
          member('shop-db-0-0', { labelledPrimary: true, fenceMargin: undefined }),
          member('shop-db-0-1'),
        ],
      }),
    ).toMatch(/runs no fence/);
    expect(why({ members: [member('shop-db-0-1')] })).toMatch(/no pod shop-db-0-0/);
  });

  it('only with the live configuration Patroni runs: synchronous, the spec’s timings, reloaded', () => {
    expect(why({ config: undefined })).toMatch(/no live dynamic configuration/);
    expect(why({ config: liveConfig({ synchronous_mode: false }) })).toMatch(/synchronous_mode/);
    expect(why({ config: liveConfig({ pause: true }) })).toMatch(/paused/);
    expect(why({ config: liveConfig(timingsOf(30)) })).toMatch(/live timings differ/);
    expect(
      why({
        leader: leaderRecordOf(configMap('shop-db-0-leader', { leader: 'shop-db-0-0', ttl: '30' })),
      }),
    ).toMatch(/not renewed with ttl 20/);
    expect(why({ configStableMs: 19_999 })).toMatch(/changed less than a lease ago/);
    expect(why({ configStableMs: 20_000 })).toBe('release');
  });

  it('nothing to release on a free lock', () => {
    expect(why({ leader: leaderRecordOf(configMap('shop-db-0-leader', {})) })).toBe(
      'the lock is free',
    );
  });
});

describe('fenceVerdict', () => {
  const at = Date.parse('2026-11-30T22:00:00Z');
  const intent = { member: 'shop-db-0-0', uid: 'uid-shop-db-0-0', at: '2026-11-30T22:00:00Z' };
  const lock = (leader: string | undefined, released = intent) =>
    leaderRecordOf(
      configMap('shop-db-0-leader', {
        ...(leader ? { leader } : {}),
        [RELEASE_ANNOTATION]: JSON.stringify(released),
      }),
    );
  const config = leaderRecordOf(
    configMap('shop-db-0-config', { config: JSON.stringify({ ttl: 20 }) }),
  );
  const stalePrimary = [
    member('shop-db-0-0', { labelledPrimary: true }),
    member('shop-db-0-1', { labelledPrimary: true }),
  ];

  it('fences the pod whose lock the operator released, once another member holds it', () => {
    expect(
      fenceVerdict({
        leader: lock('shop-db-0-1'),
        config,
        members: stalePrimary,
        heldMs: 0,
        wallNowMs: at + 5_000,
      }),
    ).toEqual({
      fence: [
        {
          pod: 'shop-db-0-0',
          uid: 'uid-shop-db-0-0',
          why: 'its lock was released and shop-db-0-1 took it',
        },
      ],
    });
  });

  it('fences at the release, while the lock is still free: the Service follows the lock', () => {
    expect(
      fenceVerdict({
        leader: lock(undefined),
        config,
        members: stalePrimary,
        heldMs: 0,
        wallNowMs: at + 1_000,
      }),
    ).toEqual({
      fence: [
        { pod: 'shop-db-0-0', uid: 'uid-shop-db-0-0', why: 'the operator released its lock' },
      ],
    });
  });

  it('not a member that took its lock back, nor anyone on a free lock nobody released', () => {
    expect(
      fenceVerdict({
        leader: lock('shop-db-0-0'),
        config,
        members: [member('shop-db-0-0', { labelledPrimary: true }), member('shop-db-0-1')],
        heldMs: 99_000,
        wallNowMs: at,
      }).fence,
    ).toEqual([]);
    // Patroni freed it itself (a switchover, a clean shutdown), or the release is history.
    const old = { ...intent, at: '2026-11-30T21:00:00Z' };
    for (const free of [leaderRecordOf(configMap('shop-db-0-leader', {})), lock(undefined, old)])
      expect(
        fenceVerdict({
          leader: free,
          config,
          members: stalePrimary,
          heldMs: 99_000,
          wallNowMs: at,
        }).fence,
      ).toEqual([]);
  });

  it('not a replaced pod (another uid), nor one that relabelled itself or is going', () => {
    const replaced = [
      member('shop-db-0-0', { labelledPrimary: true, uid: 'new' }),
      member('shop-db-0-1', { labelledPrimary: true }),
    ];
    expect(
      fenceVerdict({
        leader: lock('shop-db-0-1'),
        config,
        members: replaced,
        heldMs: 0,
        wallNowMs: at,
      }).fence,
    ).toEqual([]);
    const going = [
      member('shop-db-0-0', { labelledPrimary: true, terminating: true }),
      member('shop-db-0-1'),
    ];
    expect(
      fenceVerdict({
        leader: lock('shop-db-0-1'),
        config,
        members: going,
        heldMs: 0,
        wallNowMs: at,
      }).fence,
    ).toEqual([]);
  });

  it('a stale primary label of a failover the operator did not cause: after one lease', () => {
    const old = { ...intent, at: '2026-11-30T21:00:00Z' }; // an hour ago: not this failover
    expect(
      fenceVerdict({
        leader: lock('shop-db-0-1', old),
        config,
        members: stalePrimary,
        heldMs: 19_999,
        wallNowMs: at,
      }).fence,
    ).toEqual([]);
    expect(
      fenceVerdict({
        leader: lock('shop-db-0-1', old),
        config,
        members: stalePrimary,
        heldMs: 20_000,
        wallNowMs: at,
      }).fence,
    ).toEqual([
      {
        pod: 'shop-db-0-0',
        uid: 'uid-shop-db-0-0',
        why: 'shop-db-0-1 has held the lock for a lease',
      },
    ]);
  });

  it('never while Patroni is paused', () => {
    const paused = leaderRecordOf(
      configMap('shop-db-0-config', { config: JSON.stringify({ ttl: 20, pause: true }) }),
    );
    expect(
      fenceVerdict({
        leader: lock('shop-db-0-1'),
        config: paused,
        members: stalePrimary,
        heldMs: 99_000,
        wallNowMs: at,
      }).fence,
    ).toEqual([]);
  });
});

describe('isSilent and releasePatch', () => {
  const held = leaderRecordOf(configMap('shop-db-0-leader', { leader: 'shop-db-0-1' }));
  const free = leaderRecordOf(configMap('shop-db-0-leader', {}));
  const sync = leaderRecordOf(configMap('shop-db-0-sync', { leader: 'shop-db-0-1' }));

  it('is silent only when a held lock has not changed for longer than the limit', () => {
    expect(isSilent(held, 1_000, 10_001, 9_000)).toBe(true);
    expect(isSilent(held, 1_000, 10_000, 9_000)).toBe(false);
    expect(isSilent(free, 0, 60_000, 9_000)).toBe(false);
    expect(isSilent(held, 0, 60_000, undefined)).toBe(false);
    // The sync key names the primary too: never a lock to release.
    expect(isSilent(sync, 0, 60_000, 9_000)).toBe(false);
  });

  it('removes only the holder, on the version judged silent, recording the release', () => {
    const r = leaderRecordOf(configMap('shop-db-0-leader', { leader: 'shop-db-0-1' }, '77'));
    const intent = { member: 'shop-db-0-1', uid: 'u', at: '2026-11-30T22:00:00.000Z' };
    expect(releasePatch(r, intent)).toEqual({
      metadata: {
        resourceVersion: '77',
        annotations: { leader: null, [RELEASE_ANNOTATION]: JSON.stringify(intent) },
      },
    });
  });
});
