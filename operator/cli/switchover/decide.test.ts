import { describe, expect, it } from 'vitest';
import { RELEASE_ANNOTATION } from '../../tiers/database/lease-break.ts';
import { decideSwitchover, outcomeOf, progressOf, snapshotOf } from './decide.ts';
import type { Decision, Json, ShardSnapshot } from './decide.ts';

const NOW = Date.parse('2026-12-07T00:00:00Z');
const scope = 'shop-db-0';

interface PodOpts {
  label?: string;
  ready?: boolean;
  terminating?: boolean;
  state?: string;
  role?: string;
  xlog?: number;
  replication?: string;
  tags?: Json;
  noStatus?: boolean;
}

function pod(ordinal: number, o: PodOpts = {}): Json {
  const role = o.role ?? (o.label === 'master' ? 'primary' : 'replica');
  return {
    metadata: {
      name: `${scope}-${ordinal}`,
      labels: { 'scalable.dev/role': o.label ?? 'replica' },
      annotations: o.noStatus
        ? {}
        : {
            status: JSON.stringify({
              state: o.state ?? 'running',
              role,
              xlog_location: o.xlog ?? 1000,
              ...(role === 'replica' ? { replication_state: o.replication ?? 'streaming' } : {}),
              ...(o.tags ? { tags: o.tags } : {}),
            }),
          },
      ...(o.terminating ? { deletionTimestamp: '2026-12-07T00:00:00Z' } : {}),
    },
    status: { conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
  };
}

const cm = (key: string, annotations: Record<string, string>): Json => ({
  metadata: {
    name: `${scope}-${key}`,
    resourceVersion: '7',
    labels: { 'scalable.dev/database': 'shop', 'scalable.dev/cluster': scope },
    annotations,
  },
});

interface ShardOpts {
  pods?: Json[];
  holder?: string | null;
  synchronous?: boolean;
  syncStandbys?: string[];
  syncLeader?: string;
  release?: { member: string; at: string };
  pause?: boolean;
  maxLag?: number;
  failover?: Record<string, string> | null;
  rw?: string[] | null;
}

/** A healthy 3-member shard: 0 primary, 1 and 2 streaming replicas; 1 the sync standby. */
function shard(o: ShardOpts = {}): ShardSnapshot {
  const holder = o.holder === undefined ? `${scope}-0` : o.holder;
  const pods = o.pods ?? [
    pod(0, { label: 'master', xlog: 5000 }),
    pod(1, { xlog: 5000 }),
    pod(2, { xlog: 4000 }),
  ];
  return snapshotOf({
    scope,
    pods,
    leader: cm('leader', {
      ...(holder ? { leader: holder } : {}),
      ...(o.release ? { [RELEASE_ANNOTATION]: JSON.stringify({ ...o.release, uid: 'u' }) } : {}),
    }),
    config: cm('config', {
      config: JSON.stringify({
        ttl: 20,
        synchronous_mode: o.synchronous ?? true,
        ...(o.pause ? { pause: true } : {}),
        ...(o.maxLag !== undefined ? { maximum_lag_on_failover: o.maxLag } : {}),
      }),
    }),
    sync: cm('sync', {
      leader: o.syncLeader ?? holder ?? '',
      sync_standby: (o.syncStandbys ?? [`${scope}-1`]).join(','),
    }),
    failover:
      o.failover === null || o.failover === undefined ? undefined : cm('failover', o.failover),
    rw: o.rw === undefined ? [`${scope}-0`] : o.rw,
  });
}

const refusal = (d: Decision) => (d.ok ? `ok -> ${d.to}` : d.code);

describe('decideSwitchover: where the lock and the operator stand', () => {
  it('picks the synchronous standby of a healthy synchronous shard', () => {
    const d = decideSwitchover(shard(), {}, NOW);
    expect(d).toMatchObject({
      ok: true,
      from: 'shop-db-0-0',
      to: 'shop-db-0-1',
      synchronous: true,
    });
    expect(d.ok && d.why).toBe('the synchronous standby');
  });

  it('refuses while a lock release by the operator is in flight, naming it', () => {
    const at = new Date(NOW - 5_000).toISOString();
    const d = decideSwitchover(shard({ release: { member: 'shop-db-0-2', at } }), {}, NOW);
    expect(d).toMatchObject({ ok: false, code: 'release-in-flight' });
    expect(!d.ok && d.reason).toContain(`released shop-db-0-2's leader lock at ${at}`);
    // Two leases on, the record is history (fenceVerdict's rule): the switchover may go.
    const old = new Date(NOW - 41_000).toISOString();
    expect(refusal(decideSwitchover(shard({ release: { member: 'x', at: old } }), {}, NOW))).toBe(
      'ok -> shop-db-0-1',
    );
  });

  it('refuses while the lock is free', () => {
    expect(refusal(decideSwitchover(shard({ holder: null }), {}, NOW))).toBe('lock-free');
  });

  it('refuses when the lock holder is not the one pod labelled primary', () => {
    const lagging = shard({
      holder: 'shop-db-0-1',
      syncLeader: 'shop-db-0-1',
      syncStandbys: ['shop-db-0-0'],
    });
    const d = decideSwitchover(lagging, {}, NOW);
    expect(d).toMatchObject({ ok: false, code: 'primary-mismatch' });
    expect(!d.ok && d.reason).toContain(
      'shop-db-0-1 holds the leader lock but the pods labelled primary are shop-db-0-0',
    );
    const two = shard({
      pods: [pod(0, { label: 'master' }), pod(1, { label: 'master' }), pod(2)],
    });
    expect(refusal(decideSwitchover(two, {}, NOW))).toBe('primary-mismatch');
  });

  it('refuses when Patroni is paused or a request is pending', () => {
    expect(refusal(decideSwitchover(shard({ pause: true }), {}, NOW))).toBe('paused');
    const pending = shard({ failover: { leader: 'shop-db-0-0', member: 'shop-db-0-2' } });
    const d = decideSwitchover(pending, {}, NOW);
    expect(d).toMatchObject({ ok: false, code: 'request-pending' });
    expect(!d.ok && d.reason).toContain('annotate configmap shop-db-0-failover leader- member-');
    // An empty key Patroni left behind is no request.
    expect(refusal(decideSwitchover(shard({ failover: {} }), {}, NOW))).toBe('ok -> shop-db-0-1');
  });
});

describe('decideSwitchover: the target', () => {
  it('refuses a member that is not in the shard, or the primary itself', () => {
    const d = decideSwitchover(shard(), { to: 'shop-db-1-1' }, NOW);
    expect(d).toMatchObject({ ok: false, code: 'no-such-member' });
    expect(!d.ok && d.reason).toContain('members: shop-db-0-0, shop-db-0-1, shop-db-0-2');
    expect(refusal(decideSwitchover(shard(), { to: 'shop-db-0-0' }, NOW))).toBe('already-primary');
  });

  it('refuses an unhealthy target, saying what is wrong with it', () => {
    const cases: [PodOpts, string][] = [
      [{ ready: false }, 'its pod is not Ready'],
      [{ terminating: true }, 'its pod is terminating'],
      [{ state: 'starting' }, 'Patroni says it is starting'],
      [{ noStatus: true }, 'Patroni publishes no status'],
      [{ tags: { nofailover: true } }, 'nofailover'],
      [{ label: 'other' }, 'its pod is labelled other'],
    ];
    for (const [opts, words] of cases) {
      const s = shard({ pods: [pod(0, { label: 'master' }), pod(1, opts), pod(2)] });
      const d = decideSwitchover(s, { to: 'shop-db-0-1' }, NOW);
      expect(d, words).toMatchObject({ ok: false, code: 'not-healthy' });
      expect(!d.ok && d.reason).toContain(words);
    }
  });

  it('on a synchronous shard, refuses a replica that is not a synchronous standby', () => {
    const d = decideSwitchover(shard(), { to: 'shop-db-0-2' }, NOW);
    expect(d).toMatchObject({ ok: false, code: 'not-synchronous' });
    expect(!d.ok && d.reason).toContain('shop-db-0-sync names shop-db-0-1');
    // A -sync key of an earlier primary names nobody for this one.
    const stale = shard({ syncLeader: 'shop-db-0-2' });
    expect(refusal(decideSwitchover(stale, {}, NOW))).toBe('no-candidate');
  });

  it('without --to, picks no unhealthy standby and lists why each one is unfit', () => {
    const s = shard({
      pods: [pod(0, { label: 'master' }), pod(1, { ready: false }), pod(2)],
    });
    const d = decideSwitchover(s, {}, NOW);
    expect(d).toMatchObject({ ok: false, code: 'no-candidate' });
    expect(!d.ok && d.reason).toContain(
      'shop-db-0-1: its pod is not Ready; shop-db-0-2: it is not a synchronous standby',
    );
  });

  it('refuses a target beyond maximum_lag_on_failover, which Patroni would refuse too', () => {
    const s = shard({
      synchronous: false,
      maxLag: 100,
      pods: [
        pod(0, { label: 'master', xlog: 5000 }),
        pod(1, { xlog: 4800 }),
        pod(2, { xlog: 4950 }),
      ],
    });
    const d = decideSwitchover(s, { to: 'shop-db-0-1' }, NOW);
    expect(d).toMatchObject({ ok: false, code: 'too-far-behind' });
    expect(!d.ok && d.reason).toContain(
      '200 bytes behind shop-db-0-0, more than maximum_lag_on_failover (100)',
    );
    expect(refusal(decideSwitchover(s, {}, NOW))).toBe('ok -> shop-db-0-2');
  });
});

describe('decideSwitchover: asynchronous shards', () => {
  const async = (p1: PodOpts, p2: PodOpts) =>
    shard({
      synchronous: false,
      syncStandbys: [],
      pods: [pod(0, { label: 'master', xlog: 5000 }), pod(1, p1), pod(2, p2)],
    });

  it('picks the streaming replica with the least lag; a streaming target loses nothing', () => {
    const d = decideSwitchover(async({ xlog: 4000 }, { xlog: 4900 }), {}, NOW);
    expect(d).toMatchObject({
      ok: true,
      to: 'shop-db-0-2',
      synchronous: false,
      lagBytes: 100,
      warnings: [],
    });
    // Streaming beats a smaller published lag: the shutdown sends a streaming one every record.
    const e = decideSwitchover(
      async({ xlog: 4000 }, { xlog: 5000, replication: 'stopped' }),
      {},
      NOW,
    );
    expect(e).toMatchObject({ ok: true, to: 'shop-db-0-1' });
  });

  it('refuses a target that is not streaming, saying what would be lost, unless --force', () => {
    const s = async({ xlog: 4000, replication: 'stopped' }, { xlog: 4000, replication: 'stopped' });
    const d = decideSwitchover(s, { to: 'shop-db-0-1' }, NOW);
    expect(d).toMatchObject({ ok: false, code: 'not-streaming' });
    expect(!d.ok && d.reason).toContain('1000 bytes behind');
    expect(!d.ok && d.reason).toContain(
      'every write shop-db-0-0 acknowledged after that position would be lost',
    );
    expect(!d.ok && d.reason).toContain('--force');
    const forced = decideSwitchover(s, { to: 'shop-db-0-1', force: true }, NOW);
    expect(forced).toMatchObject({ ok: true, to: 'shop-db-0-1' });
    expect(forced.ok && forced.warnings[0]).toMatch(/^--force: the shard is asynchronous/);
  });
});

describe('progress after the request', () => {
  const moved = (o: {
    lock?: string | null;
    labels?: [string, string, string];
    rw?: string[] | null;
    pending?: boolean;
  }) => {
    const [l0, l1, l2] = o.labels ?? ['master', 'replica', 'replica'];
    return progressOf(
      shard({
        holder: o.lock === undefined ? 'shop-db-0-0' : o.lock,
        pods: [pod(0, { label: l0 }), pod(1, { label: l1 }), pod(2, { label: l2 })],
        rw: o.rw === undefined ? ['shop-db-0-0'] : o.rw,
        failover: o.pending ? { leader: 'shop-db-0-0', member: 'shop-db-0-1' } : null,
      }),
      'shop-db-0-0',
      'shop-db-0-1',
    );
  };

  it('is done only when the lock, the label and -rw all name the new primary', () => {
    expect(outcomeOf(moved({ pending: true }), 'shop-db-0-0')).toEqual({ phase: 'waiting' });
    expect(outcomeOf(moved({ lock: null, pending: true }), 'shop-db-0-0')).toEqual({
      phase: 'waiting',
    });
    expect(outcomeOf(moved({ lock: 'shop-db-0-1' }), 'shop-db-0-0')).toEqual({ phase: 'waiting' });
    const labelled = {
      lock: 'shop-db-0-1',
      labels: ['replica', 'master', 'replica'] as [string, string, string],
    };
    expect(outcomeOf(moved(labelled), 'shop-db-0-0')).toEqual({ phase: 'waiting' });
    expect(outcomeOf(moved({ ...labelled, rw: ['shop-db-0-1'] }), 'shop-db-0-0')).toEqual({
      phase: 'done',
      primary: 'shop-db-0-1',
    });
    // Endpoints the user may not read are not waited for.
    expect(outcomeOf(moved({ ...labelled, rw: null }), 'shop-db-0-0')).toMatchObject({
      phase: 'done',
    });
  });

  it('says Patroni dropped the request when it is gone and the old primary kept the lock', () => {
    expect(outcomeOf(moved({ pending: false }), 'shop-db-0-0')).toEqual({ phase: 'dropped' });
    // Free lock with the request gone: the new leader has not finished taking it yet.
    expect(outcomeOf(moved({ lock: null, pending: false }), 'shop-db-0-0')).toEqual({
      phase: 'waiting',
    });
  });
});
