// One ScalableApp through its life, with the operator running as its own process:
// create -> Ready, zero writes at rest, spec change, drift repair, pruning, garbage collection,
// all with no more permissions than operator/rbac.ts grants.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, printLogDirOnFailure, uniqueName } from '../../devcluster/testing.ts';
import { toModel } from '../../operator/api/model.ts';
import { validateApp } from '../../operator/api/validate.ts';
import type { ScalableAppObject } from '../../operator/api/schema.ts';
import { LEASE_KIND } from '../../operator/reconcile/kinds.ts';
import type { KubeClient } from '../../operator/runtime/kube-client.ts';
import { buildAll } from '../../operator/tiers/index.ts';
import { generatedKeysOf } from '../../operator/tiers/shared/secrets.ts';
import { PRE_STOP_SLEEP_SECONDS } from '../../operator/tiers/web/build.ts';
import {
  applyAs,
  closeSuite,
  conditionOf,
  getApp,
  getObj,
  kindInfo,
  mergePatch,
  mutatingRequests,
  openSuite,
  scalableApp,
  startOperatorAs,
} from './operator-harness.ts';
import type { Json, OperatorProcess } from './operator-harness.ts';

const ns = uniqueName('op-life');
const lease = uniqueName('lease-life');
const identity = uniqueName('scalable-operator');
/** The operator started after the first one stopped (its own identity). */
const comeback = uniqueName('scalable-operator');
const NAME = 'shop';
let client: KubeClient;
let op: OperatorProcess;

const spec = (image: string, minReplicas: number, ingress = true): Json => ({
  web: { image, autoscaling: { minReplicas, maxReplicas: 5 } },
  ...(ingress ? { ingress: { host: 'shop.example.com' } } : {}),
  cache: {},
});

/** The objects the builders want for this spec (names and kinds). */
function expected(s: Json): Array<{ apiVersion: string; kind: string; name: string }> {
  const v = validateApp(scalableApp(ns, NAME, s));
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  // cert-manager's kinds are not served here: the operator issues the cache's certificate.
  return buildAll(toModel(v.app as ScalableAppObject))
    .filter((o) => !o.apiVersion.startsWith('cert-manager.io/'))
    .map((o) => ({
      apiVersion: o.apiVersion,
      kind: o.kind,
      name: o.metadata.name,
    }));
}

/** The cache's password Secret: generated once by the operator. */
function generatedSecretName(): string {
  const v = validateApp(scalableApp(ns, NAME, spec('x', 2)));
  if (!v.ok) throw new Error('invalid');
  const secret = buildAll(toModel(v.app)).find(
    (o) => o.kind === 'Secret' && generatedKeysOf(o).length > 0,
  );
  if (!secret) throw new Error('the cache tier declares no generated Secret');
  return secret.metadata.name;
}

const apply = (s: Json) => applyAs(client, 'test-user', scalableApp(ns, NAME, s));
const deployment = () => getObj(client, kindInfo('apps/v1', 'Deployment'), ns, `${NAME}-web`);
const image = (d: Json | undefined) =>
  ((d?.['spec'] as Json)['template'] as { spec: { containers: Array<{ image: string }> } }).spec
    .containers[0]?.image;

async function readyAt(generation: number): Promise<Json | undefined> {
  const app = await getApp(client, ns, NAME);
  const status = app?.['status'] as Json | undefined;
  return status?.['observedGeneration'] === generation &&
    conditionOf(app, 'Ready')?.['status'] === 'True'
    ? app
    : undefined;
}

beforeAll(async () => {
  client = await openSuite(ns);
  // The operator runs as a ServiceAccount holding exactly operator/rbac.ts's ClusterRole.
  op = await startOperatorAs(client, identity, { lease });
});

afterAll(() =>
  closeSuite(client, { operators: [op], namespaces: [ns], identities: [identity, comeback] }),
);

describe('operator lifecycle', () => {
  printLogDirOnFailure();
  let generatedData: Json | undefined;

  it('creates every object of the app and reports Ready once the pods are', async () => {
    const created = await apply(spec('ghcr.io/acme/shop:1.0.0', 2));
    const uid = (created['metadata'] as Json)['uid'];
    for (const want of expected(spec('ghcr.io/acme/shop:1.0.0', 2))) {
      const obj = await eventually(`${want.kind} ${want.name}`, () =>
        getObj(client, kindInfo(want.apiVersion, want.kind), ns, want.name),
      );
      const owners = (obj['metadata'] as Json)['ownerReferences'] as Json[];
      expect(owners).toEqual([
        expect.objectContaining({ uid, controller: true, kind: 'ScalableApp' }),
      ]);
    }
    // The web pods' preStop sleep, as the API server stored what the operator applied.
    const web = ((await deployment())?.['spec'] as Json)['template'] as {
      spec: { containers: Array<{ name: string; lifecycle?: unknown }> };
    };
    expect(web.spec.containers.find((c) => c.name === 'web')?.lifecycle).toEqual({
      preStop: { sleep: { seconds: PRE_STOP_SLEEP_SECONDS } },
    });
    const app = await eventually('Ready=True at generation 1', () => readyAt(1), 120_000);
    const status = app['status'] as Json;
    expect(status['web']).toMatchObject({ readyReplicas: 2, ready: '2/2' });
    expect(status['url']).toBe('http://shop.example.com');
    // What the monitoring tier's ScalableAppNotReady alert reads.
    expect(
      await eventually('scalable_app_ready 1', async () =>
        (await op.metric('scalable_app_ready', { namespace: ns, name: 'shop' })) === 1
          ? true
          : undefined,
      ),
    ).toBe(true);
    const types = (status['conditions'] as Json[]).map((c) => c['type']);
    expect(types).toEqual(
      expect.arrayContaining([
        'Ready',
        'Progressing',
        'Degraded',
        'WebReady',
        'IngressReady',
        'CacheReady',
      ]),
    );
    const secret = await getObj(client, kindInfo('v1', 'Secret'), ns, generatedSecretName());
    generatedData = secret?.['data'] as Json;
    expect(Object.keys(generatedData ?? {}).length).toBeGreaterThan(0);
  });

  it('sends no mutating request while the app is at rest', async () => {
    await sleep(3_000); // let the last pod and status events settle
    const before = await mutatingRequests(op, 'leases');
    await sleep(10_000);
    expect(await mutatingRequests(op, 'leases')).toBe(before);
  });

  it('follows a spec change: objects updated, observedGeneration follows', async () => {
    await apply(spec('ghcr.io/acme/shop:2.0.0', 3));
    await eventually('image 2.0.0', async () =>
      image(await deployment()) === 'ghcr.io/acme/shop:2.0.0' ? true : undefined,
    );
    const app = await eventually('Ready=True at generation 2', () => readyAt(2), 120_000);
    expect((app['status'] as Json)['web']).toMatchObject({ ready: '3/3' });
  });

  it('recreates a child deleted by hand', async () => {
    const svc = kindInfo('v1', 'Service');
    const before = await getObj(client, svc, ns, `${NAME}-web`);
    await client.request('DELETE', `/api/v1/namespaces/${ns}/services/${NAME}-web`, {
      verb: 'delete',
      resource: 'services',
    });
    const after = await eventually('Service recreated', async () => {
      const s = await getObj(client, svc, ns, `${NAME}-web`);
      return s && (s['metadata'] as Json)['uid'] !== (before?.['metadata'] as Json)['uid']
        ? s
        : undefined;
    });
    expect((after['metadata'] as Json)['labels']).toMatchObject({ 'scalable.dev/app': NAME });
  });

  it("reverts a hand edit of a field it owns, keeps another manager's annotation", async () => {
    await mergePatch(client, kindInfo('apps/v1', 'Deployment'), ns, `${NAME}-web`, {
      metadata: { annotations: { 'example.com/owner': 'team-a' } },
      spec: { template: { spec: { containers: [{ name: 'web', image: 'evil:latest' }] } } },
    });
    await eventually('image reverted', async () =>
      image(await deployment()) === 'ghcr.io/acme/shop:2.0.0' ? true : undefined,
    );
    await sleep(2_000);
    const d = await deployment();
    expect(image(d)).toBe('ghcr.io/acme/shop:2.0.0');
    expect(((d?.['metadata'] as Json)['annotations'] as Json)['example.com/owner']).toBe('team-a');
  });

  it('never rewrites a generated Secret', async () => {
    const secret = await getObj(client, kindInfo('v1', 'Secret'), ns, generatedSecretName());
    expect(secret?.['data']).toEqual(generatedData);
    expect(op.logs()).not.toContain(Object.values(generatedData ?? {})[0] as string);
  });

  it('prunes what the spec no longer wants', async () => {
    await apply(spec('ghcr.io/acme/shop:2.0.0', 3, false));
    const ing = kindInfo('networking.k8s.io/v1', 'Ingress');
    await eventually('Ingresses pruned', async () =>
      (await getObj(client, ing, ns, `${NAME}-web`)) ||
      (await getObj(client, ing, ns, `${NAME}-static`))
        ? undefined
        : true,
    );
    const app = await eventually('Ready=True at generation 3', () => readyAt(3), 60_000);
    expect(conditionOf(app, 'IngressReady')).toBeUndefined();
    expect(await deployment()).toBeDefined();
  });

  it('leaves the children to the garbage collector when the app is deleted', async () => {
    await client.request(
      'DELETE',
      `/apis/scalable.dev/v1alpha1/namespaces/${ns}/scalableapps/${NAME}`,
      {
        verb: 'delete',
        resource: 'scalableapps',
      },
    );
    for (const want of expected(spec('ghcr.io/acme/shop:2.0.0', 3, false))) {
      await eventually(
        `${want.kind} ${want.name} collected`,
        async () =>
          (await getObj(client, kindInfo(want.apiVersion, want.kind), ns, want.name))
            ? undefined
            : true,
        60_000,
      );
    }
  });

  // The operator cannot watch Secrets: it remembers the ones it created. An app created again
  // under the same name (new uid) must not inherit that memory: its Secret is gone.
  it('creates the generated Secret again for an app created again under the same name', async () => {
    const s = spec('ghcr.io/acme/shop:3.0.0', 2, false);
    await apply(s);
    const secret = await eventually(
      'the generated Secret of the new app',
      () => getObj(client, kindInfo('v1', 'Secret'), ns, generatedSecretName()),
      60_000,
    );
    const app = await getApp(client, ns, NAME);
    const uid = (app?.['metadata'] as Json)['uid'];
    const owners = (secret['metadata'] as Json)['ownerReferences'] as Array<{ uid: string }>;
    expect(owners.map((o) => o.uid)).toEqual([uid]);
  });

  it('needed no permission beyond its ClusterRole', () => {
    // The operator watches every namespace: another test file's namespace that is being
    // deleted answers 403 "being terminated", which is no RBAC denial.
    const denials = op
      .logs()
      .split('\n')
      .filter((l) => / 403 |forbidden/i.test(l) && !/because it is being terminated/.test(l));
    expect(denials).toEqual([]);
  });

  it('releases the lease on SIGTERM', async () => {
    expect(await op.stop('SIGTERM')).toBe(0);
    const l = await getObj(client, LEASE_KIND, 'default', lease);
    expect((l?.['spec'] as Json)['holderIdentity'] ?? '').toBe('');
  });

  // Issue 35: a NetworkPolicy deleted while no operator runs (scaled to 0) stays deleted
  // until one is back; the one that comes back must restore it, unasked (no app event).
  it('restores a NetworkPolicy deleted while no operator ran', async () => {
    const np = kindInfo('networking.k8s.io/v1', 'NetworkPolicy');
    const name = `${NAME}-cache`;
    const before = await getObj(client, np, ns, name);
    expect(before, `${name} before the delete`).toBeDefined();
    await client.request(
      'DELETE',
      `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies/${name}`,
      { verb: 'delete', resource: 'networkpolicies' },
    );
    expect(await getObj(client, np, ns, name), `${name} with no operator`).toBeUndefined();
    op = await startOperatorAs(client, comeback, { lease });
    const after = await eventually(
      `${name} created again by the operator started after the delete`,
      () => getObj(client, np, ns, name),
      90_000,
    );
    expect(after['spec'], 'the same rules as before').toEqual(before?.['spec']);
  });
});
