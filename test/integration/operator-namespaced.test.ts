// Watch-namespaces mode: the operator runs as a ServiceAccount that holds operator/rbac.ts's
// rules only as a Role in one namespace (no ClusterRole at all) and SCALABLE_WATCH_NAMESPACES
// names that namespace. An app there converges to Ready; an app in another namespace is left
// alone (no objects, no status), and the operator never hits a 403 doing either: the API
// server's audit log shows every request of its ServiceAccount allowed, each in the watched
// namespace or its own. (test/integration/rbac-minimal.test.ts drives this mode through every
// right too.)
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eventually, printLogDirOnFailure, uniqueName } from '../../devcluster/testing.ts';
import type { KubeClient } from '../../operator/runtime/kube-client.ts';
import {
  applyAs,
  closeSuite,
  conditionOf,
  getApp,
  getObj,
  kindInfo,
  openSuite,
  scalableApp,
  startOperatorAs,
} from './operator-harness.ts';
import type { Json, OperatorProcess } from './operator-harness.ts';
import {
  describeRequest,
  eventsOf,
  readAuditLog,
  refused,
  serviceAccountUser,
} from './rbac-audit.ts';

const watched = uniqueName('op-ns-in');
const outside = uniqueName('op-ns-out');
const lease = uniqueName('lease-ns');
const identity = uniqueName('scalable-operator-ns');
let client: KubeClient;
let op: OperatorProcess;
let since = new Date();

const spec: Json = {
  web: { image: 'ghcr.io/acme/shop:1' },
  ingress: { host: 'shop.example.com' },
  cache: {},
};

beforeAll(async () => {
  since = new Date();
  client = await openSuite(watched, outside);
  op = await startOperatorAs(
    client,
    identity,
    { lease, watchNamespaces: [watched] },
    { SCALABLE_WATCH_NAMESPACES: watched },
  );
});

afterAll(() =>
  closeSuite(client, { operators: [op], namespaces: [watched, outside], identities: [identity] }),
);

describe('watch-namespaces mode', () => {
  printLogDirOnFailure();

  it('reconciles an app in a watched namespace with Roles only, and ignores one outside', async () => {
    await applyAs(client, 'test-user', scalableApp(outside, 'shop', spec));
    await applyAs(client, 'test-user', scalableApp(watched, 'shop', spec));
    const ready = await eventually(
      'the watched app Ready',
      async () => {
        const app = await getApp(client, watched, 'shop');
        return conditionOf(app, 'Ready')?.['status'] === 'True' ? app : undefined;
      },
      120_000,
    );
    expect((ready['status'] as Json)['observedGeneration']).toBe(1);
    for (const [apiVersion, kind, name] of [
      ['apps/v1', 'Deployment', 'shop-web'],
      ['networking.k8s.io/v1', 'Ingress', 'shop-web'],
      ['apps/v1', 'Deployment', 'shop-cache'],
    ] as const) {
      const info = kindInfo(apiVersion, kind);
      expect(await getObj(client, info, watched, name), `${kind} in ${watched}`).toBeDefined();
    }
    // A few resyncs' worth of time for a mistake to show: nothing happens outside.
    await sleep(5_000);
    expect(await getObj(client, kindInfo('apps/v1', 'Deployment'), outside, 'shop-web')).toBe(
      undefined,
    );
    expect((await getApp(client, outside, 'shop'))?.['status']).toBeUndefined();
    expect(op.logs()).not.toMatch(/\b403\b|forbidden/i);
    expect(op.child.exitCode).toBeNull();
  });

  it('prunes what the spec drops and serves a Gateway route, still with Roles only', async () => {
    // Cache off, an HTTPRoute instead of the Ingresses: prune (delete) and apply of a
    // Gateway API kind, through the same Role; then the route goes too.
    await applyAs(
      client,
      'test-user',
      scalableApp(watched, 'shop', {
        web: spec['web'],
        ingress: { host: 'shop.example.com', gateway: { name: 'public', namespace: watched } },
      }),
    );
    const route = kindInfo('gateway.networking.k8s.io/v1', 'HTTPRoute');
    await eventually(
      'HTTPRoute created, cache and Ingress pruned',
      async () =>
        (await getObj(client, route, watched, 'shop-web')) &&
        !(await getObj(client, kindInfo('apps/v1', 'Deployment'), watched, 'shop-cache')) &&
        !(await getObj(client, kindInfo('networking.k8s.io/v1', 'Ingress'), watched, 'shop-web'))
          ? true
          : undefined,
      90_000,
    );
    await applyAs(client, 'test-user', scalableApp(watched, 'shop', { web: spec['web'] }));
    await eventually(
      'HTTPRoute pruned',
      async () => ((await getObj(client, route, watched, 'shop-web')) ? undefined : true),
      90_000,
    );
    expect(
      await getObj(client, kindInfo('apps/v1', 'Deployment'), watched, 'shop-web'),
    ).toBeDefined();
    expect(op.logs()).not.toMatch(/\b403\b|forbidden/i);
  });

  it('the audit log: every request of the operator allowed, in its namespaces only', async () => {
    const logDir = inject('devclusterLogDir') ?? process.env['SCALABLE_TEST_LOG_DIR'] ?? '';
    const mine = eventsOf(readAuditLog(logDir), serviceAccountUser(identity), since);
    expect(mine.length).toBeGreaterThan(0);
    expect(refused(mine).map(describeRequest)).toEqual([]);
    // Roles only: no request for a resource outside the watched namespace and its own
    // (default, its Lease and CA). Discovery has no object and is left out.
    const elsewhere = mine.filter(
      (e) =>
        e.objectRef?.resource &&
        e.objectRef.namespace !== watched &&
        e.objectRef.namespace !== 'default',
    );
    expect(elsewhere.map(describeRequest)).toEqual([]);
  });
});
