// Two operator processes on one Lease: exactly one reconciles; kill -9 the leader and the
// other takes over once the lease expires (the default timings: 30 s, observed at 2 s retry
// periods).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, printLogDirOnFailure, uniqueName } from '../../devcluster/testing.ts';
import { LEASE_KIND } from '../../operator/reconcile/kinds.ts';
import type { KubeClient } from '../../operator/runtime/kube-client.ts';
import { LEASE_DEFAULTS } from '../../operator/runtime/settings.ts';
import {
  applyAs,
  closeSuite,
  conditionOf,
  getApp,
  getObj,
  kindInfo,
  mutatingRequests,
  openSuite,
  scalableApp,
  startOperator,
} from './operator-harness.ts';
import type { Json, OperatorProcess } from './operator-harness.ts';

const ns = uniqueName('op-ha');
const lease = uniqueName('lease-ha');
let client: KubeClient;
let a: OperatorProcess;
let b: OperatorProcess;

const app = (name: string, image: string) => scalableApp(ns, name, { web: { image } });

/** Converged: the generation observed and Ready=True for it, not merely a Ready condition. */
async function observedGeneration(name: string, generation: number): Promise<true | undefined> {
  const obj = await getApp(client, ns, name);
  const status = obj?.['status'] as Json | undefined;
  const ready = conditionOf(obj, 'Ready');
  return status?.['observedGeneration'] === generation &&
    ready?.['status'] === 'True' &&
    ready['observedGeneration'] === generation
    ? true
    : undefined;
}

/** The image the app's web Deployment runs: what the leader applied. */
async function webImage(name: string): Promise<string | undefined> {
  const d = await getObj(client, kindInfo('apps/v1', 'Deployment'), ns, `${name}-web`);
  const spec = d?.['spec'] as
    { template: { spec: { containers: Array<{ image: string }> } } } | undefined;
  return spec?.template.spec.containers[0]?.image;
}

beforeAll(async () => {
  client = await openSuite(ns);
});

afterAll(async () => {
  await Promise.all([a?.stop('SIGKILL'), b?.stop('SIGKILL')]);
  await closeSuite(client, { namespaces: [ns] });
});

describe('leader election', () => {
  printLogDirOnFailure();

  it('lets exactly one of two processes reconcile', async () => {
    a = await startOperator({ SCALABLE_LEASE_NAME: lease });
    await eventually(
      'a leads',
      async () => ((await a.metric('scalable_leader')) === 1 ? true : undefined),
      30_000,
    );
    b = await startOperator({ SCALABLE_LEASE_NAME: lease });
    await applyAs(client, 'test-user', app('one', 'ghcr.io/acme/one:1'));
    await eventually('one reconciled', () => observedGeneration('one', 1), 60_000);
    expect(await webImage('one')).toBe('ghcr.io/acme/one:1');
    expect(await a.metric('scalable_leader')).toBe(1);
    expect(await b.metric('scalable_leader')).toBe(0);
    expect(await a.metric('scalable_reconcile_total')).toBeGreaterThan(0);
    expect(await b.metric('scalable_reconcile_total')).toBe(0);
    expect(await mutatingRequests(b, 'leases')).toBe(0);
    const l = await getObj(client, LEASE_KIND, 'default', lease);
    expect((l?.['spec'] as Json)['holderIdentity']).toMatch(new RegExp(`_${a.pid}_`));
  });

  it('hands over within the lease time when the leader is killed', async () => {
    const killedAt = Date.now();
    await a.stop('SIGKILL');
    const { leaseDurationMs, retryPeriodMs } = LEASE_DEFAULTS;
    // A standby may only take a lease whose record stood still for the lease duration as it
    // observed it (client-go's rule: no trust in clocks), polling every retry period: the
    // bound is lease + two retry periods (with jitter) after the leader's last renewal.
    const bound = leaseDurationMs + 2 * retryPeriodMs * 1.2 + 500;
    await eventually(
      'b leads',
      async () => ((await b.metric('scalable_leader')) === 1 ? true : undefined),
      bound + 15_000,
    );
    const takeoverMs = Date.now() - killedAt;
    console.log(`[operator-ha] takeover after kill -9: ${(takeoverMs / 1000).toFixed(1)} s`);
    expect(takeoverMs).toBeLessThan(bound);
    // The new leader does the work: a spec change and a new app converge.
    await applyAs(client, 'test-user', app('one', 'ghcr.io/acme/one:2'));
    await applyAs(client, 'test-user', app('two', 'ghcr.io/acme/two:1'));
    await eventually('one at generation 2', () => observedGeneration('one', 2), 60_000);
    await eventually('two reconciled', () => observedGeneration('two', 1), 60_000);
    expect(await webImage('one')).toBe('ghcr.io/acme/one:2');
    expect(await webImage('two')).toBe('ghcr.io/acme/two:1');
    expect(await b.metric('scalable_reconcile_total')).toBeGreaterThan(0);
    const l = await getObj(client, LEASE_KIND, 'default', lease);
    expect((l?.['spec'] as Json)['holderIdentity']).toMatch(new RegExp(`_${b.pid}_`));
    expect((l?.['spec'] as Json)['leaseTransitions']).toBeGreaterThanOrEqual(1);
  });
});
