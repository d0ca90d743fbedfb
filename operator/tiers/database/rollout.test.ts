import { describe, expect, it } from 'vitest';
import type { ObservedObject } from '../shared/report.ts';
import { modelOf } from '../shared/test-helpers.ts';
import { buildDatabase } from './build.ts';
import { chooseCandidate, holdReplicas, planShard, sameAction, shardView } from './rollout.ts';
import type { RolloutAction, ShardView } from './rollout.ts';

const OLD = 'shop-db-0-old';
const NEW = 'shop-db-0-new';

interface PodSpec {
  role?: 'master' | 'replica';
  rev?: string;
  ready?: boolean;
  deleting?: boolean;
}

function pod(ordinal: number, p: PodSpec = {}): ObservedObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `shop-db-0-${ordinal}`,
      uid: `uid-${ordinal}-${p.rev ?? OLD}`,
      labels: {
        'scalable.dev/database': 'shop',
        'scalable.dev/cluster': 'shop-db-0',
        'controller-revision-hash': p.rev ?? OLD,
        ...(p.role ? { 'scalable.dev/role': p.role } : {}),
      },
      ...(p.deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
    },
    status: { conditions: [{ type: 'Ready', status: p.ready === false ? 'False' : 'True' }] },
  };
}

function sts(replicas: number, updateRevision = NEW, generation = 2, observed = 2): ObservedObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 'shop-db-0', generation },
    spec: { replicas },
    status: { observedGeneration: observed, updateRevision },
  };
}

const app = (replicasPerShard = 2) => modelOf({ database: { replicasPerShard } });
const view = (s: ObservedObject, pods: ObservedObject[], perShard = 2): ShardView =>
  shardView(app(perShard), 0, s, pods);
const next = (s: ObservedObject, pods: ObservedObject[], perShard = 2) =>
  planShard(view(s, pods, perShard));

describe('planShard: rollout', () => {
  const primary0 = [
    pod(0, { role: 'master' }),
    pod(1, { role: 'replica' }),
    pod(2, { role: 'replica' }),
  ];

  it('does nothing when every pod is on the update revision', () => {
    const pods = primary0.map((p, i) => pod(i, { role: i === 0 ? 'master' : 'replica', rev: OLD }));
    expect(next(sts(3, OLD), pods)).toEqual({ busy: false, action: { type: 'none' } });
  });

  it('does nothing until the controller has seen the latest spec', () => {
    expect(next(sts(3, NEW, 3, 2), primary0)).toEqual({ busy: false, action: { type: 'none' } });
  });

  it('restarts an outdated replica first, the highest ordinal, with its uid', () => {
    expect(next(sts(3), primary0)).toMatchObject({
      busy: true,
      action: { type: 'deletePod', pod: 'shop-db-0-2', uid: `uid-2-${OLD}` },
    });
  });

  it('waits while any member is not ready, deleting or missing', () => {
    for (const pods of [
      [primary0[0]!, primary0[1]!, pod(2, { role: 'replica', rev: NEW, ready: false })],
      [primary0[0]!, primary0[1]!, pod(2, { role: 'replica', deleting: true })],
      [primary0[0]!, primary0[1]!],
    ]) {
      const plan = next(sts(3), pods);
      expect(plan.busy).toBe(true);
      expect(plan.action.type).toBe('wait');
    }
  });

  it('switches the primary over to an updated ready replica once every replica is updated', () => {
    const pods = [
      pod(0, { role: 'master' }),
      pod(1, { role: 'replica', rev: NEW }),
      pod(2, { role: 'replica', rev: NEW }),
    ];
    expect(next(sts(3), pods).action).toEqual({
      type: 'switchover',
      from: 'shop-db-0-0',
      candidates: ['shop-db-0-1', 'shop-db-0-2'],
      why: 'every replica is updated; the primary shop-db-0-0 is next',
    });
  });

  it('then restarts the old primary, now a replica', () => {
    const pods = [
      pod(0, { role: 'replica' }),
      pod(1, { role: 'master', rev: NEW }),
      pod(2, { role: 'replica', rev: NEW }),
    ];
    expect(next(sts(3), pods).action).toMatchObject({ type: 'deletePod', pod: 'shop-db-0-0' });
  });

  it('restarts a lone primary: there is no replica to hand over to', () => {
    expect(next(sts(1), [pod(0, { role: 'master' })], 0).action).toMatchObject({
      type: 'deletePod',
      pod: 'shop-db-0-0',
    });
  });

  it('never acts with two pods labelled primary, or with no ready primary', () => {
    const two = [pod(0, { role: 'master' }), pod(1, { role: 'master' }), pod(2)];
    expect(next(sts(3), two).action).toMatchObject({ type: 'wait' });
    const none = [pod(0, { role: 'master', ready: false }), pod(1, { role: 'replica' })];
    expect(next(sts(2), none, 1).action).toMatchObject({ type: 'wait' });
  });

  // The planner driven to the end against a simulated shard: what happens to the world.
  it('rolls a 3-pod shard with exactly one switchover and never restarts the primary', () => {
    const roles = ['master', 'replica', 'replica'] as Array<'master' | 'replica'>;
    const revs = [OLD, OLD, OLD];
    const events: string[] = [];
    for (let i = 0; i < 20; i++) {
      const pods = roles.map((role, o) => pod(o, { role, rev: revs[o]! }));
      const { action, busy } = next(sts(3), pods);
      if (!busy) break;
      if (action.type === 'deletePod') {
        const o = Number(action.pod.at(-1));
        expect(roles[o], 'the primary is never deleted').toBe('replica');
        revs[o] = NEW;
        events.push(`restart ${o}`);
      } else if (action.type === 'switchover') {
        const to = chooseCandidate(action.candidates, undefined)!;
        roles[Number(action.from.at(-1))] = 'replica';
        roles[Number(to.at(-1))] = 'master';
        events.push(`switchover ${action.from.at(-1)}->${to.at(-1)}`);
      } else throw new Error(`stuck: ${JSON.stringify(action)}`);
    }
    expect(events).toEqual(['restart 2', 'restart 1', 'switchover 0->1', 'restart 0']);
    expect(revs).toEqual([NEW, NEW, NEW]);
  });
});

describe('planShard: scale-down', () => {
  it('switches over first when the primary holds an ordinal that goes', () => {
    const pods = [
      pod(0, { role: 'replica' }),
      pod(1, { role: 'replica' }),
      pod(2, { role: 'master' }),
    ];
    expect(next(sts(3, OLD), pods, 1)).toEqual({
      busy: true,
      action: {
        type: 'switchover',
        from: 'shop-db-0-2',
        candidates: ['shop-db-0-0', 'shop-db-0-1'],
        why: 'scale-down to 2 would remove the primary shop-db-0-2',
      },
    });
  });

  it('lowers the replicas once the primary is on a surviving ordinal, ready or not the rest', () => {
    const pods = [
      pod(0, { role: 'master' }),
      pod(1, { role: 'replica' }),
      pod(2, { role: 'replica', ready: false }),
    ];
    expect(next(sts(3, OLD), pods, 1).action).toMatchObject({ type: 'scaleDown', replicas: 2 });
  });

  it('waits for a ready replica below the new size to take over', () => {
    const pods = [pod(0, { role: 'replica', ready: false }), pod(1, { role: 'master' })];
    expect(next(sts(2, OLD), pods, 0).action).toMatchObject({ type: 'wait' });
  });

  it('scales down before it rolls, so no pod about to go is restarted', () => {
    const pods = [
      pod(0, { role: 'master' }),
      pod(1, { role: 'replica' }),
      pod(2, { role: 'replica' }),
    ];
    expect(next(sts(3, NEW), pods, 1).action).toMatchObject({ type: 'scaleDown', replicas: 2 });
  });
});

describe('chooseCandidate, sameAction', () => {
  it('takes only a synchronous standby in synchronous mode', () => {
    expect(chooseCandidate(['a', 'b'], undefined)).toBe('a');
    expect(chooseCandidate(['a', 'b'], ['b'])).toBe('b');
    expect(chooseCandidate(['a'], [])).toBeUndefined();
  });

  it('compares what an action would change', () => {
    const del = (pod: string, uid: string): RolloutAction => ({
      type: 'deletePod',
      pod,
      uid,
      why: '',
    });
    expect(sameAction(del('a', '1'), del('a', '1'))).toBe(true);
    expect(sameAction(del('a', '1'), del('a', '2'))).toBe(false);
    expect(sameAction(del('a', '1'), { type: 'wait', why: '' })).toBe(false);
  });
});

describe('holdReplicas', () => {
  const desired = buildDatabase(app(1)).find((o) => o.kind === 'StatefulSet')!;

  it('never lowers replicas through apply, and raises them', () => {
    expect((holdReplicas(desired, sts(3))['spec'] as { replicas: number }).replicas).toBe(3);
    expect(holdReplicas(desired, sts(1))).toBe(desired);
    expect(holdReplicas(desired, undefined)).toBe(desired);
  });
});
