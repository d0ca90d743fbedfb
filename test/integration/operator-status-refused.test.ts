// An operator whose RBAC lacks patch on scalableapps/status (a chart edited by hand, an old
// ClusterRole; issue 35's "chart without the status permission"): it still builds the app's
// objects, and it does not fail silently: the app carries a Warning event naming the refused
// permission (the status, which would say so, is what it cannot write), and the refusals
// are counted as reconcile errors. Its status stays unwritten: nothing claims Ready.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, printLogDirOnFailure, uniqueName } from '../../devcluster/testing.ts';
import { OPERATOR_RULES } from '../../operator/rbac.ts';
import type { KubeClient } from '../../operator/runtime/kube-client.ts';
import {
  applyAs,
  closeSuite,
  getApp,
  getObj,
  kindInfo,
  openSuite,
  scalableApp,
  startOperatorAs,
} from './operator-harness.ts';
import type { Json, OperatorProcess } from './operator-harness.ts';

const ns = uniqueName('op-status-refused');
const lease = uniqueName('lease-status-refused');
const identity = uniqueName('scalable-operator');
let client: KubeClient;
let op: OperatorProcess;

/** operator/rbac.ts's rules without scalableapps/status. */
const withoutStatus = OPERATOR_RULES.map((r) => ({
  ...r,
  resources: r.resources.filter((x) => x !== 'scalableapps/status'),
})).filter((r) => r.resources.length > 0);

beforeAll(async () => {
  client = await openSuite(ns);
  op = await startOperatorAs(client, identity, { lease, rules: withoutStatus });
});

afterAll(async () => {
  await closeSuite(client, { operators: [op], namespaces: [ns], identities: [identity] });
});

describe('the status permission withheld', () => {
  printLogDirOnFailure();

  it('builds the objects, says on the app that its status write is refused (403), counts the errors, writes no status', async () => {
    expect(
      withoutStatus.some((r) => r.resources.includes('scalableapps/status')),
      'the rules still grant the status',
    ).toBe(false);
    await applyAs(client, 'test-user', scalableApp(ns, 'shop', { web: { image: 'a:1' } }));
    // Not idle: the web tier is built.
    await eventually(
      'the web Deployment',
      () => getObj(client, kindInfo('apps/v1', 'Deployment'), ns, 'shop-web'),
      90_000,
    );
    const events = await eventually(
      'a StatusWriteRefused event on the app',
      async () => {
        const list = await client.request<{ items: Json[] }>(
          'GET',
          `/api/v1/namespaces/${ns}/events`,
          {
            verb: 'list',
            resource: 'events',
            query: { fieldSelector: 'involvedObject.name=shop,reason=StatusWriteRefused' },
          },
        );
        return list.items.length > 0 ? list.items : undefined;
      },
      90_000,
    );
    const [event] = events;
    expect(event?.['type']).toBe('Warning');
    expect(String(event?.['message'])).toMatch(
      /^writing the status was refused \(403 Forbidden\): the operator's RBAC lacks patch on scalableapps\/status \(.*cannot patch resource "scalableapps\/status"/,
    );
    expect(
      await op.metric('scalable_reconcile_errors_total', { reason: 'error' }),
      'reconcile errors counted',
    ).toBeGreaterThan(0);
    const app = await getApp(client, ns, 'shop');
    expect(app?.['status'], 'status written despite the refusal').toBeUndefined();
  });
});
