// The operator on kind, as the chart installs it (two replicas, one leading): its leader pod
// killed, the other replica leads and applies a spec change; a `helm upgrade` that rolls it
// keeps the app Ready throughout. On the shared sample app (support/app.ts).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { quietCluster, ROOT as root, seconds, useSharedApp } from './support/app.ts';
import { OPERATOR_NAMESPACE, RELEASE } from './support/cluster.ts';
import {
  appConditions,
  apply,
  eventually,
  getJson,
  helm,
  kubectl,
  readyAsServed,
  waitAppReady,
} from './support/kube.ts';
import { leader } from './support/operator.ts';
import { record } from './support/results.ts';

const app = useSharedApp();
const { namespace: NS, name: APP } = app;

describe('the operator on kind', () => {
  it('operator: killing the leader pod -> the other replica takes over and a spec change is still applied', async () => {
    // Timed: with no other e2e file's app busy on the cluster.
    await quietCluster([NS]);
    const old = await eventually('an operator leader', leader, 120_000, 1000);
    const deletedAt = Date.now();
    await kubectl(['delete', 'pod', old, '-n', OPERATOR_NAMESPACE, '--wait=false']);
    const next = await eventually(
      `a leader other than ${old}`,
      async () => {
        const l = await leader();
        return l && l !== old ? l : undefined;
      },
      180_000,
      500,
    );
    record({
      name: 'failover: operator leader deleted -> other replica leads',
      value: seconds(Date.now() - deletedAt),
      note: `${old} -> ${next}`,
    });
    await apply(
      app.spec({ webEnv: [{ name: 'E2E_ROLLOUT', value: 'after-leader-change' }], maxReplicas: 5 }),
    );
    await eventually(
      'the HPA raised to 5 by the new leader',
      async () => {
        const hpa = await getJson<{ spec: { maxReplicas: number } }>([
          'get',
          'hpa',
          `${APP}-web`,
          '-n',
          NS,
        ]);
        return hpa.spec.maxReplicas === 5 ? true : undefined;
      },
      180_000,
      1000,
    );
    await waitAppReady(NS, APP);
  });

  it('operator: helm upgrade keeps the app Ready throughout', async () => {
    await waitAppReady(NS, APP);
    const seen: string[] = [];
    let stop = false;
    const watcher = (async () => {
      while (!stop) {
        const conds = await appConditions(NS, APP).catch(() => []);
        const c = conds.find((x) => x.type === 'Ready');
        seen.push(
          readyAsServed(conds)
            ? 'True'
            : `${c?.status ?? 'unknown'} (${c?.reason ?? ''}: ${c?.message ?? ''})`,
        );
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();
    const start = Date.now();
    try {
      await helm([
        'upgrade',
        RELEASE,
        join(root, 'charts', 'scalable-operator'),
        '--namespace',
        OPERATOR_NAMESPACE,
        '--reuse-values',
        '--set',
        'logLevel=debug',
        '--wait',
        '--timeout',
        '5m',
      ]);
      // The new operator pods reconcile the app again once they lead.
      await eventually('a leader among the upgraded pods', leader, 180_000, 1000);
      await new Promise((r) => setTimeout(r, 15_000));
    } finally {
      stop = true;
      await watcher;
    }
    record({ name: 'case: helm upgrade (operator rolled)', value: seconds(Date.now() - start) });
    expect(seen.length).toBeGreaterThan(5);
    expect(
      seen.filter((s) => s !== 'True'),
      `Ready statuses seen during the upgrade: ${seen.join(', ')}`,
    ).toEqual([]);
  });
});
