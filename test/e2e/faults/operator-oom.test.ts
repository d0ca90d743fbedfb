// The operator's leader killed by the kernel's OOM killer (issue 34, item 4), on the shared
// sample app: its container's cgroup limit lowered under its use (support/faults.ts oomKill),
// as when a burst outgrows the pod's memory limit. The kubelet restarts the container in the
// same pod; the operator resumes from the cluster's state: the other replica or the restarted
// one leads, a spec change made after the kill is applied, the app never left Ready (its
// condition's last transition as before), and none of its objects was recreated (their UIDs
// as before: no duplicate made by a reconcile that lost its memory).
import { describe, expect, it } from 'vitest';
import { raiseHpaBound, seconds, useSharedApp, waitHpaBound } from '../support/app.ts';
import { OPERATOR_NAMESPACE } from '../support/cluster.ts';
import { oomKill } from '../support/faults.ts';
import {
  appCondition,
  eventually,
  getJson,
  waitAppReady,
  type List,
  type Meta,
  type Pod,
} from '../support/kube.ts';
import { leader } from '../support/operator.ts';
import { record } from '../support/results.ts';

const app = useSharedApp();
const { namespace: NS, name: APP } = app;

/** The kinds the operator makes for an app (pods and ReplicaSets are their controllers'). */
const KINDS =
  'deployments,statefulsets,services,configmaps,secrets,serviceaccounts,roles,rolebindings,' +
  'poddisruptionbudgets,networkpolicies,horizontalpodautoscalers';

/** name -> uid of every object of the app the operator owns. */
async function ownedObjects(): Promise<Record<string, string>> {
  const list = await getJson<
    List<{ kind: string; metadata: Meta & { ownerReferences?: { kind: string }[] } }>
  >(['get', KINDS, '-n', NS, '-o', 'json']);
  return Object.fromEntries(
    list.items
      .filter((o) => o.metadata.ownerReferences?.some((r) => r.kind === 'ScalableApp'))
      .map((o) => [`${o.kind}/${o.metadata.name}`, o.metadata.uid ?? '']),
  );
}

interface ContainerStatus {
  name: string;
  restartCount?: number;
  ready?: boolean;
  lastState?: { terminated?: { reason?: string; exitCode?: number } };
}
const operatorContainer = async (pod: string): Promise<ContainerStatus | undefined> =>
  (
    await getJson<Pod & { status: { containerStatuses?: ContainerStatus[] } }>([
      'get',
      'pod',
      pod,
      '-n',
      OPERATOR_NAMESPACE,
    ])
  ).status.containerStatuses?.[0];

describe('the operator out of memory on kind', () => {
  it('operator: the leader OOM-killed -> restarted in place; the operator leads again and applies a spec change; the app never left Ready and no object was recreated', async () => {
    await waitAppReady(NS, APP);
    const readyBefore = await appCondition(NS, APP, 'Ready');
    const objectsBefore = await ownedObjects();
    expect(Object.keys(objectsBefore).length).toBeGreaterThan(10);
    const victim = await eventually('an operator leader', leader, 120_000, 1000);
    const before = await operatorContainer(victim);
    const container = before?.name ?? 'operator';

    const killed = await oomKill(OPERATOR_NAMESPACE, victim, container);
    expect(killed.exitCode, 'SIGKILL by the OOM killer').toBe(137);
    const restarted = await eventually(
      `${victim} restarted after an OOMKilled termination`,
      async () => {
        const c = await operatorContainer(victim);
        return c &&
          (c.restartCount ?? 0) > (before?.restartCount ?? 0) &&
          c.lastState?.terminated?.reason === 'OOMKilled'
          ? c
          : undefined;
      },
      180_000,
      1000,
    );
    expect(restarted.lastState?.terminated?.exitCode).toBe(137);

    // A spec change after the kill (the HPA's bound: no pod rolls) is applied by whoever
    // leads now: the restarted process, or the other replica once the lease ran out.
    const { maxReplicas } = await raiseHpaBound(app);
    await waitHpaBound(app, maxReplicas, 'after the OOM kill');
    record({
      name: 'operator: OOM kill of the leader -> a spec change applied',
      value: seconds(Date.now() - killed.doneAt),
      note: `leader now ${(await leader()) ?? '?'}`,
    });
    await waitAppReady(NS, APP);
    const readyAfter = await appCondition(NS, APP, 'Ready');
    expect(readyAfter?.status).toBe('True');
    expect(readyAfter?.lastTransitionTime, 'Ready never left True').toBe(
      readyBefore?.lastTransitionTime,
    );
    expect(await ownedObjects(), 'no object of the app recreated').toEqual(objectsBefore);
  });
});
