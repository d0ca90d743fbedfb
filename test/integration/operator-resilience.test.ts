// The operator keeps going through what a real cluster does to it: an API server restart
// mid-run, and a stored ScalableApp that the served schema let in but the operator's deeper
// validation rejects (Ready=False, InvalidSpec, no retry storm, still healthy).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, printLogDirOnFailure, uniqueName } from '../../devcluster/testing.ts';
import type { KubeClient } from '../../operator/runtime/kube-client.ts';
import {
  apiClient,
  applyAs,
  closeSuite,
  conditionOf,
  getApp,
  getObj,
  installCrd,
  kindInfo,
  kubeconfig,
  kubectl,
  openSuite,
  restartApiServer,
  scalableApp,
  startOperator,
} from './operator-harness.ts';
import type { Json, OperatorProcess } from './operator-harness.ts';

const ns = uniqueName('op-res');
let client: KubeClient;
let op: OperatorProcess;

const deploymentImage = async (name: string): Promise<string | undefined> => {
  const d = await getObj(client, kindInfo('apps/v1', 'Deployment'), ns, `${name}-web`);
  return (
    d?.['spec'] as { template: { spec: { containers: Array<{ image: string }> } } } | undefined
  )?.template.spec.containers[0]?.image;
};

async function atGeneration(name: string, generation: number): Promise<Json | undefined> {
  const app = await getApp(client, ns, name);
  return (app?.['status'] as Json | undefined)?.['observedGeneration'] === generation
    ? app
    : undefined;
}

/** The CRD without its CEL rules: what an older CRD, or a cluster without them, lets in. */
function relaxedCrd(): string {
  const crd = yaml.load(
    readFileSync(
      join(import.meta.dirname, '..', '..', 'crds', 'scalableapps.scalable.dev.yaml'),
      'utf8',
    ),
  );
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (typeof v === 'object' && v !== null) {
      return Object.fromEntries(
        Object.entries(v)
          .filter(([k]) => k !== 'x-kubernetes-validations')
          .map(([k, x]) => [k, strip(x)]),
      );
    }
    return v;
  };
  return JSON.stringify(strip(crd));
}

beforeAll(async () => {
  client = await openSuite(ns);
  // A leader that cannot renew for the renew deadline exits (a replacement starts clean):
  // timings longer than the API server restart below, as an operator would configure them
  // for a control plane known to restart slowly.
  op = await startOperator({
    SCALABLE_LEASE_NAME: uniqueName('lease-res'),
    SCALABLE_LEASE_DURATION_SECONDS: '90',
    SCALABLE_LEASE_RENEW_DEADLINE_SECONDS: '60',
  });
});

afterAll(async () => {
  await installCrd(kubeconfig()).catch(() => undefined);
  await closeSuite(client, { operators: [op], namespaces: [ns] });
});

describe('operator resilience', () => {
  printLogDirOnFailure();

  it('recovers from an API server restart without restarting itself', async () => {
    await applyAs(
      client,
      'test-user',
      scalableApp(ns, 'rs', { web: { image: 'ghcr.io/acme/rs:1' } }),
    );
    await eventually('rs reconciled', () => atGeneration('rs', 1), 60_000);

    client.close();
    await restartApiServer(5_000);
    client = await apiClient();
    expect(op.child.exitCode).toBeNull();

    // Events after the restart still arrive: a spec change and a deleted child.
    await applyAs(
      client,
      'test-user',
      scalableApp(ns, 'rs', { web: { image: 'ghcr.io/acme/rs:2' } }),
    );
    await eventually(
      'image rs:2',
      async () => ((await deploymentImage('rs')) === 'ghcr.io/acme/rs:2' ? true : undefined),
      90_000,
    );
    await eventually('rs at generation 2', () => atGeneration('rs', 2), 60_000);
    await client.request('DELETE', `/api/v1/namespaces/${ns}/services/rs-web`, {
      verb: 'delete',
      resource: 'services',
    });
    await eventually(
      'service recreated',
      () => getObj(client, kindInfo('v1', 'Service'), ns, 'rs-web'),
      60_000,
    );
    expect(op.child.exitCode).toBeNull();
    expect(await op.probe('/healthz')).toBe(200);
    expect(await op.probe('/readyz')).toBe(200);
  });

  it('marks a spec that only deeper validation rejects InvalidSpec, without a retry storm', async () => {
    await kubectl(
      kubeconfig(),
      ['apply', '--server-side', '--force-conflicts', '-f', '-'],
      relaxedCrd(),
    );
    // minReplicas > maxReplicas: the served (relaxed) schema accepts it, the operator must not.
    await eventually(
      'bad app accepted by the relaxed CRD',
      async () =>
        applyAs(
          client,
          'test-user',
          scalableApp(ns, 'bad', {
            web: { image: 'ghcr.io/acme/bad:1', autoscaling: { minReplicas: 5, maxReplicas: 2 } },
          }),
        ),
      30_000,
    );
    await installCrd(kubeconfig());
    const bad = await eventually(
      'Ready=False InvalidSpec',
      async () => {
        const a = await getApp(client, ns, 'bad');
        return conditionOf(a, 'Ready')?.['reason'] === 'InvalidSpec' ? a : undefined;
      },
      60_000,
    );
    expect(conditionOf(bad, 'Ready')).toMatchObject({ status: 'False' });
    expect(String(conditionOf(bad, 'Ready')?.['message'])).toContain('spec.web.autoscaling');
    const before = await op.metric('scalable_reconcile_total', { result: 'invalid' });
    // This app's failed reconciles, from the log: the errors metric counts every app the
    // operator sees, and other test files' namespaces that are being deleted fail theirs.
    const failures = () =>
      op
        .logs()
        .split('\n')
        .filter((l) => l.includes(`"app":"${ns}/bad"`) && l.includes('reconcile failed')).length;
    const failuresBefore = failures();
    await sleep(10_000);
    const after = await op.metric('scalable_reconcile_total', { result: 'invalid' });
    expect(after - before).toBeLessThanOrEqual(1);
    expect(failures()).toBe(failuresBefore);
    expect(await getObj(client, kindInfo('apps/v1', 'Deployment'), ns, 'bad-web')).toBeUndefined();
    expect(await op.probe('/healthz')).toBe(200);
    expect(op.child.exitCode).toBeNull();
    // Fixing the spec is all it takes.
    await applyAs(
      client,
      'test-user',
      scalableApp(ns, 'bad', { web: { image: 'ghcr.io/acme/bad:1' } }),
    );
    await eventually(
      'bad fixed',
      () => getObj(client, kindInfo('apps/v1', 'Deployment'), ns, 'bad-web'),
      60_000,
    );
  });
});
