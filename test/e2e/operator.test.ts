// The operator on kind, as the chart installs it (two replicas, one leading): its leader pod
// killed, the other replica leads and applies a spec change; a `helm upgrade` that rolls it
// keeps the app serving throughout (its web Service's endpoints and a client's answers) and the
// new operator pods write its status. On the shared sample app (support/app.ts).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  quietCluster,
  raiseHpaBound,
  ROOT as root,
  seconds,
  useSharedApp,
  waitHpaBound,
} from './support/app.ts';
import { OPERATOR_NAMESPACE, RELEASE } from './support/cluster.ts';
import {
  apply,
  eventually,
  getJson,
  helm,
  kubectl,
  waitAppReady,
  type Pod,
} from './support/kube.ts';
import { leader, operatorPods } from './support/operator.ts';
import { watchEndpoints } from './support/endpoints.ts';
import { startTraffic, type TrafficResult } from './support/traffic.ts';
import { record } from './support/results.ts';

const app = useSharedApp();
const { namespace: NS, name: APP, client: CLIENT } = app;

describe('the operator on kind', () => {
  it('operator: killing the leader pod -> the other replica takes over and a spec change is still applied', async () => {
    // Timed (recorded, not asserted): quiet for at most 30 s, then on, saying what was busy.
    const busy = await quietCluster([NS], 30_000);
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
      note: `${old} -> ${next}${busy ? `; ${busy}` : ''}`,
    });
    await apply(
      app.spec({ webEnv: [{ name: 'E2E_ROLLOUT', value: 'after-leader-change' }], maxReplicas: 5 }),
    );
    await waitHpaBound(app, 5, 'by the new leader');
    await waitAppReady(NS, APP);
  });

  it('operator: helm upgrade rolls the operator; the app serves throughout and the new operator pods take over its status', async () => {
    await waitAppReady(NS, APP);
    const before = new Set((await operatorPods()).map((p) => p.metadata.uid));
    // A value of this run only: the upgrade rolls the operator whatever the release held.
    const mark = String(Date.now());
    // The world during the upgrade, not the status the operator writes (nobody writes it
    // while the operator is replaced): the web Service's ready endpoints and a client's
    // answers through it.
    const endpoints = await watchEndpoints(NS, `${APP}-web`);
    let traffic: TrafficResult;
    let upgradeStart = 0;
    let upgradedAt = 0;
    let next: Pod | undefined;
    try {
      const client = await startTraffic(NS, CLIENT, `http://${APP}-web.${NS}.svc/healthz`);
      try {
        endpoints.resetMin();
        upgradeStart = Date.now();
        await helm([
          'upgrade',
          RELEASE,
          join(root, 'charts', 'scalable-operator'),
          '--namespace',
          OPERATOR_NAMESPACE,
          '--reuse-values',
          '--set',
          'logLevel=debug',
          '--set-string',
          `podAnnotations.e2e-upgrade=${mark}`,
          '--wait',
          '--timeout',
          '5m',
        ]);
        upgradedAt = Date.now();
        record({
          name: 'case: helm upgrade (operator rolled)',
          value: seconds(upgradedAt - upgradeStart),
        });
        // A pod the upgrade started (a uid not seen before, the new config) leads.
        next = await eventually(
          'a leader among the pods the upgrade started',
          async () => {
            const name = await leader();
            return (await operatorPods()).find(
              (p) => p.metadata.name === name && !before.has(p.metadata.uid),
            );
          },
          180_000,
          1000,
        );
        // Status written after the upgrade, so by the new pods: a spec change (a new
        // generation, without rolling any pod: the HPA's bound) observed and Ready.
        const { generation } = await raiseHpaBound(app);
        await waitAppReady(NS, APP, 180_000);
        const after = await getJson<{
          metadata: { generation: number };
          status: { observedGeneration: number };
        }>(['get', 'scalableapp', APP, '-n', NS]);
        expect(after.metadata.generation, 'generation after the spec change').toBeGreaterThan(
          generation,
        );
        expect(after.status.observedGeneration, 'generation the new operator observed').toBe(
          after.metadata.generation,
        );
        // The client goes on until an answer after the change (or a minute of none).
        await client.answeredAfter(upgradedAt);
      } finally {
        traffic = await client.stop();
      }
    } finally {
      endpoints.stop();
    }
    expect(
      next?.metadata.annotations?.['e2e-upgrade'],
      'the new leader runs the upgraded values',
    ).toBe(mark);
    expect(endpoints.ended(), 'the EndpointSlice watch ended early').toBeUndefined();
    expect(
      endpoints.minReady(),
      'fewest ready web endpoints during the upgrade',
    ).toBeGreaterThanOrEqual(1);
    expect(
      traffic.failures,
      `failed requests through the Service during the upgrade (${traffic.ok} answered)`,
    ).toEqual([]);
    expect(traffic.firstOk, 'first answer before the upgrade').toBeLessThan(upgradeStart);
    expect(traffic.lastOk, 'last answer after the upgrade').toBeGreaterThan(upgradedAt);
  });
});
