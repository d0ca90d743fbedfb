// A cluster that serves only part of an optional API group, and an operator whose RBAC lacks
// one kind: discovery is per resource and workers wait only for the caches an app needs, so
// the rest of the operator works and each affected tier says what is missing.
// - monitoring.coreos.com with only the ServiceMonitor CRD (as OTel/Alloy setups install it):
//   a minimal app converges to Ready; an app asking for monitoring (PodMonitors,
//   PrometheusRule) is not Ready, MonitoringReady=APIUnavailable naming the kinds.
// - list/watch on traefik.io Middlewares withheld (403): an app with a traefik Ingress is not
//   Ready, IngressReady says the list was refused; its web tier is served regardless.
// The removed CRDs are put back afterwards for the suites that follow.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { waitEstablished } from '../../devcluster/crds.ts';
import { crdDir } from '../../devcluster/paths.ts';
import { eventually, printLogDirOnFailure, uniqueName } from '../../devcluster/testing.ts';
import { OPERATOR_RULES } from '../../operator/rbac.ts';
import type { KubeClient } from '../../operator/runtime/kube-client.ts';
import {
  applyAs,
  closeSuite,
  conditionOf,
  getApp,
  getObj,
  kindInfo,
  kubeconfig,
  kubectl,
  openSuite,
  scalableApp,
  startOperatorAs,
} from './operator-harness.ts';
import type { Json, OperatorProcess } from './operator-harness.ts';

const ns = uniqueName('op-partial');
const lease = uniqueName('lease-partial');
const identity = uniqueName('scalable-operator');
let client: KubeClient;
let op: OperatorProcess;

/** Every monitoring.coreos.com CRD but ServiceMonitor's. */
const MONITORING_BUT_SERVICEMONITORS = [
  'alertmanagerconfigs',
  'alertmanagers',
  'podmonitors',
  'probes',
  'prometheusagents',
  'prometheuses',
  'prometheusrules',
  'scrapeconfigs',
  'thanosrulers',
].map((p) => `${p}.monitoring.coreos.com`);

/** operator/rbac.ts's rules without traefik.io (the operator cannot list Middlewares). */
const withoutTraefik = OPERATOR_RULES.filter((r) => !r.apiGroups.includes('traefik.io'));

const condition = async (name: string, type: string): Promise<Json | undefined> =>
  conditionOf(await getApp(client, ns, name), type);

beforeAll(async () => {
  client = await openSuite(ns);
  await kubectl(kubeconfig(), [
    'delete',
    'crd',
    '--ignore-not-found',
    '--wait=true',
    ...MONITORING_BUT_SERVICEMONITORS,
  ]);
  op = await startOperatorAs(client, identity, { lease, rules: withoutTraefik });
});

afterAll(async () => {
  await closeSuite(client, { operators: [op], namespaces: [ns], identities: [identity] });
  // Only the group this file removed (re-applying every upstream CRD costs minutes).
  await kubectl(kubeconfig(), [
    'apply',
    '--server-side',
    '--force-conflicts',
    '-f',
    join(crdDir(), 'prometheus-operator'),
  ]);
  await waitEstablished(kubeconfig());
});

describe('partial optional APIs and a refused list', () => {
  printLogDirOnFailure();

  it('reconciles a minimal app to Ready with only the ServiceMonitor CRD served', async () => {
    const served = await kubectl(kubeconfig(), ['get', 'crd', '-o', 'name']);
    expect(served.stdout).toContain('servicemonitors.monitoring.coreos.com');
    expect(served.stdout).not.toContain('podmonitors.monitoring.coreos.com');
    await applyAs(client, 'test-user', scalableApp(ns, 'minimal', { web: { image: 'a:1' } }));
    await eventually(
      'minimal Ready',
      async () => ((await condition('minimal', 'Ready'))?.['status'] === 'True' ? true : undefined),
      90_000,
    );
    expect(await op.probe('/readyz')).toBe(200);
  });

  it('says which monitoring kinds are not served, and holds Ready back for that app only', async () => {
    await applyAs(
      client,
      'test-user',
      scalableApp(ns, 'watched', { web: { image: 'a:1' }, monitoring: {} }),
    );
    // Once the web tier is up, only the missing kinds hold the app back.
    const mon = await eventually(
      'WebReady and MonitoringReady APIUnavailable',
      async () => {
        const c = await condition('watched', 'MonitoringReady');
        const web = await condition('watched', 'WebReady');
        return c?.['reason'] === 'APIUnavailable' && web?.['status'] === 'True' ? c : undefined;
      },
      90_000,
    );
    expect(mon['status']).toBe('False');
    expect(String(mon['message'])).toContain('monitoring.coreos.com/v1 PrometheusRule');
    expect(String(mon['message'])).toContain('not served');
    expect(await condition('watched', 'Ready')).toMatchObject({
      status: 'False',
      reason: 'APIUnavailable',
    });
    expect(
      await getObj(client, kindInfo('apps/v1', 'Deployment'), ns, 'watched-web'),
    ).toBeDefined();
  });

  it('says a kind whose list is refused (403) makes its tier unavailable; the rest is served', async () => {
    await applyAs(
      client,
      'test-user',
      scalableApp(ns, 'edge', {
        web: { image: 'a:1' },
        ingress: { host: 'edge.example.com', className: 'traefik' },
      }),
    );
    const ing = await eventually(
      'WebReady and IngressReady APIUnavailable',
      async () => {
        const c = await condition('edge', 'IngressReady');
        const web = await condition('edge', 'WebReady');
        return c?.['reason'] === 'APIUnavailable' && web?.['status'] === 'True' ? c : undefined;
      },
      90_000,
    );
    expect(String(ing['message'])).toContain('traefik.io/v1alpha1 Middleware');
    expect(String(ing['message'])).toContain('403');
    expect(await condition('edge', 'Ready')).toMatchObject({
      status: 'False',
      reason: 'APIUnavailable',
    });
    expect(
      await getObj(client, kindInfo('networking.k8s.io/v1', 'Ingress'), ns, 'edge-web'),
    ).toBeDefined();
    // The other apps are unaffected.
    expect((await condition('minimal', 'Ready'))?.['status']).toBe('True');
  });
});
