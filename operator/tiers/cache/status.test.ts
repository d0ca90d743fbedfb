import { describe, expect, it } from 'vitest';
import { appWiring } from '../index.ts';
import type { AppModel } from '../../api/model.ts';
import type { Observed, TierReport } from '../shared/report.ts';
import { modelOf, obj, observed, pod, workload } from '../shared/test-helpers.ts';
import { sessionsTier } from '../sessions/index.ts';
import { cacheTier } from './index.ts';

/** The reports of the Redis tiers that are on, in registry order. */
const cacheReport = (app: AppModel, o: Observed): TierReport[] =>
  [cacheTier, sessionsTier]
    .filter((t) => t.build(app, appWiring(app)).length > 0)
    .map((t) => t.report(app, o, []));

const standalone = modelOf({ cache: {} });
const replicated = modelOf({ cache: { replicas: 2 } });

describe('cacheReport', () => {
  it('reports nothing when neither the cache nor sessions are on', () => {
    expect(cacheReport(modelOf({}), observed([]))).toEqual([]);
    expect(cacheReport(modelOf({ cache: { enabled: false } }), observed([]))).toEqual([]);
  });

  it('is Creating until the Secret and the workload exist', () => {
    const [r] = cacheReport(standalone, observed([obj('Secret', 'shop-cache-users')]));
    expect(r?.condition).toEqual({
      type: 'CacheReady',
      status: 'False',
      reason: 'Creating',
      message: 'waiting for Deployment shop-cache',
    });
    expect(Object.keys(r?.fields ?? {})).toEqual(['cache']);
  });

  it('is Ready with status.cache when the one Redis is ready', () => {
    const [r] = cacheReport(
      standalone,
      observed([obj('Secret', 'shop-cache-users'), workload('Deployment', 'shop-cache', 1, 1)]),
    );
    expect(r?.condition.status).toBe('True');
    expect(r?.condition.reason).toBe('Ready');
    expect(r?.fields?.['cache']).toEqual({ replicas: 1, readyReplicas: 1, ready: '1/1' });
  });

  it('names the stuck pod: a missing Secret key, an image that cannot be pulled', () => {
    const waiting = (reason: string, message: string) =>
      pod('shop-cache-abc', 'cache', {
        containerStatuses: [{ name: 'redis', state: { waiting: { reason, message } } }],
      });
    const objs = [obj('Secret', 'shop-cache-users'), workload('Deployment', 'shop-cache', 1, 0)];
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
    const base = [obj('Secret', 'shop-cache-users')];
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

    it('stays usable but Degraded with a master and a Sentinel quorum; the app is told', () => {
      expect(report(1, 2)).toMatchObject({ status: 'True', reason: 'Degraded' });
      const [r] = cacheReport(
        replicated,
        observed([
          ...base,
          workload('StatefulSet', 'shop-cache', 3, 2, 3),
          workload('StatefulSet', 'shop-cache-sentinel', 3, 3),
        ]),
      );
      expect(r?.degraded).toEqual({
        reason: 'CacheDegraded',
        message: 'cache: 2/3 Redis pods ready, 3/3 Sentinels ready (quorum 2)',
      });
      const [whole] = cacheReport(
        replicated,
        observed([
          ...base,
          workload('StatefulSet', 'shop-cache', 3, 3, 3),
          workload('StatefulSet', 'shop-cache-sentinel', 3, 3),
        ]),
      );
      expect(whole?.degraded).toBeUndefined();
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
});
