import { describe, expect, it } from 'vitest';
import type { ObservedObject } from '../shared/report.ts';
import { modelOf } from '../shared/test-helpers.ts';
import type { ClusterAccess } from '../tier.ts';
import { RolloutGate } from './rollout-gate.ts';
import { stepRollouts } from './rollout-step.ts';

type Json = Record<string, unknown>;

function pod(ordinal: number, role: 'master' | 'replica'): ObservedObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `shop-db-0-${ordinal}`,
      uid: `uid-${ordinal}`,
      labels: {
        'scalable.dev/database': 'shop',
        'scalable.dev/cluster': 'shop-db-0',
        'controller-revision-hash': 'rev',
        'scalable.dev/role': role,
      },
    },
    status: { conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

const sts: ObservedObject = {
  apiVersion: 'apps/v1',
  kind: 'StatefulSet',
  metadata: { name: 'shop-db-0', generation: 1 },
  spec: { replicas: 3 },
  status: { observedGeneration: 1, updateRevision: 'rev' },
};

/** An API server holding the shard's StatefulSet, pods and Patroni's ConfigMaps. */
function fakeCluster(pods: ObservedObject[], configMaps: Record<string, Json>) {
  const writes: string[] = [];
  const cluster: ClusterAccess = {
    async get(_v, kind, _ns, name) {
      if (kind === 'StatefulSet') return sts as unknown as Json;
      const annotations = configMaps[name];
      // Patroni labels its ConfigMaps with the scope (the operator reads them by it).
      const labels = { 'scalable.dev/database': 'shop', 'scalable.dev/cluster': 'shop-db-0' };
      return annotations ? { metadata: { name, labels, annotations } } : undefined;
    },
    async list() {
      return pods as unknown as Json[];
    },
    async mergePatch(_v, kind, _ns, name, body) {
      writes.push(`patch ${kind} ${name} ${JSON.stringify(body)}`);
      return body;
    },
    async create(_v, kind, _ns, body) {
      const meta = body['metadata'] as { name: string; annotations: Json };
      writes.push(`create ${kind} ${meta.name} ${JSON.stringify(meta.annotations)}`);
      return body;
    },
    async delete(_v, kind, _ns, name) {
      writes.push(`delete ${kind} ${name}`);
    },
  };
  return { cluster, writes };
}

describe('stepRollouts: the switchover before a scale-down', () => {
  // replicasPerShard 2 -> 1 with the primary labelled on ordinal 2, the one that goes.
  const app = modelOf({ database: { replicasPerShard: 1 } });
  const pods = [pod(0, 'replica'), pod(1, 'replica'), pod(2, 'master')];
  const step = (configMaps: Record<string, Json>) => {
    const { cluster, writes } = fakeCluster(pods, configMaps);
    return stepRollouts(
      app,
      { objects: [sts], pods, missingApis: [] },
      cluster,
      new RolloutGate(),
    ).then((out) => ({ out, writes }));
  };

  it('asks Patroni to switch over when its leader lock names the labelled primary', async () => {
    const { out, writes } = await step({ 'shop-db-0-leader': { leader: 'shop-db-0-2' } });
    expect(writes).toEqual([
      'create ConfigMap shop-db-0-failover {"leader":"shop-db-0-2","member":"shop-db-0-0"}',
    ]);
    expect(out.map((w) => `${w.action} ${w.kind}`)).toEqual(['Created ConfigMap']);
  });

  it('asks nothing while the labels lag a switchover Patroni has already made', async () => {
    // The request was consumed (annotations cleared) and the lock moved to shop-db-0-0, but
    // shop-db-0-2 is still labelled primary: a request now would be a second one.
    const { out, writes } = await step({
      'shop-db-0-leader': { leader: 'shop-db-0-0' },
      'shop-db-0-failover': {},
    });
    expect(writes).toEqual([]);
    expect(out).toEqual([]);
  });

  it('asks nothing while a request is pending', async () => {
    const { writes } = await step({
      'shop-db-0-leader': { leader: 'shop-db-0-2' },
      'shop-db-0-failover': { leader: 'shop-db-0-2', member: 'shop-db-0-0' },
    });
    expect(writes).toEqual([]);
  });
});

describe('stepRollouts: preconditions on every write', () => {
  // A rollout: every pod on an old revision, shop-db-0-0 labelled primary.
  const old = (o: ObservedObject): ObservedObject => ({
    ...o,
    metadata: {
      ...o.metadata,
      resourceVersion: `rv-${o.metadata.name}`,
      labels: { ...o.metadata.labels, 'controller-revision-hash': 'old' },
    },
  });
  const pods = [pod(0, 'master'), pod(1, 'replica'), pod(2, 'replica')].map(old);
  const app = modelOf({ database: { replicasPerShard: 2 } });

  it('deletes the replica under its uid and resourceVersion when the lock agrees', async () => {
    const { cluster, writes } = fakeCluster(pods, {
      'shop-db-0-leader': { leader: 'shop-db-0-0' },
    });
    const seen: unknown[] = [];
    const out = await stepRollouts(
      app,
      { objects: [sts], pods, missingApis: [] },
      { ...cluster, delete: async (...args) => void seen.push(args) },
      new RolloutGate(),
    );
    expect(writes).toEqual([]);
    expect(seen).toEqual([
      ['v1', 'Pod', 'prod', 'shop-db-0-2', 'uid-2', undefined, 'rv-shop-db-0-2'],
    ]);
    expect(out.map((w) => `${w.action} ${w.name}`)).toEqual(['Deleted shop-db-0-2']);
  });

  it("deletes no member while Patroni's dynamic config lags the restart-only parameters", async () => {
    const config = (walLevel: string) =>
      JSON.stringify({ postgresql: { parameters: { wal_level: walLevel } } });
    const deletes = async (walLevel: string) => {
      const { cluster } = fakeCluster(pods, {
        'shop-db-0-leader': { leader: 'shop-db-0-0' },
        'shop-db-0-config': { config: config(walLevel) },
      });
      const seen: string[] = [];
      await stepRollouts(
        app,
        { objects: [sts], pods, missingApis: [] },
        { ...cluster, delete: async (_v, _k, _ns, name) => void seen.push(name) },
        new RolloutGate(),
      );
      return seen;
    };
    // The pod would restart with wal_level replica and count as up to date: held.
    expect(await deletes('replica')).toEqual([]);
    expect(await deletes('logical')).toEqual(['shop-db-0-2']);
  });

  it('writes nothing when the lock moves between the plan and the write', async () => {
    const configMaps: Record<string, Json> = { 'shop-db-0-leader': { leader: 'shop-db-0-0' } };
    const { cluster, writes } = fakeCluster(pods, configMaps);
    let leaderReads = 0;
    const moving: ClusterAccess = {
      ...cluster,
      async get(v, kind, ns, name) {
        // The second read of the lock (right before the write) sees a takeover.
        if (name === 'shop-db-0-leader' && ++leaderReads === 2)
          configMaps['shop-db-0-leader'] = { leader: 'shop-db-0-2' };
        return cluster.get(v, kind, ns, name);
      },
    };
    const out = await stepRollouts(
      app,
      { objects: [sts], pods, missingApis: [] },
      moving,
      new RolloutGate(),
    );
    expect(leaderReads).toBe(2);
    expect(writes).toEqual([]);
    expect(out).toEqual([]);
  });
});
