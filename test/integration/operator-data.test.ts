// deletionPolicy decides what happens to a database's data when its app goes: Delete takes
// the volumes, Patroni's state ConfigMaps and the password Secrets with it (through a
// finalizer), Retain keeps them all, and a re-created app reopens them. Switching the database
// off never deletes anything, whatever the policy.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, printLogDirOnFailure, uniqueName } from '../../devcluster/testing.ts';
import { DATA_FINALIZER } from '../../operator/tiers/database/cleanup.ts';
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

const ns = uniqueName('op-data');
const identity = uniqueName('scalable-operator');
let client: KubeClient;
let op: OperatorProcess;

const spec = (deletionPolicy: 'Delete' | 'Retain'): Json => ({
  web: { image: 'ghcr.io/acme/data:1' },
  database: { shards: 1, replicasPerShard: 0, deletionPolicy, storage: { size: '1Gi' } },
});

/** What Patroni writes on its own: a state ConfigMap with no owner. */
async function patroniState(app: string): Promise<void> {
  await client.request('POST', `/api/v1/namespaces/${ns}/configmaps`, {
    verb: 'create',
    resource: 'configmaps',
    body: {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: `${app}-db-0-leader`,
        namespace: ns,
        labels: { 'scalable.dev/database': app, 'scalable.dev/cluster': `${app}-db-0` },
      },
    },
  });
}

const configMap = (app: string) =>
  getObj(client, kindInfo('v1', 'ConfigMap'), ns, `${app}-db-0-leader`);
const pvc = (app: string) =>
  getObj(client, kindInfo('v1', 'PersistentVolumeClaim'), ns, `data-${app}-db-0-0`);
const secret = (name: string) => getObj(client, kindInfo('v1', 'Secret'), ns, name);
const condition = async (app: string, type: string) =>
  (
    (((await getApp(client, ns, app))?.['status'] as Json | undefined)?.['conditions'] ??
      []) as Json[]
  ).find((c) => c['type'] === type);
const finalizers = async (app: string) =>
  (((await getApp(client, ns, app))?.['metadata'] as Json | undefined)?.['finalizers'] ??
    []) as string[];

async function deleteApp(app: string): Promise<void> {
  await client.request(
    'DELETE',
    `/apis/scalable.dev/v1alpha1/namespaces/${ns}/scalableapps/${app}`,
    {
      verb: 'delete',
      resource: 'scalableapps',
    },
  );
}

beforeAll(async () => {
  client = await openSuite(ns);
  op = await startOperatorAs(client, identity, { lease: uniqueName('lease-data') });
});

afterAll(() => closeSuite(client, { operators: [op], namespaces: [ns], identities: [identity] }));

describe('database data and deletionPolicy', () => {
  printLogDirOnFailure();

  it('Delete: the volume and Patroni state go with the app', async () => {
    await applyAs(client, 'test-user', scalableApp(ns, 'gone', spec('Delete')));
    await eventually('finalizer', async () =>
      (await finalizers('gone')).includes(DATA_FINALIZER) ? true : undefined,
    );
    await eventually('PVC of shard 0', () => pvc('gone'), 120_000);
    await patroniState('gone');
    await deleteApp('gone');
    await eventually(
      'app gone',
      async () => ((await getApp(client, ns, 'gone')) ? undefined : true),
      120_000,
    );
    await eventually(
      'Patroni state gone',
      async () => ((await configMap('gone')) ? undefined : true),
      30_000,
    );
    await eventually('PVC gone', async () => ((await pvc('gone')) ? undefined : true), 120_000);
    await eventually('Secrets gone', async () =>
      (await secret('gone-db-auth')) ||
      (await secret('gone-db-app')) ||
      (await secret('gone-db-rewind'))
        ? undefined
        : true,
    );
  });

  it('Retain: both stay, and no finalizer holds the app', async () => {
    await applyAs(client, 'test-user', scalableApp(ns, 'kept', spec('Retain')));
    await eventually('PVC of shard 0', () => pvc('kept'), 120_000);
    expect(await finalizers('kept')).not.toContain(DATA_FINALIZER);
    await patroniState('kept');
    await deleteApp('kept');
    await eventually(
      'app gone',
      async () => ((await getApp(client, ns, 'kept')) ? undefined : true),
      60_000,
    );
    await eventually(
      'StatefulSet collected',
      async () =>
        (await getObj(client, kindInfo('apps/v1', 'StatefulSet'), ns, 'kept-db-0'))
          ? undefined
          : true,
      60_000,
    );
    await sleep(3_000);
    expect(await configMap('kept')).toBeDefined();
    expect(await pvc('kept')).toBeDefined();
    const auth = await secret('kept-db-auth');
    expect(auth?.['data']).toBeDefined();
    expect((auth?.['metadata'] as Json)['ownerReferences']).toBeUndefined();
    const rewind = await secret('kept-db-rewind');
    expect(rewind?.['data']).toBeDefined();
    expect((rewind?.['metadata'] as Json)['ownerReferences']).toBeUndefined();

    // The same app again: it reopens the retained data with the passwords it had.
    await applyAs(client, 'test-user', scalableApp(ns, 'kept', spec('Retain')));
    await eventually('StatefulSet again', () =>
      getObj(client, kindInfo('apps/v1', 'StatefulSet'), ns, 'kept-db-0'),
    );
    await sleep(2_000);
    const again = await secret('kept-db-auth');
    expect((again?.['metadata'] as Json)['uid']).toBe((auth?.['metadata'] as Json)['uid']);
    expect(again?.['data']).toEqual(auth?.['data']);
    expect((await secret('kept-db-rewind'))?.['data']).toEqual(rewind?.['data']);
  });

  it('Delete, then the database section removed: the data stays until the app goes', async () => {
    await applyAs(client, 'test-user', scalableApp(ns, 'off', spec('Delete')));
    await eventually('PVC of shard 0', () => pvc('off'), 120_000);
    await eventually('password Secret', () => secret('off-db-app'));
    await patroniState('off');
    // DataRetained is said by a tier that said something before (compute.ts): the section is
    // removed only once the status has the database's condition, or a fast operator and test
    // race it (seen on an idle machine: the removal reconciled before the first status).
    await eventually('the status has DatabaseReady', async () =>
      (await condition('off', 'DatabaseReady')) ? true : undefined,
    );
    await applyAs(client, 'test-user', scalableApp(ns, 'off', { web: spec('Delete')['web'] }));
    await eventually(
      'StatefulSet pruned',
      async () =>
        (await getObj(client, kindInfo('apps/v1', 'StatefulSet'), ns, 'off-db-0'))
          ? undefined
          : true,
      60_000,
    );
    const retained = await eventually('DataRetained', async () => {
      const c = await condition('off', 'DatabaseReady');
      return c?.['reason'] === 'DataRetained' ? c : undefined;
    });
    expect(String(retained['message'])).toContain('kubectl -n');
    // Switched off on purpose: not a reason to be not Ready.
    await eventually('Ready', async () =>
      (await condition('off', 'Ready'))?.['status'] === 'True' ? true : undefined,
    );
    await sleep(3_000);
    expect(await pvc('off')).toBeDefined();
    expect(await configMap('off')).toBeDefined();
    expect(await secret('off-db-auth')).toBeDefined();
    expect(await secret('off-db-app')).toBeDefined();
    expect(await secret('off-db-rewind')).toBeDefined();
    expect(await finalizers('off')).toContain(DATA_FINALIZER);

    await deleteApp('off');
    await eventually(
      'app gone',
      async () => ((await getApp(client, ns, 'off')) ? undefined : true),
      120_000,
    );
    for (const [what, get] of [
      ['PVC', () => pvc('off')],
      ['Patroni state', () => configMap('off')],
      ['auth Secret', () => secret('off-db-auth')],
      ['app Secret', () => secret('off-db-app')],
      ['rewind Secret', () => secret('off-db-rewind')],
    ] as const)
      await eventually(`${what} gone`, async () => ((await get()) ? undefined : true), 120_000);
  });
});
