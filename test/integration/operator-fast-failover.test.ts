// Fast failover through the whole operator (the database tier's lock watch, as the controller
// runs it): kwok runs no Patroni, so the test writes Patroni's keys as Patroni does (the
// leader lock renewed every loop_wait, the live config, the sync key) and labels the pods as
// its members would. The operator must:
// - leave a renewing lock alone and release a silent one only after the threshold the live
//   timings and the pod's fence give (9 s at failoverSeconds 10), saying so on the app;
// - never release the lock of an asynchronous shard, of Patroni's own lease
//   (failoverSeconds >= 20), of no app, or of a primary whose synchronous standby still
//   streams from it (alive, kept by failsafe_mode);
// - fence the released primary's pod at once, while the lock is still free (the primary
//   Service follows the lock, not a label), from the release recorded on the lock;
// - start every silence clock again when its watch restarts (the API server dropped its
//   connections): silence seen through a broken watch is no evidence.
// The operator talks to the API server through a proxy, so the test can cut its connections.
import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, printLogDirOnFailure, uniqueName } from '../../devcluster/testing.ts';
import type { KubeClient } from '../../operator/runtime/kube-client.ts';
import {
  RELEASE_ANNOTATION,
  releaseAfterSeconds,
  timingsOf,
} from '../../operator/tiers/database/lease-break.ts';
import {
  applyAs,
  closeSuite,
  getObj,
  kindInfo,
  kubeconfig,
  mergePatch,
  openSuite,
  scalableApp,
  startOperator,
} from './operator-harness.ts';
import type { Json, OperatorProcess } from './operator-harness.ts';
import { startStallProxy } from './stall-proxy.ts';
import type { StallProxy } from './stall-proxy.ts';

const ns = uniqueName('op-fast');
const CM = kindInfo('v1', 'ConfigMap');
const POD = kindInfo('v1', 'Pod');
let client: KubeClient;
let op: OperatorProcess;
let proxy: StallProxy;

/** fast-db-0-0's uid while it held the lock (the release records it; the fence then replaces the pod). */
let fastPrimaryUid: unknown;

const AFTER = releaseAfterSeconds({ synchronous: true, failoverSeconds: 10 }) ?? NaN;

const database = (extra: Json = {}): Json => ({
  web: { image: 'ghcr.io/acme/fast:1' },
  database: { replicasPerShard: 1, storage: { size: '1Gi' }, ...extra },
});

/** Patroni's keys of `<app>-db-0`, as Patroni 3/4 write them (configmap mode). */
function patroniKey(app: string, key: string, annotations: Record<string, string>): Json {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: `${app}-db-0-${key}`,
      namespace: ns,
      labels: { 'scalable.dev/database': app, 'scalable.dev/cluster': `${app}-db-0` },
      annotations,
    },
  };
}

/** The keys of a bootstrapped shard whose primary is pod 0 and synchronous standby pod 1. */
async function bootstrapped(app: string, failoverSeconds: number, synchronous: boolean) {
  const t = timingsOf(failoverSeconds);
  const config = JSON.stringify({ ...t, synchronous_mode: synchronous, failsafe_mode: true });
  await applyAs(client, 'patroni', patroniKey(app, 'config', { config }));
  await applyAs(
    client,
    'patroni',
    patroniKey(app, 'leader', {
      leader: `${app}-db-0-0`,
      ttl: String(t.ttl),
      renewTime: new Date().toISOString(),
      acquireTime: new Date().toISOString(),
      transitions: '0',
    }),
  );
  await applyAs(
    client,
    'patroni',
    patroniKey(app, 'sync', { leader: `${app}-db-0-0`, sync_standby: `${app}-db-0-1` }),
  );
}

async function lockOf(app: string): Promise<Record<string, string>> {
  const cm = await getObj(client, CM, ns, `${app}-db-0-leader`);
  const meta = cm?.['metadata'] as { annotations?: Record<string, string> } | undefined;
  return meta?.annotations ?? {};
}
const holder = async (app: string) => (await lockOf(app))['leader'];
const podMeta = async (name: string) =>
  (await getObj(client, POD, ns, name))?.['metadata'] as Json | undefined;

/** As Patroni: the role label, and the member status a replica publishes. */
async function member(pod: string, role: 'master' | 'replica', streaming = false) {
  await eventually(`pod ${pod}`, () => getObj(client, POD, ns, pod), 120_000);
  await mergePatch(client, POD, ns, pod, {
    metadata: {
      labels: { 'scalable.dev/role': role },
      annotations: {
        status: JSON.stringify({
          state: 'running',
          role: role === 'master' ? 'primary' : 'replica',
          ...(streaming ? { replication_state: 'streaming' } : {}),
        }),
      },
    },
  });
}

/** Renews a lock every second, as a primary's Patroni with loop_wait 1; stop() ends it. */
function renewing(app: string): { stop: () => Promise<number> } {
  let on = true;
  let last = 0;
  const loop = (async () => {
    while (on) {
      await mergePatch(client, CM, ns, `${app}-db-0-leader`, {
        metadata: { annotations: { renewTime: new Date().toISOString() } },
      });
      last = Date.now();
      await sleep(1000);
    }
  })();
  return {
    stop: async () => {
      on = false;
      await loop;
      return last;
    },
  };
}

const eventsOf = async (app: string, reason: string) =>
  (
    await client.request<{ items: Json[] }>('GET', `/api/v1/namespaces/${ns}/events`, {
      verb: 'list',
      resource: 'events',
      query: { fieldSelector: `involvedObject.name=${app},reason=${reason}` },
    })
  ).items.map((e) => String(e['message']));

/** The admin kubeconfig, through the proxy. */
function viaProxy(path: string, port: number): string {
  const doc = yaml.load(readFileSync(path, 'utf8')) as Json;
  const cluster = ((doc['clusters'] as Json[])[0] as Json)['cluster'] as Json;
  cluster['server'] = `https://127.0.0.1:${port}`;
  const out = `${path}.fast-failover-${process.pid}`;
  writeFileSync(out, yaml.dump(doc), { mode: 0o600 });
  return out;
}

beforeAll(async () => {
  client = await openSuite(ns);
  const admin = yaml.load(readFileSync(kubeconfig(), 'utf8')) as Json;
  const server = new URL(
    String((((admin['clusters'] as Json[])[0] as Json)['cluster'] as Json)['server']),
  );
  proxy = await startStallProxy({ host: server.hostname, port: Number(server.port) });
  op = await startOperator(
    { SCALABLE_LEASE_NAME: uniqueName('lease-fast') },
    viaProxy(kubeconfig(), proxy.port),
  );
});

afterAll(async () => {
  await closeSuite(client, { operators: [op], namespaces: [ns] });
  await proxy?.close();
});

describe("the operator releases a silent synchronous primary's leader lock (fast failover)", () => {
  printLogDirOnFailure();

  it('leaves a renewing lock alone, releases a silent one after the threshold, and says so', async () => {
    expect(AFTER).toBe(9);
    await applyAs(client, 'test-user', scalableApp(ns, 'fast', database({ synchronous: true })));
    await applyAs(client, 'test-user', scalableApp(ns, 'async', database()));
    await applyAs(
      client,
      'test-user',
      scalableApp(ns, 'slow', database({ synchronous: true, failoverSeconds: 30 })),
    );
    await bootstrapped('fast', 10, true);
    await bootstrapped('async', 30, false);
    await bootstrapped('slow', 30, true);
    await bootstrapped('ghost', 10, true);
    for (const app of ['fast', 'async', 'slow']) {
      await member(`${app}-db-0-0`, 'master');
      await member(`${app}-db-0-1`, 'replica');
    }

    fastPrimaryUid = (await podMeta('fast-db-0-0'))?.['uid'];
    expect(fastPrimaryUid).toBeTruthy();
    // Renewed every second for three times the threshold: never released.
    const renewals = ['fast', 'async', 'slow', 'ghost'].map((app) => renewing(app));
    await sleep(3 * AFTER * 1000);
    expect(await holder('fast')).toBe('fast-db-0-0');

    const [silentFrom = 0] = await Promise.all(renewals.map((r) => r.stop()));
    await eventually('the silent lock released', async () =>
      (await holder('fast')) === undefined ? true : undefined,
    );
    // Not before the threshold: the operator counts from the last renewal it saw, which
    // it may see a little before this client has its answer.
    expect(Date.now() - silentFrom).toBeGreaterThanOrEqual(AFTER * 1000 - 500);
    // The recorder writes the event in the background, after the release (CI saw it absent
    // right after the release once): wait for it, then require exactly one.
    const released = await eventually('the PrimaryLockReleased event', async () => {
      const e = await eventsOf('fast', 'PrimaryLockReleased');
      return e.length > 0 ? e : undefined;
    });
    expect(released).toEqual([
      expect.stringMatching(/^fast-db-0: primary fast-db-0-0 did not renew its leader lock/),
    ]);
    // The release is recorded on the lock itself, with the pod that held it.
    const intent = JSON.parse((await lockOf('fast'))[RELEASE_ANNOTATION] ?? '{}') as Json;
    expect(intent).toMatchObject({ member: 'fast-db-0-0', uid: fastPrimaryUid });
    expect(
      await op.metric('scalable_database_lock_releases_total', { namespace: ns, app: 'fast' }),
    ).toBe(1);

    // Asynchronous, Patroni's own lease, no app: all held after as long a silence and more.
    await sleep(AFTER * 1000);
    expect(await holder('async')).toBe('async-db-0-0');
    expect(await holder('slow')).toBe('slow-db-0-0');
    expect(await holder('ghost')).toBe('ghost-db-0-0');
  }, 180_000);

  it('fences the released primary at once, before any member takes the lock: the Service follows the lock', async () => {
    // The operator released fast-db-0-0's lock (above): its pod goes while the lock is still
    // free (nothing takes it here: no Patroni runs), not when a member takes it.
    await eventually('the released primary pod deleted', async () => {
      const m = await podMeta('fast-db-0-0');
      return m === undefined || m['uid'] !== fastPrimaryUid || m['deletionTimestamp']
        ? true
        : undefined;
    });
    expect(await holder('fast')).toBeUndefined();
    // The event is recorded after the delete (the recorder writes in the background).
    const fencedEvents = await eventually('the PrimaryFenced event', async () => {
      const e = await eventsOf('fast', 'PrimaryFenced');
      return e.length > 0 ? e : undefined;
    });
    expect(fencedEvents).toEqual([
      expect.stringMatching(
        /^fast-db-0: pod fast-db-0-0 still labelled primary while nobody holds the lock \(the operator released its lock\); deleted with a 5 s grace period/,
      ),
    ]);
    expect(
      await op.metric('scalable_database_fenced_pods_total', { namespace: ns, app: 'fast' }),
    ).toBe(1);

    // The standby takes the lock (and labels its pod) as Patroni does; it leads from here on.
    await mergePatch(client, CM, ns, 'fast-db-0-leader', {
      metadata: { annotations: { leader: 'fast-db-0-1', renewTime: new Date().toISOString() } },
    });
    await member('fast-db-0-1', 'master');
  }, 120_000);

  it('keeps the lock of a silent primary whose synchronous standby still streams from it', async () => {
    // fast-db-0-1 leads now, renewing; fast-db-0-0 (re-created by the StatefulSet) is its
    // standby, streaming from it.
    const renewal = renewing('fast');
    await applyAs(
      client,
      'patroni',
      patroniKey('fast', 'sync', { leader: 'fast-db-0-1', sync_standby: 'fast-db-0-0' }),
    );
    await eventually(
      'the re-created pod',
      async () => ((await podMeta('fast-db-0-0'))?.['deletionTimestamp'] ? undefined : true),
      120_000,
    );
    await member('fast-db-0-0', 'replica', true);
    const silentFrom = await renewal.stop();
    await sleep((AFTER + 3) * 1000);
    expect(await holder('fast')).toBe('fast-db-0-1');
    const kept = await eventually('the PrimaryLockKept event', async () => {
      const e = await eventsOf('fast', 'PrimaryLockKept');
      return e.length > 0 ? e : undefined;
    });
    expect(kept).toContainEqual(
      expect.stringMatching(/lock kept: no ready synchronous standby that has stopped streaming/),
    );
    // The stream ends (the primary is gone after all): released.
    await member('fast-db-0-0', 'replica', false);
    await eventually('released once the standby no longer streams', async () =>
      (await holder('fast')) === undefined ? true : undefined,
    );
    expect(Date.now() - silentFrom).toBeGreaterThan(AFTER * 1000);
  }, 120_000);

  it('starts every silence clock again when its watch restarts', async () => {
    // fast-db-0-1 (fenced at the last release, re-created by the StatefulSet) takes the lock
    // again, renews, then goes silent.
    await eventually(
      'the re-created pod',
      async () => ((await podMeta('fast-db-0-1'))?.['deletionTimestamp'] ? undefined : true),
      120_000,
    );
    await mergePatch(client, CM, ns, 'fast-db-0-leader', {
      metadata: { annotations: { leader: 'fast-db-0-1', renewTime: new Date().toISOString() } },
    });
    await member('fast-db-0-1', 'master');
    const renewal = renewing('fast');
    await sleep(3000);
    const silentFrom = await renewal.stop();
    // Some seconds into the silence the API server drops the operator's connections.
    await sleep((AFTER - 4) * 1000);
    const cutAt = Date.now();
    proxy.cut();
    await eventually('released', async () =>
      (await holder('fast')) === undefined ? true : undefined,
    );
    // Counted from the restart, not from the last renewal it had seen before.
    expect(Date.now() - cutAt).toBeGreaterThanOrEqual(AFTER * 1000 - 500);
    expect(Date.now() - silentFrom).toBeGreaterThan((AFTER + 3) * 1000);
  }, 120_000);
});
