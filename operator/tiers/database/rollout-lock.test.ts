// The rollout planner's lock preconditions (issue 25, item 5): a step acts only when the
// leader lock's holder is the labelled primary and no release is in flight, and a scale-down
// of a synchronous shard keeps a synchronous standby.
import { describe, expect, it } from 'vitest';
import type { ObservedObject } from '../shared/report.ts';
import { modelOf } from '../shared/test-helpers.ts';
import { RELEASE_ANNOTATION, leaderRecordOf } from './lease-break.ts';
import { lockViewOf, planShard, shardView } from './rollout.ts';
import type { LockView } from './rollout.ts';

const OLD = 'old';
const NEW = 'new';

function pod(ordinal: number, role: 'master' | 'replica', rev = OLD, ready = true): ObservedObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `shop-db-0-${ordinal}`,
      uid: `uid-${ordinal}`,
      resourceVersion: `rv-${ordinal}`,
      labels: {
        'scalable.dev/database': 'shop',
        'scalable.dev/cluster': 'shop-db-0',
        'controller-revision-hash': rev,
        'scalable.dev/role': role,
      },
    },
    status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  };
}

const sts = (replicas: number): ObservedObject => ({
  apiVersion: 'apps/v1',
  kind: 'StatefulSet',
  metadata: { name: 'shop-db-0', generation: 2, resourceVersion: 'sts-rv' },
  spec: { replicas },
  status: { observedGeneration: 2, updateRevision: NEW },
});

const lock = (holder: string | undefined, p: Partial<LockView> = {}): LockView => ({
  holder,
  releasing: false,
  synchronous: true,
  syncStandbys: [],
  ...p,
});

const plan = (perShard: number, live: number, pods: ObservedObject[], l?: LockView) =>
  planShard({
    ...shardView(modelOf({ database: { replicasPerShard: perShard } }), 0, sts(live), pods),
    ...(l ? { lock: l } : {}),
  }).action;

describe('planShard: the lock names the primary', () => {
  // A rollout with both replicas outdated; the labels still say shop-db-0-0 leads.
  const stale = [pod(0, 'master'), pod(1, 'replica'), pod(2, 'replica')];

  it('restarts the highest outdated replica when the lock holder is the labelled primary', () => {
    expect(plan(2, 3, stale, lock('shop-db-0-0'))).toEqual({
      type: 'deletePod',
      pod: 'shop-db-0-2',
      uid: 'uid-2',
      resourceVersion: 'rv-2',
      why: expect.any(String),
    });
  });

  it('waits when another member took the lock (a failover the labels have not caught up with)', () => {
    // Without the lock the plan would restart shop-db-0-2: the member that now leads.
    expect(plan(2, 3, stale)).toMatchObject({ type: 'deletePod', pod: 'shop-db-0-2' });
    expect(plan(2, 3, stale, lock('shop-db-0-2'))).toEqual({
      type: 'wait',
      why: 'the leader lock is held by shop-db-0-2, not by the labelled primary shop-db-0-0',
    });
  });

  it('waits while the lock is free', () => {
    expect(plan(2, 3, stale, lock(undefined))).toMatchObject({
      type: 'wait',
      why: expect.stringContaining('the leader lock is free'),
    });
  });

  it('waits while a release by the operator is in flight', () => {
    expect(plan(2, 3, stale, lock('shop-db-0-0', { releasing: true }))).toMatchObject({
      type: 'wait',
      why: expect.stringContaining('release'),
    });
  });

  it('waits on a scale-down and its switchover as well', () => {
    const primaryLast = [pod(0, 'replica', NEW), pod(1, 'replica', NEW), pod(2, 'master', NEW)];
    expect(
      plan(1, 3, primaryLast, lock('shop-db-0-2', { syncStandbys: ['shop-db-0-0'] })),
    ).toMatchObject({ type: 'switchover', from: 'shop-db-0-2', candidates: ['shop-db-0-0'] });
    expect(plan(1, 3, primaryLast, lock('shop-db-0-1'))).toMatchObject({ type: 'wait' });
    const primaryFirst = [pod(0, 'master', NEW), pod(1, 'replica', NEW), pod(2, 'replica', NEW)];
    expect(plan(1, 3, primaryFirst, lock('shop-db-0-1'))).toMatchObject({ type: 'wait' });
  });
});

describe('planShard: a synchronous scale-down keeps a synchronous standby', () => {
  const primaryFirst = [pod(0, 'master', NEW), pod(1, 'replica', NEW), pod(2, 'replica', NEW)];

  it('scales down (under the StatefulSet resourceVersion) when a survivor is the standby', () => {
    expect(
      plan(1, 3, primaryFirst, lock('shop-db-0-0', { syncStandbys: ['shop-db-0-1'] })),
    ).toEqual({
      type: 'scaleDown',
      replicas: 2,
      resourceVersion: 'sts-rv',
      why: expect.any(String),
    });
  });

  it('restarts the standby on the ordinal that goes, so Patroni names a survivor', () => {
    expect(
      plan(1, 3, primaryFirst, lock('shop-db-0-0', { syncStandbys: ['shop-db-0-2'] })),
    ).toMatchObject({ type: 'deletePod', pod: 'shop-db-0-2', resourceVersion: 'rv-2' });
  });

  it('restarts the standby once: its replacement, not ready yet, is waited for', () => {
    const restarting = [
      pod(0, 'master', NEW),
      pod(1, 'replica', NEW),
      pod(2, 'replica', NEW, false),
    ];
    expect(
      plan(1, 3, restarting, lock('shop-db-0-0', { syncStandbys: ['shop-db-0-2'] })),
    ).toMatchObject({
      type: 'wait',
      why: expect.stringContaining('synchronous standby below ordinal 2'),
    });
  });

  it('waits while Patroni names no standby, or while no survivor is ready to be one', () => {
    expect(plan(1, 3, primaryFirst, lock('shop-db-0-0'))).toMatchObject({
      type: 'wait',
      why: expect.stringContaining('synchronous standby below ordinal 2'),
    });
    const survivorDown = [
      pod(0, 'master', NEW),
      pod(1, 'replica', NEW, false),
      pod(2, 'replica', NEW),
    ];
    expect(
      plan(1, 3, survivorDown, lock('shop-db-0-0', { syncStandbys: ['shop-db-0-2'] })),
    ).toMatchObject({ type: 'wait' });
  });

  it('an asynchronous shard, or one scaled to the primary alone, needs no standby', () => {
    const async = lock('shop-db-0-0', { synchronous: false, syncStandbys: [] });
    expect(plan(1, 3, primaryFirst, async)).toMatchObject({ type: 'scaleDown', replicas: 2 });
    expect(
      plan(0, 3, primaryFirst, lock('shop-db-0-0', { syncStandbys: ['shop-db-0-2'] })),
    ).toMatchObject({ type: 'scaleDown', replicas: 1 });
  });

  it('hands over from a primary that goes only to a surviving synchronous standby', () => {
    const primaryLast = [pod(0, 'replica', NEW), pod(1, 'replica', NEW), pod(2, 'master', NEW)];
    // 4 -> 2: the standby shop-db-0-3 goes too; it is restarted, not switched to.
    const four = [...primaryLast, pod(3, 'replica', NEW)];
    expect(plan(1, 4, four, lock('shop-db-0-2', { syncStandbys: ['shop-db-0-3'] }))).toMatchObject({
      type: 'deletePod',
      pod: 'shop-db-0-3',
    });
    expect(plan(1, 4, four, lock('shop-db-0-2', { syncStandbys: ['shop-db-0-1'] }))).toMatchObject({
      type: 'switchover',
      candidates: ['shop-db-0-1'],
    });
  });
});

describe('lockViewOf', () => {
  const cm = (name: string, annotations: Record<string, string>) =>
    leaderRecordOf({
      metadata: {
        name,
        namespace: 'ns',
        resourceVersion: '1',
        labels: { 'scalable.dev/database': 'shop', 'scalable.dev/cluster': 'shop-db-0' },
        annotations,
      },
    });
  const now = Date.parse('2026-01-01T00:01:00Z');

  it('reads the holder, a recent release, the live mode and the holder’s standbys', () => {
    const leader = cm('shop-db-0-leader', {
      leader: 'shop-db-0-1',
      [RELEASE_ANNOTATION]: JSON.stringify({
        member: 'shop-db-0-0',
        uid: 'u',
        at: '2026-01-01T00:00:30Z',
      }),
    });
    const config = cm('shop-db-0-config', { config: '{"ttl":20,"synchronous_mode":true}' });
    const sync = cm('shop-db-0-sync', { leader: 'shop-db-0-1', sync_standby: 'shop-db-0-2' });
    expect(lockViewOf(leader, config, sync, false, now)).toEqual({
      holder: 'shop-db-0-1',
      releasing: true,
      synchronous: true,
      syncStandbys: ['shop-db-0-2'],
    });
    // A release older than two leases is over; a sync key of an earlier primary names no one.
    const stale = cm('shop-db-0-sync', { leader: 'shop-db-0-0', sync_standby: 'shop-db-0-1' });
    expect(lockViewOf(leader, config, stale, false, now + 60_000)).toMatchObject({
      releasing: false,
      syncStandbys: [],
    });
  });

  it('a `-leader` ConfigMap without Patroni’s labels holds no lock: the step waits', () => {
    // Patroni writes and lists its keys by its labels and scope label; one without them is
    // not Patroni's (rbac-minimal's stand-in wrote such a lock, and the rollout never came).
    const unlabelled = leaderRecordOf({
      metadata: { name: 'shop-db-0-leader', namespace: 'ns', annotations: { leader: 'x' } },
    });
    expect(lockViewOf(unlabelled, undefined, undefined, false, now).holder).toBeUndefined();
    expect(
      lockViewOf(
        cm('shop-db-0-leader', { leader: 'shop-db-0-0' }),
        undefined,
        undefined,
        false,
        now,
      ).holder,
    ).toBe('shop-db-0-0');
  });
});
