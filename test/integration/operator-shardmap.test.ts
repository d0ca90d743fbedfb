// Growing database.shards never re-routes keys on its own: the published shard map keeps
// its bucket ranges, the new shard group is created and listed, and it owns no bucket until
// the operator's move has copied its rows (on kind: test/e2e/reshard; kwok runs no Patroni,
// so here the move waits at Prepare). A new app gets the full assignment at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, printLogDirOnFailure, uniqueName } from '../../devcluster/testing.ts';
import type { KubeClient } from '../../operator/runtime/kube-client.ts';
import { parseShardMap } from '../../sdk/src/contract/shard-map.ts';
import type { ShardMap } from '../../sdk/src/contract/shard-map.ts';
import {
  applyAs,
  closeSuite,
  conditionOf,
  getApp,
  getObj,
  kindInfo,
  mergePatch,
  openSuite,
  scalableApp,
  startOperator,
} from './operator-harness.ts';
import type { Json, OperatorProcess } from './operator-harness.ts';

const ns = uniqueName('op-shards');
let client: KubeClient;
let op: OperatorProcess;

const spec = (shards: number): Json => ({
  web: { image: 'ghcr.io/acme/shards:1' },
  database: { shards, shardKey: 'tenant_id', replicasPerShard: 0, storage: { size: '1Gi' } },
});

async function publishedMap(app: string): Promise<ShardMap | undefined> {
  const cm = await getObj(client, kindInfo('v1', 'ConfigMap'), ns, `${app}-shard-map`);
  const json = (cm?.['data'] as Record<string, string> | undefined)?.['shard-map.json'];
  return json ? parseShardMap(json) : undefined;
}

beforeAll(async () => {
  client = await openSuite(ns);
  op = await startOperator({ SCALABLE_LEASE_NAME: uniqueName('lease-shards') });
});

afterAll(() => closeSuite(client, { operators: [op], namespaces: [ns] }));

describe('shard map across a change of shards', () => {
  printLogDirOnFailure();

  it('holds the live ranges when shards grow and lists the new shard without buckets', async () => {
    await applyAs(client, 'test-user', scalableApp(ns, 'grow', spec(2)));
    const before = await eventually('the 2-shard map', () => publishedMap('grow'), 120_000);
    expect(new Set(before.ranges.map((r) => r.shard))).toEqual(new Set([0, 1]));

    await applyAs(client, 'test-user', scalableApp(ns, 'grow', spec(3)));
    await eventually(
      'shard 2 created',
      () => getObj(client, kindInfo('apps/v1', 'StatefulSet'), ns, 'grow-db-2'),
      120_000,
    );
    const after = await eventually('shard 2 listed in the map', async () => {
      const m = await publishedMap('grow');
      return m && m.shards.length === 3 ? m : undefined;
    });
    expect(after.ranges).toEqual(before.ranges);
    expect(after.version).toBe(before.version);
    expect(after.ranges.some((r) => r.shard === 2)).toBe(false);
    // kwok runs no Patroni: label each shard's pod primary, as Patroni does.
    for (const shard of [0, 1, 2]) {
      const pod = `grow-db-${shard}-0`;
      await eventually(`pod ${pod}`, () => getObj(client, kindInfo('v1', 'Pod'), ns, pod), 120_000);
      await mergePatch(client, kindInfo('v1', 'Pod'), ns, pod, {
        metadata: { labels: { 'scalable.dev/role': 'master' } },
      });
    }
    // The operator starts a move at once (status.resharding, written before any SQL); here it
    // waits at Prepare: kwok runs no Patroni, so no shard has a leader to run the move's SQL
    // in (on kind: test/e2e/reshard), and the map stays as it was.
    const db = await eventually(
      'DatabaseReady says the move',
      async () => {
        const c = conditionOf(await getApp(client, ns, 'grow'), 'DatabaseReady');
        return c?.['reason'] === 'Resharding' ? c : undefined;
      },
      120_000,
    );
    expect(db['message']).toContain('from 2 to 3 shards (shard map v3): phase Prepare');
    const status = (await getApp(client, ns, 'grow'))?.['status'] as Json;
    expect(status['resharding']).toMatchObject({ phase: 'Prepare', fromShards: 2, toShards: 3 });
    expect((status['shardMap'] as Json)['version']).toBe(before.version);
    expect((status['shardMap'] as Json)['ranges']).toEqual(before.ranges);
    expect((await publishedMap('grow'))?.ranges).toEqual(before.ranges);

    // The published ConfigMap lost: it comes back with the recorded ranges, not a 3-way spread.
    await client.request('DELETE', `/api/v1/namespaces/${ns}/configmaps/grow-shard-map`, {
      verb: 'delete',
      resource: 'configmaps',
    });
    const restored = await eventually('the map restored', async () => {
      const m = await publishedMap('grow');
      return m && m.shards.length === 3 ? m : undefined;
    });
    expect(restored.ranges).toEqual(before.ranges);

    // A hand edit that routes shard 1's buckets to shard 0: not published over; Degraded.
    const edited = { ...restored, ranges: [{ from: 0, to: restored.buckets, shard: 0 }] };
    await mergePatch(client, kindInfo('v1', 'ConfigMap'), ns, 'grow-shard-map', {
      data: { 'shard-map.json': JSON.stringify(edited, null, 2) + '\n' },
    });
    const degraded = await eventually('Degraded names the conflict', async () => {
      const c = conditionOf(await getApp(client, ns, 'grow'), 'Degraded');
      return c?.['reason'] === 'ShardMapConflict' ? c : undefined;
    });
    expect(degraded['message']).toContain('shard 1 -> 0');
    expect((await publishedMap('grow'))?.ranges).toEqual(edited.ranges);
  });

  it('assigns every shard its buckets for an app created with them', async () => {
    await applyAs(client, 'test-user', scalableApp(ns, 'fresh', spec(3)));
    const map = await eventually('the 3-shard map', () => publishedMap('fresh'), 120_000);
    expect(new Set(map.ranges.map((r) => r.shard))).toEqual(new Set([0, 1, 2]));
  });
});

describe('Patroni dynamic config follows the spec', () => {
  printLogDirOnFailure();

  it('turning synchronous on reaches a running shard through its DCS config', async () => {
    const db = (synchronous: boolean): Json => ({
      web: { image: 'ghcr.io/acme/sync:1' },
      database: { replicasPerShard: 1, synchronous, storage: { size: '1Gi' } },
    });
    await applyAs(client, 'test-user', scalableApp(ns, 'sync', db(false)));
    // What Patroni keeps once bootstrapped: its own ConfigMap, not owned by the app.
    const live = {
      ttl: 30,
      loop_wait: 10,
      synchronous_mode: false,
      synchronous_mode_strict: false,
      postgresql: { parameters: { max_connections: 100 } },
    };
    await client.request('POST', `/api/v1/namespaces/${ns}/configmaps`, {
      verb: 'create',
      resource: 'configmaps',
      body: {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name: 'sync-db-0-config',
          namespace: ns,
          labels: { 'scalable.dev/database': 'sync', 'scalable.dev/cluster': 'sync-db-0' },
          annotations: { config: JSON.stringify(live) },
        },
      },
    });
    await applyAs(client, 'test-user', scalableApp(ns, 'sync', db(true)));
    const config = await eventually(
      'synchronous_mode in the DCS config',
      async () => {
        const cm = await getObj(client, kindInfo('v1', 'ConfigMap'), ns, 'sync-db-0-config');
        const text = (cm?.['metadata'] as Json | undefined)?.['annotations'] as
          Record<string, string> | undefined;
        const parsed = text?.['config'] ? (JSON.parse(text['config']) as Json) : undefined;
        return parsed?.['synchronous_mode'] === true ? parsed : undefined;
      },
      60_000,
    );
    // Patroni's timings follow database.failoverSeconds (synchronous default 10: Patroni's
    // 20 s floor for the lease, the operator releasing it sooner; retry_timeout 3 keeps
    // loop_wait + 2 x retry_timeout within the release, tiers/database/lease-break.ts) on live
    // shards too; keys the spec does not own stay as Patroni keeps them.
    expect([config['ttl'], config['loop_wait'], config['retry_timeout']]).toEqual([20, 1, 3]);
    expect(((config['postgresql'] as Json)['parameters'] as Json)['max_connections']).toBe(100);
  });
});
