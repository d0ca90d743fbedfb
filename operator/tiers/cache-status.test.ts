import { describe, expect, it } from 'vitest';
import type { Observed, ObservedObject } from '../status/types.ts';
import { cacheReport } from './cache-status.ts';
import { modelOf } from './test-helpers.ts';

const obj = (kind: string, name: string, status?: Record<string, unknown>): ObservedObject => ({
  apiVersion: kind === 'Secret' ? 'v1' : 'apps/v1',
  kind,
  metadata: { name, namespace: 'prod', generation: 1 },
  ...(status ? { status } : {}),
});

const workload = (kind: string, name: string, desired: number, ready: number, updated = desired) =>
  obj(kind, name, {
    observedGeneration: 1,
    replicas: desired,
    readyReplicas: ready,
    updatedReplicas: updated,
  });

const pod = (name: string, tier: string, status: Record<string, unknown>): ObservedObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, labels: { 'scalable.dev/app': 'shop', 'scalable.dev/tier': tier } },
  status,
});

const observed = (objects: ObservedObject[], pods: ObservedObject[] = []): Observed => ({
  objects,
  pods,
  missingApis: [],
});

const standalone = modelOf({ cache: {} });
const replicated = modelOf({ cache: { replicas: 2 } });

describe('cacheReport', () => {
  it('reports nothing when neither the cache nor sessions are on', () => {
    expect(cacheReport(modelOf({}), observed([]))).toEqual([]);
    expect(cacheReport(modelOf({ cache: { enabled: false } }), observed([]))).toEqual([]);
  });

  it('is Creating until the Secret and the workload exist', () => {
    const [r] = cacheReport(standalone, observed([obj('Secret', 'shop-cache-auth')]));
    expect(r?.condition).toEqual({
      type: 'CacheReady',
      status: 'False',
      reason: 'Creating',
      message: 'waiting for Deployment shop-cache',
    });
    expect(r?.statusKey).toBe('cache');
  });

  it('is Ready with status.cache when the one Redis is ready', () => {
    const [r] = cacheReport(
      standalone,
      observed([obj('Secret', 'shop-cache-auth'), workload('Deployment', 'shop-cache', 1, 1)]),
    );
    expect(r?.condition.status).toBe('True');
    expect(r?.condition.reason).toBe('Ready');
    expect(r?.status).toEqual({ replicas: 1, readyReplicas: 1, ready: '1/1' });
  });

  it('names the stuck pod: a missing Secret key, an image that cannot be pulled', () => {
    const waiting = (reason: string, message: string) =>
      pod('shop-cache-abc', 'cache', {
        containerStatuses: [{ name: 'redis', state: { waiting: { reason, message } } }],
      });
    const objs = [obj('Secret', 'shop-cache-auth'), workload('Deployment', 'shop-cache', 1, 0)];
    for (const reason of ['CreateContainerConfigError', 'ImagePullBackOff', 'CrashLoopBackOff']) {
      const [r] = cacheReport(standalone, observed(objs, [waiting(reason, 'details')]));
      expect(r?.condition).toMatchObject({ status: 'False', reason });
      expect(r?.condition.message).toBe(
        `0/1 Redis pods ready; pod shop-cache-abc container redis: ${reason}: details`,
      );
    }
    const unschedulable = pod('shop-cache-abc', 'cache', {
      conditions: [
        { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes' },
      ],
    });
    expect(cacheReport(standalone, observed(objs, [unschedulable]))[0]?.condition.reason).toBe(
      'Unschedulable',
    );
    // A session pod's trouble is not the cache's.
    const other = pod('shop-sessions-0', 'sessions', {
      containerStatuses: [{ name: 'redis', state: { waiting: { reason: 'CrashLoopBackOff' } } }],
    });
    expect(cacheReport(standalone, observed(objs, [other]))[0]?.condition.reason).toBe('NotReady');
  });

  describe('with Sentinel', () => {
    const base = [obj('Secret', 'shop-cache-auth')];
    const report = (redisReady: number, sentinelsReady: number, updated = 3) =>
      cacheReport(
        replicated,
        observed([
          ...base,
          workload('StatefulSet', 'shop-cache', 3, redisReady, updated),
          workload('StatefulSet', 'shop-cache-sentinel', 3, sentinelsReady),
        ]),
      )[0]?.condition;

    it('waits for both StatefulSets', () => {
      const c = cacheReport(replicated, observed(base))[0]?.condition;
      expect(c?.reason).toBe('Creating');
      expect(c?.message).toBe(
        'waiting for StatefulSet shop-cache, StatefulSet shop-cache-sentinel',
      );
    });

    it('is Ready when every Redis and Sentinel is ready', () => {
      expect(report(3, 3)).toEqual({
        type: 'CacheReady',
        status: 'True',
        reason: 'Ready',
        message: '3/3 Redis pods ready, 3/3 Sentinels ready (quorum 2)',
      });
    });

    it('stays usable but Degraded with a master and a Sentinel quorum', () => {
      expect(report(1, 2)).toMatchObject({ status: 'True', reason: 'Degraded' });
    });

    it('is not ready without a Sentinel quorum: no failover, no discovery', () => {
      expect(report(3, 1)).toMatchObject({ status: 'False', reason: 'NoSentinelQuorum' });
    });

    it('is not ready without any Redis', () => {
      expect(report(0, 3)).toMatchObject({ status: 'False', reason: 'NotReady' });
    });

    it('says Updating while pods still run an older template', () => {
      expect(report(3, 3, 2)).toMatchObject({ status: 'True', reason: 'Updating' });
    });
  });

  describe('sessions', () => {
    const app = modelOf({ sessions: {} });

    it('reports SessionsReady and status.sessions', () => {
      const reports = cacheReport(
        app,
        observed([
          obj('Secret', 'shop-sessions-auth'),
          workload('StatefulSet', 'shop-sessions', 1, 1),
        ]),
      );
      expect(reports).toHaveLength(1);
      expect(reports[0]).toEqual({
        condition: {
          type: 'SessionsReady',
          status: 'True',
          reason: 'Ready',
          message: '1/1 session Redis pods ready',
        },
        statusKey: 'sessions',
        status: { replicas: 1, readyReplicas: 1, ready: '1/1' },
      });
    });

    it('says why the session store is not ready (e.g. its volume cannot be bound)', () => {
      const reports = cacheReport(
        app,
        observed(
          [obj('Secret', 'shop-sessions-auth'), workload('StatefulSet', 'shop-sessions', 1, 0)],
          [
            pod('shop-sessions-0', 'sessions', {
              conditions: [
                {
                  type: 'PodScheduled',
                  status: 'False',
                  reason: 'Unschedulable',
                  message: 'pod has unbound immediate PersistentVolumeClaims',
                },
              ],
            }),
          ],
        ),
      );
      expect(reports[0]?.condition).toMatchObject({ status: 'False', reason: 'Unschedulable' });
      expect(reports[0]?.condition.message).toContain('unbound immediate PersistentVolumeClaims');
    });

    it('reports the cache first, then sessions, when both are on', () => {
      const both = cacheReport(modelOf({ cache: {}, sessions: {} }), observed([]));
      expect(both.map((r) => [r.condition.type, r.statusKey])).toEqual([
        ['CacheReady', 'cache'],
        ['SessionsReady', 'sessions'],
      ]);
      expect(both.every((r) => r.condition.reason === 'Creating')).toBe(true);
    });
  });
});
