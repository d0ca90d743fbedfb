// Rollouts and scale-downs of a 3-pod shard driven by the database tier's step hook, on the
// engine harness: real Patroni + Postgres on loopback, the embedded control plane's API as
// the DCS, kwok pods, and a kubelet stand-in that stops and starts a member's Patroni as its
// pod is deleted and re-created (patroni-kubelet.ts). A writer writes all along.
// Timings are printed here and recorded by `npm run bench:rollout`, never asserted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDatabase } from './patroni-harness.ts';
import type { Harness } from './patroni-harness.ts';
import { operatorAccess, startKubelet } from './patroni-kubelet.ts';
import type { Kubelet } from './patroni-kubelet.ts';
import { rollout, scaleDown, settled, syncScaleDown } from './patroni-rollout-scenarios.ts';
import type { ClusterAccess } from '../../operator/tiers/tier.ts';

describe('database rollouts driven by the operator: one shard, primary + 2 replicas', () => {
  let h: Harness;
  let kubelet: Kubelet;
  let cluster: ClusterAccess;
  const numbers: Record<string, unknown> = {};

  beforeAll(async () => {
    // deletionPolicy Delete: a scale-down must keep the volume even then (whenScaled Retain).
    h = await startDatabase('pg-roll', { replicasPerShard: 2, deletionPolicy: 'Delete' });
    await settled(h);
    cluster = await operatorAccess(h);
    kubelet = startKubelet(h);
  });

  afterAll(async ({}, suite) => {
    await kubelet?.stop();
    await h?.stop(suite);
    console.log(`[patroni-rollout] measured: ${JSON.stringify(numbers)}`);
  });

  it('rolls replicas first, then one switchover, then the old primary: no failover, no write lost', async () => {
    const out = await rollout(h, cluster);
    numbers['rollout'] = {
      ...out,
      writes: out.writes.map((w) => `${w.action} ${w.kind} ${w.name}`),
    };
    const deleted = out.writes.filter((w) => w.kind === 'Pod').map((w) => w.name);
    expect(deleted).toHaveLength(3);
    expect(new Set(deleted).size).toBe(3);
    expect(out.switchovers).toBe(1);
    // The switchover comes after both replicas, before the old primary.
    expect(out.writes.map((w) => w.kind)).toEqual(['Pod', 'Pod', 'ConfigMap', 'Pod']);
    const [oldPrimary, newPrimary] = out.primaries;
    expect(out.writes[3]?.name).toBe(oldPrimary);
    // What Postgres said as each pod deletion went out: while the replicas went, the old
    // primary was the primary (the probe sees one when there is one); when the old primary's
    // pod went, it no longer was (the new one may still be finishing its promotion: Patroni
    // labels a member primary as it starts promoting).
    expect(out.guarded.map((g) => g.what)).toEqual(
      out.writes.filter((w) => w.kind === 'Pod').map((w) => `delete Pod ${w.name}`),
    );
    expect(out.guarded.slice(0, 2).map((g) => g.primaries)).toEqual([[oldPrimary], [oldPrimary]]);
    expect([[], [newPrimary]]).toContainEqual(out.guarded[2]?.primaries);
    // Each promotion starts a timeline: exactly one, the switchover; so no failover.
    expect(out.promotions).toBe(1);
    expect(out.primaries).toHaveLength(2);
    expect(out.acked).toBeGreaterThan(0);
    expect(out.lost).toBe(0);
  }, 400_000);

  it('lowering replicasPerShard with the primary on the highest ordinal: switchover first, no write lost, volume kept', async () => {
    const out = await scaleDown(h, cluster, kubelet);
    numbers['scaleDown'] = {
      ...out,
      writes: out.writes.map((w) => `${w.action} ${w.kind} ${w.name}`),
    };
    expect(out.primaries[0]).toBe('shop-db-0-2');
    expect(out.heldReplicas).toBe(3); // the apply did not remove the primary's pod
    expect(out.writes.map((w) => `${w.action} ${w.kind}`)).toEqual([
      expect.stringMatching(/^(Created|Updated) ConfigMap$/),
      'Updated StatefulSet',
    ]);
    expect(out.finalReplicas).toBe(2);
    expect(out.promotions).toBe(1);
    expect(out.primaries).toHaveLength(2);
    expect(out.primaries[1]).not.toBe('shop-db-0-2');
    // Switchover first, as Postgres saw it: when the StatefulSet was lowered (which deletes
    // pod 2), pod 2 was no primary any more (the new one was, or was finishing promotion).
    expect(out.guarded.map((g) => g.what)).toEqual(['patch StatefulSet shop-db-0 replicas=2']);
    expect([[], [out.primaries[1]]]).toContainEqual(out.guarded[0]?.primaries);
    expect(out.lost).toBe(0);
    // Volume kept: after the garbage collector has acted on the pod's deletion, the claim is
    // there and owned by nothing that could have it collected; its volume holds the data.
    expect(out.pvcOwners).toEqual([]);
    expect(out.dataDirKept).toBe(true);
  }, 400_000);
});

describe('a synchronous shard scaled down: primary + 2 replicas, then 1', () => {
  let h: Harness;
  let kubelet: Kubelet;
  let cluster: ClusterAccess;

  beforeAll(async () => {
    h = await startDatabase('pg-roll-sync', { replicasPerShard: 2, synchronous: true });
    await settled(h);
    cluster = await operatorAccess(h);
    kubelet = startKubelet(h);
  });

  afterAll(async ({}, suite) => {
    await kubelet?.stop();
    await h?.stop(suite);
  });

  it('the synchronous standby on the ordinal that goes: restarted first, the StatefulSet lowered once Patroni names a survivor, no write lost', async () => {
    const out = await syncScaleDown(h, cluster);
    console.log(
      `[patroni-rollout] sync scale-down: ${JSON.stringify({
        ...out,
        writes: out.writes.map((w) => `${w.action} ${w.kind} ${w.name}`),
      })}`,
    );
    expect(out.writes.map((w) => `${w.action} ${w.kind} ${w.name}`)).toEqual([
      'Deleted Pod shop-db-0-2',
      'Updated StatefulSet shop-db-0',
    ]);
    // When the StatefulSet was lowered Patroni named a standby that stays.
    expect(out.syncAtScaleDown?.length).toBeGreaterThan(0);
    expect(out.syncAtScaleDown?.filter((n) => !/^shop-db-0-[01]$/.test(n))).toEqual([]);
    expect(out.finalReplicas).toBe(2);
    expect(out.promotions).toBe(0);
    expect(out.lost).toBe(0);
  }, 400_000);
});
