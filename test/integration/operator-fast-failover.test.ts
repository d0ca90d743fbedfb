// Fast failover through the whole operator (tiers/database/lease-watch.ts, a Tier watch):
// kwok runs no Patroni, so the test renews a shard's leader lock as a primary's Patroni
// does (an annotation patch every loop_wait) and then stops, as a dead primary does. The
// operator must leave a renewing lock alone, release a silent one only after the app's
// failoverSeconds allows it, say so on the app, and leave alone locks of apps whose
// failoverSeconds is Patroni's own lease (>= 20 s) and of no app at all.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, printLogDirOnFailure, uniqueName } from '../../devcluster/testing.ts';
import type { KubeClient } from '../../operator/runtime/kube-client.ts';
import { releaseAfterSeconds } from '../../operator/tiers/database/lease-break.ts';
import {
  applyAs,
  closeSuite,
  getObj,
  kindInfo,
  mergePatch,
  openSuite,
  scalableApp,
  startOperator,
} from './operator-harness.ts';
import type { Json, OperatorProcess } from './operator-harness.ts';

const ns = uniqueName('op-fast');
const CM = kindInfo('v1', 'ConfigMap');
let client: KubeClient;
let op: OperatorProcess;

const database = (extra: Json = {}): Json => ({
  web: { image: 'ghcr.io/acme/fast:1' },
  database: { replicasPerShard: 1, synchronous: true, storage: { size: '1Gi' }, ...extra },
});

/** Patroni's leader key of `<app>-db-0`, as Patroni 3/4 write it (configmap mode). */
const leaderKey = (app: string): Json => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: {
    name: `${app}-db-0-leader`,
    namespace: ns,
    labels: { 'scalable.dev/database': app, 'scalable.dev/cluster': `${app}-db-0` },
    annotations: {
      leader: `${app}-db-0-0`,
      ttl: '20',
      renewTime: new Date().toISOString(),
      acquireTime: new Date().toISOString(),
      transitions: '0',
    },
  },
});

const holder = async (app: string): Promise<string | undefined> => {
  const cm = await getObj(client, CM, ns, `${app}-db-0-leader`);
  return ((cm?.['metadata'] as Json | undefined)?.['annotations'] as Record<string, string>)?.[
    'leader'
  ];
};

/**
 * Renews the lock every second, as a primary's Patroni with loop_wait 1; stop() ends it and
 * gives the time the last renewal was answered.
 */
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

beforeAll(async () => {
  client = await openSuite(ns);
  op = await startOperator({ SCALABLE_LEASE_NAME: uniqueName('lease-fast') });
});

afterAll(() => closeSuite(client, { operators: [op], namespaces: [ns] }));

describe("the operator releases a silent primary's leader lock (fast failover)", () => {
  printLogDirOnFailure();

  it('leaves a renewing lock alone, releases it once silent, and says so on the app', async () => {
    const after = releaseAfterSeconds(10);
    expect(after).toBe(6);
    await applyAs(client, 'test-user', scalableApp(ns, 'fast', database()));
    await applyAs(client, 'test-user', scalableApp(ns, 'slow', database({ failoverSeconds: 30 })));
    for (const app of ['fast', 'slow', 'ghost']) await applyAs(client, 'patroni', leaderKey(app));

    // Renewed every second for three times the silence limit: never released.
    const renewals = ['fast', 'slow', 'ghost'].map((app) => renewing(app));
    await sleep(3 * (after ?? 0) * 1000);
    expect(await holder('fast')).toBe('fast-db-0-0');

    const [silentFrom = 0] = await Promise.all(renewals.map((r) => r.stop()));
    await eventually('the silent lock released', async () =>
      (await holder('fast')) === undefined ? true : undefined,
    );
    // Not before the silence limit: the operator counts from the last renewal it saw, which
    // it may see a little before this client has its answer.
    expect(Date.now() - silentFrom).toBeGreaterThanOrEqual((after ?? 0) * 1000 - 500);
    const events = await client.request<{ items: Json[] }>(
      'GET',
      `/api/v1/namespaces/${ns}/events`,
      {
        verb: 'list',
        resource: 'events',
        query: { fieldSelector: 'involvedObject.name=fast,reason=PrimaryLockReleased' },
      },
    );
    expect(events.items.map((e) => e['message'])).toEqual([
      expect.stringMatching(/^fast-db-0: primary fast-db-0-0 did not renew its leader lock/),
    ]);
    expect(
      await op.metric('scalable_database_lock_releases_total', { namespace: ns, app: 'fast' }),
    ).toBe(1);

    // failoverSeconds 30 is Patroni's own lease, and a lock of no app is none of ours: both
    // stay held after as long a silence (and twice the limit more).
    await sleep((after ?? 0) * 1000);
    expect(await holder('slow')).toBe('slow-db-0-0');
    expect(await holder('ghost')).toBe('ghost-db-0-0');
  }, 120_000);

  it("fences the silent primary's pod once the replica holds the lock, and only then", async () => {
    const POD = kindInfo('v1', 'Pod');
    const uidOf = async (name: string) =>
      ((await getObj(client, POD, ns, name))?.['metadata'] as Json | undefined)?.['uid'];
    // kwok runs the StatefulSet's pods; label them as Patroni would.
    for (const [pod, role] of [
      ['fast-db-0-0', 'master'],
      ['fast-db-0-1', 'replica'],
    ] as const) {
      await eventually(`pod ${pod}`, () => getObj(client, POD, ns, pod), 120_000);
      await mergePatch(client, POD, ns, pod, {
        metadata: { labels: { 'scalable.dev/role': role } },
      });
    }
    const before = await uidOf('fast-db-0-0');
    const take = (member: string) =>
      mergePatch(client, CM, ns, 'fast-db-0-leader', {
        metadata: { annotations: { leader: member, renewTime: new Date().toISOString() } },
      });

    // A false alarm first: released, then taken back by the same member: no fencing.
    await take('fast-db-0-0');
    await eventually('released', async () => ((await holder('fast')) ? undefined : true));
    await take('fast-db-0-0');
    const renewal = renewing('fast');
    await sleep(4000);
    expect(await uidOf('fast-db-0-0')).toBe(before);

    // Now it dies: released again, and the replica takes the lock.
    await renewal.stop();
    await eventually('released again', async () => ((await holder('fast')) ? undefined : true));
    await take('fast-db-0-1');
    await eventually('the stale primary pod replaced', async () => {
      const uid = await uidOf('fast-db-0-0');
      return uid !== undefined && uid !== before ? true : undefined;
    });
    const reasons = (
      await client.request<{ items: Json[] }>('GET', `/api/v1/namespaces/${ns}/events`, {
        verb: 'list',
        resource: 'events',
        query: { fieldSelector: 'involvedObject.name=fast' },
      })
    ).items.map((e) => e['reason']);
    expect(reasons.filter((r) => r === 'PrimaryFenced')).toHaveLength(1);
    expect(
      await op.metric('scalable_database_lock_releases_total', { namespace: ns, app: 'fast' }),
    ).toBe(3);
    // The replica, now primary, is left alone.
    expect(await holder('fast')).toBe('fast-db-0-1');
  }, 120_000);
});
