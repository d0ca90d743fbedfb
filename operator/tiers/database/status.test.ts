import { describe, expect, it } from 'vitest';
import type { Observed, ObservedObject } from '../shared/report.ts';
import { modelOf } from '../shared/test-helpers.ts';
import { shardMapOf } from './shard-map.ts';
import { databaseReport, shardMapStatus } from './status.ts';

const app = modelOf({ database: { shards: 2, replicasPerShard: 2, shardKey: 'customer_id' } });

function pod(name: string, shard: number, role: string | undefined, ready = true): ObservedObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      labels: {
        'scalable.dev/app': 'shop',
        'scalable.dev/database': 'shop',
        'scalable.dev/cluster': `shop-db-${shard}`,
        ...(role ? { 'scalable.dev/role': role } : {}),
      },
    },
    status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  };
}

const observed = (pods: ObservedObject[]): Observed => ({ objects: [], pods, missingApis: [] });

const healthy = [
  pod('shop-db-0-0', 0, 'master'),
  pod('shop-db-0-1', 0, 'replica'),
  pod('shop-db-0-2', 0, 'replica'),
  pod('shop-db-1-0', 1, 'replica'),
  pod('shop-db-1-1', 1, 'master'),
  pod('shop-db-1-2', 1, 'replica'),
];

describe('databaseReport', () => {
  it('is ready with every primary and replica, and names the primary Patroni chose', () => {
    const r = databaseReport(app, observed(healthy));
    expect(r.condition).toMatchObject({
      type: 'DatabaseReady',
      status: 'True',
      reason: 'ShardsReady',
    });
    expect(r.fields?.['database']).toEqual({
      shards: [
        { index: 0, primary: 'shop-db-0-0', readyReplicas: 2, replicas: 2 },
        { index: 1, primary: 'shop-db-1-1', readyReplicas: 2, replicas: 2 },
      ],
    });
  });

  it('says the phase of a bucket move on record, and why it is stuck when it is', () => {
    const resharding = {
      phase: 'InitialCopy',
      fromShards: 2,
      toShards: 3,
      mapVersion: 3,
      ranges: [],
      moves: [],
    };
    const moving = databaseReport(app, { ...observed(healthy), appStatus: { resharding } });
    expect(moving.condition).toMatchObject({ status: 'True', reason: 'Resharding' });
    expect(moving.condition.message).toContain(
      'from 2 to 3 shards (shard map v3): phase InitialCopy',
    );
    const note = { reason: 'SequenceColumnsRefused', message: 'refused: public.t.id (identity)' };
    const stuck = databaseReport(app, {
      ...observed(healthy),
      appStatus: { resharding: { ...resharding, phase: 'Prepare', note } },
    });
    expect(stuck.condition).toMatchObject({ reason: 'SequenceColumnsRefused' });
    expect(stuck.condition.message).toContain('public.t.id (identity)');
    // Without a move on record: as before.
    expect(databaseReport(app, observed(healthy)).condition.reason).toBe('ShardsReady');
  });

  it("says when an asynchronous app stored with failoverSeconds 10 gets Patroni's lease", () => {
    const stored = modelOf(
      {
        database: { shards: 2, replicasPerShard: 2, shardKey: 'customer_id', failoverSeconds: 10 },
      },
      'shop',
      'prod',
      true,
    );
    expect(databaseReport(stored, observed(healthy)).condition).toMatchObject({
      status: 'True',
      reason: 'ShardsReady',
      message: expect.stringMatching(
        /; failover takes Patroni's 20 s lease, not failoverSeconds 10: below 20 s needs synchronous: true/,
      ),
    });
    expect(databaseReport(app, observed(healthy)).condition.message).not.toMatch(/lease/);
  });

  it('is not ready while a shard has no ready primary (e.g. mid-failover)', () => {
    const pods = healthy.map((p) =>
      p.metadata.name === 'shop-db-1-1' ? pod('shop-db-1-1', 1, 'master', false) : p,
    );
    const r = databaseReport(app, observed(pods));
    expect(r.condition).toMatchObject({
      status: 'False',
      reason: 'NoPrimary',
      message: 'no ready primary in shop-db-1',
    });
    expect((r.fields?.['database'] as { shards: unknown[] }).shards[1]).toEqual({
      index: 1,
      readyReplicas: 2,
      replicas: 2,
    });
  });

  it('stays ready but says so when replicas are missing', () => {
    const pods = healthy.filter((p) => p.metadata.name !== 'shop-db-0-2');
    const r = databaseReport(app, observed(pods));
    expect(r.condition).toMatchObject({
      status: 'True',
      reason: 'ReplicasDegraded',
      message: 'shop-db-0: 1/2 replicas ready',
    });
    // The app's Degraded condition says it too (a lost synchronous standby, say).
    expect(r.degraded).toEqual({
      reason: 'ReplicasDegraded',
      message: 'database: shop-db-0: 1/2 replicas ready',
    });
    expect(databaseReport(app, observed(healthy)).degraded).toBeUndefined();
  });

  it('ignores pods of other apps and pods Patroni has not labelled yet', () => {
    const other = {
      ...pod('x-db-0-0', 0, 'master'),
      metadata: {
        name: 'x',
        labels: {
          'scalable.dev/database': 'x',
          'scalable.dev/cluster': 'shop-db-0',
          'scalable.dev/role': 'master',
        },
      },
    };
    const r = databaseReport(app, observed([other, pod('shop-db-0-0', 0, undefined)]));
    expect(r.condition.reason).toBe('NoPrimary');
  });

  // StatefulSets of both shards, their controller on revision `rev`.
  const sets = (rev: string, replicas = 3): ObservedObject[] =>
    [0, 1].map((i) => ({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: `shop-db-${i}`, generation: 2 },
      spec: { replicas },
      status: { observedGeneration: 2, updateRevision: rev },
    }));
  const onRevision = (pods: ObservedObject[], rev: string, except?: string) =>
    pods.map((p) =>
      p.metadata.name === except
        ? p
        : {
            ...p,
            metadata: {
              ...p.metadata,
              labels: { ...p.metadata.labels, 'controller-revision-hash': rev },
            },
          },
    );

  it('is not ready while a shard rolls, and says what comes next', () => {
    const pods = onRevision(healthy, 'v2', 'shop-db-0-2');
    const r = databaseReport(app, { objects: sets('v2'), pods, missingApis: [] });
    expect(r.condition).toMatchObject({
      status: 'False',
      reason: 'RollingUpdate',
      message:
        'shop-db-0: next: restart shop-db-0-2 (replica on an old revision (1 of 3 pods to update))',
    });
    const done = databaseReport(app, {
      objects: sets('v2'),
      pods: onRevision(healthy, 'v2'),
      missingApis: [],
    });
    expect(done.condition.reason).toBe('ShardsReady');
  });

  it('is not ready while a scale-down waits for the primary to move', () => {
    const pods = healthy.map((p) =>
      p.metadata.name === 'shop-db-1-1'
        ? pod('shop-db-1-1', 1, 'replica')
        : p.metadata.name === 'shop-db-1-2'
          ? pod('shop-db-1-2', 1, 'master')
          : p,
    );
    const small = modelOf({
      database: { shards: 2, replicasPerShard: 1, shardKey: 'customer_id' },
    });
    const r = databaseReport(small, {
      objects: sets('v1'),
      pods: onRevision(pods, 'v1'),
      missingApis: [],
    });
    expect(r.condition).toMatchObject({ status: 'False', reason: 'RollingUpdate' });
    expect(r.condition.message).toContain(
      'shop-db-1: next: switchover from shop-db-1-2 (scale-down to 2 would remove the primary shop-db-1-2)',
    );
  });

  it('is never ready with two pods labelled primary in a shard', () => {
    const pods = healthy.map((p) =>
      p.metadata.name === 'shop-db-1-2' ? pod('shop-db-1-2', 1, 'master') : p,
    );
    expect(databaseReport(app, observed(pods)).condition).toMatchObject({
      status: 'False',
      reason: 'MultiplePrimaries',
      message: 'more than one pod labelled primary in shop-db-1: shop-db-1-1, shop-db-1-2',
    });
  });

  it('turns the data-version check of a refused data directory into MajorVersionMismatch', () => {
    const message =
      'MajorVersionMismatch: the data directory was initialised by PostgreSQL 16, this image runs PostgreSQL 17; Postgres was not started';
    const refused: ObservedObject = {
      ...pod('shop-db-0-0', 0, undefined, false),
      status: {
        conditions: [{ type: 'Ready', status: 'False' }],
        initContainerStatuses: [
          {
            name: 'check-data-version',
            state: { waiting: { reason: 'CrashLoopBackOff' } },
            lastState: { terminated: { exitCode: 1, message: `${message}\n` } },
          },
        ],
      },
    };
    const pods = [refused, ...healthy.filter((p) => p.metadata.name !== 'shop-db-0-0')];
    expect(databaseReport(app, observed(pods)).condition).toEqual({
      type: 'DatabaseReady',
      status: 'False',
      reason: 'MajorVersionMismatch',
      message: `shop-db-0-0: ${message}`,
    });
  });

  it('reports Disabled when the tier is off', () => {
    expect(databaseReport(modelOf({}), observed([])).condition).toMatchObject({
      status: 'True',
      reason: 'Disabled',
    });
  });
});

describe('shardMapStatus', () => {
  it('summarises the shard map, with the recorded ranges', () => {
    expect(shardMapStatus(app)).toEqual({
      version: 2,
      configMapName: 'shop-shard-map',
      buckets: 1024,
      ranges: [
        { from: 0, to: 512, shard: 0 },
        { from: 512, to: 1024, shard: 1 },
      ],
    });
    expect(shardMapStatus(modelOf({}))).toBeUndefined();
  });

  it('reports a published map that moves buckets off their shard as Degraded', () => {
    const recorded = (index: number, ranges: string): ObservedObject => ({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: {
        name: `shop-db-${index}`,
        annotations: {
          'scalable.dev/bucket-ranges': ranges,
          'scalable.dev/shard-map-version': '2',
        },
      },
    });
    const map = (ranges: unknown) => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'shop-shard-map' },
      data: { 'shard-map.json': JSON.stringify({ ...shardMapOf(app), ranges }) },
    });
    const shards = [recorded(0, '0-512'), recorded(1, '512-1024')];
    const ok = databaseReport(app, {
      objects: [...shards, map(shardMapOf(app)!.ranges)],
      pods: [],
      missingApis: [],
    });
    expect(ok.degraded).toBeUndefined();
    const edited = databaseReport(app, {
      objects: [...shards, map([{ from: 0, to: 1024, shard: 0 }])],
      pods: [],
      missingApis: [],
    });
    expect(edited.degraded?.reason).toBe('ShardMapConflict');
    expect(edited.degraded?.message).toContain('512-1024 (shard 1 -> 0)');
  });
});
