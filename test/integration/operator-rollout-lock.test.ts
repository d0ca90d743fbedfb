// The database tier's rollout step against a real API server (issue 25, item 5): the step
// reads Patroni's lock, config and sync ConfigMaps and acts only when the lock holder is the
// labelled primary; a scale-down of a synchronous shard keeps a synchronous standby. The
// StatefulSet controller makes the pods (the embedded control plane has no kubelet for
// them); the test plays Patroni: it writes the role labels, the Ready condition and
// Patroni's ConfigMaps as a shard looks right after a failover whose labels lag the lock.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, printLogDirOnFailure, uniqueName } from '../../devcluster/testing.ts';
import { clusterAccess } from '../../operator/reconcile/cluster-access.ts';
import type { KubeClient } from '../../operator/runtime/kube-client.ts';
import { modelOf } from '../../operator/tiers/shared/test-helpers.ts';
import type { ObservedObject } from '../../operator/tiers/shared/report.ts';
import type { ClusterAccess } from '../../operator/tiers/tier.ts';
import { RESTART_PARAMETERS } from '../../operator/tiers/database/patroni-config.ts';
import { RolloutGate } from '../../operator/tiers/database/rollout-gate.ts';
import { stepRollouts } from '../../operator/tiers/database/rollout-step.ts';
import { closeSuite, getObj, kindInfo, openSuite } from './operator-harness.ts';
import type { Json } from './operator-harness.ts';

const ns = uniqueName('op-rolllock');
let client: KubeClient;
let cluster: ClusterAccess;

const SCOPE = 'shop-db-0';
const STS = kindInfo('apps/v1', 'StatefulSet');
const LABELS = { 'scalable.dev/database': 'shop', 'scalable.dev/cluster': SCOPE };
const member = (i: number) => `${SCOPE}-${i}`;

function statefulSet(replicas: number, stamp: string): Json {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: SCOPE, namespace: ns, labels: LABELS },
    spec: {
      replicas,
      serviceName: SCOPE,
      podManagementPolicy: 'Parallel',
      updateStrategy: { type: 'OnDelete' },
      selector: { matchLabels: LABELS },
      template: {
        metadata: { labels: LABELS, annotations: { stamp } },
        spec: {
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'postgres',
              image: 'registry.invalid/postgres:17',
              securityContext: {
                allowPrivilegeEscalation: false,
                capabilities: { drop: ['ALL'] },
              },
            },
          ],
        },
      },
    },
  };
}

async function applyStatefulSet(replicas: number, stamp: string): Promise<void> {
  await client.request('PATCH', `/apis/apps/v1/namespaces/${ns}/statefulsets/${SCOPE}`, {
    verb: 'patch',
    resource: 'statefulsets',
    contentType: 'application/apply-patch+yaml',
    query: { fieldManager: 'test', force: 'true' },
    body: statefulSet(replicas, stamp),
  });
}

/** What Patroni writes: the role label on each pod, Ready on each. */
async function rolesAndReady(roles: Record<string, 'master' | 'replica'>): Promise<void> {
  for (const [name, role] of Object.entries(roles)) {
    await client.request('PATCH', `/api/v1/namespaces/${ns}/pods/${name}`, {
      verb: 'patch',
      resource: 'pods',
      contentType: 'application/merge-patch+json',
      body: { metadata: { labels: { 'scalable.dev/role': role } } },
    });
    await client.request('PATCH', `/api/v1/namespaces/${ns}/pods/${name}/status`, {
      verb: 'patch',
      resource: 'pods',
      contentType: 'application/strategic-merge-patch+json',
      body: { status: { conditions: [{ type: 'Ready', status: 'True' }] } },
    });
  }
}

/** One of Patroni's ConfigMaps, annotations as Patroni writes them. */
async function patroniKey(name: string, annotations: Record<string, string>): Promise<void> {
  await client.request('PATCH', `/api/v1/namespaces/${ns}/configmaps/${name}`, {
    verb: 'patch',
    resource: 'configmaps',
    contentType: 'application/apply-patch+yaml',
    query: { fieldManager: 'patroni', force: 'true' },
    body: {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace: ns, labels: LABELS, annotations },
    },
  });
}

async function pods(): Promise<ObservedObject[]> {
  const list = await client.request<{ items: ObservedObject[] }>(
    'GET',
    `/api/v1/namespaces/${ns}/pods`,
    { verb: 'list', resource: 'pods' },
  );
  return list.items.map((p) => ({ ...p, apiVersion: 'v1', kind: 'Pod' }));
}

async function observed() {
  const sts = (await getObj(client, STS, ns, SCOPE)) as ObservedObject;
  return {
    objects: [{ ...sts, apiVersion: 'apps/v1', kind: 'StatefulSet' }],
    pods: await pods(),
    missingApis: [],
  };
}

const uids = async () =>
  Object.fromEntries(
    (await pods()).map((p) => [p.metadata.name, (p.metadata as { uid?: string }).uid]),
  );

/** The StatefulSet controller has made `n` pods and seen the latest spec. */
async function settledSet(n: number, outdated: boolean): Promise<void> {
  await eventually(`${n} pods of ${SCOPE}`, async () => {
    const sts = (await getObj(client, STS, ns, SCOPE)) as Json;
    const status = sts['status'] as { observedGeneration?: number; updateRevision?: string };
    const generation = (sts['metadata'] as { generation: number }).generation;
    const ps = await pods();
    const revs = ps.map((p) => p.metadata.labels?.['controller-revision-hash']);
    return ps.length === n &&
      status.observedGeneration === generation &&
      (!outdated || revs.every((r) => r !== status.updateRevision))
      ? true
      : undefined;
  });
}

beforeAll(async () => {
  client = await openSuite(ns);
  cluster = clusterAccess(client);
}, 120_000);

afterAll(async () => {
  await closeSuite(client, { namespaces: [ns] });
}, 120_000);

describe('rollout step: the lock, not the label, names the primary', () => {
  printLogDirOnFailure();
  it('a rollout step while the lock has moved to a replica does not delete the new primary', async () => {
    const app = modelOf({ database: { replicasPerShard: 2, synchronous: true } }, 'shop', ns);
    await applyStatefulSet(3, 'a');
    await settledSet(3, false);
    // Patroni on shop-db-0-0 led; a lock release moved the lock to shop-db-0-2, whose
    // promotion has not relabelled the pods yet (the old primary is frozen and cannot).
    await rolesAndReady({
      [member(0)]: 'master',
      [member(1)]: 'replica',
      [member(2)]: 'replica',
    });
    // The live config as dcs-sync leaves it: with the restart-only parameters of the
    // rendering (a lagging one holds every deletion, which is not what this case is about).
    await patroniKey(`${SCOPE}-config`, {
      config: JSON.stringify({
        ttl: 20,
        loop_wait: 1,
        retry_timeout: 3,
        synchronous_mode: true,
        postgresql: { parameters: { ...RESTART_PARAMETERS } },
      }),
    });
    await patroniKey(`${SCOPE}-leader`, { leader: member(2) });
    await patroniKey(`${SCOPE}-sync`, { leader: member(2), sync_standby: member(1) });
    // A new pod template: every pod is on the old revision, so the plan from the labels
    // alone is "restart the highest outdated replica": shop-db-0-2.
    await applyStatefulSet(3, 'b');
    await settledSet(3, true);
    const before = await uids();

    const writes = await stepRollouts(app, await observed(), cluster, new RolloutGate());
    expect(writes).toEqual([]);
    expect(await uids()).toEqual(before);

    // The control: once the labels follow the lock the step goes on, and never with the
    // primary (it restarts the highest outdated replica, shop-db-0-1).
    await rolesAndReady({ [member(0)]: 'replica', [member(2)]: 'master' });
    const next = await stepRollouts(app, await observed(), cluster, new RolloutGate());
    expect(next.map((w) => `${w.action} ${w.kind} ${w.name}`)).toEqual([
      `Deleted Pod ${member(1)}`,
    ]);
    expect((await uids())[member(2)]).toBe(before[member(2)]);
  }, 180_000);

  it('a scale-down while the synchronous standby is the highest ordinal restarts it, then waits for a surviving standby', async () => {
    // A fresh shard: 3 pods, primary shop-db-0-0, synchronous standby shop-db-0-2.
    await client.request('DELETE', `/apis/apps/v1/namespaces/${ns}/statefulsets/${SCOPE}`, {
      verb: 'delete',
      resource: 'statefulsets',
      body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Foreground' },
    });
    await eventually('the old shard gone', async () =>
      (await getObj(client, STS, ns, SCOPE)) === undefined && (await pods()).length === 0
        ? true
        : undefined,
    );
    await applyStatefulSet(3, 'c');
    await settledSet(3, false);
    await rolesAndReady({
      [member(0)]: 'master',
      [member(1)]: 'replica',
      [member(2)]: 'replica',
    });
    await patroniKey(`${SCOPE}-leader`, { leader: member(0) });
    await patroniKey(`${SCOPE}-sync`, { leader: member(0), sync_standby: member(2) });
    const before = await uids();
    // replicasPerShard 2 -> 1: the StatefulSet would remove shop-db-0-2, the standby.
    const app = modelOf({ database: { replicasPerShard: 1, synchronous: true } }, 'shop', ns);

    const first = await stepRollouts(app, await observed(), cluster, new RolloutGate());
    expect(first.map((w) => `${w.action} ${w.kind} ${w.name}`)).toEqual([
      `Deleted Pod ${member(2)}`,
    ]);
    const replicas = async () =>
      (
        (await getObj(client, STS, ns, SCOPE)) as {
          spec: { replicas: number };
        }
      ).spec.replicas;
    expect(await replicas()).toBe(3);
    // Patroni has not named a surviving standby yet: the step waits.
    await settledSet(3, false);
    await eventually('the restarted pod back', async () =>
      (await uids())[member(2)] !== before[member(2)] ? true : undefined,
    );
    await rolesAndReady({ [member(2)]: 'replica' });
    await patroniKey(`${SCOPE}-sync`, { leader: member(0), sync_standby: '' });
    expect(await stepRollouts(app, await observed(), cluster, new RolloutGate())).toEqual([]);
    expect(await replicas()).toBe(3);
    // Patroni names shop-db-0-1 (it keeps it): now the scale-down goes ahead.
    await patroniKey(`${SCOPE}-sync`, { leader: member(0), sync_standby: member(1) });
    const last = await stepRollouts(app, await observed(), cluster, new RolloutGate());
    expect(last.map((w) => `${w.action} ${w.kind} ${w.name}`)).toEqual([
      `Updated StatefulSet ${SCOPE}`,
    ]);
    expect(await replicas()).toBe(2);
  }, 180_000);
});
