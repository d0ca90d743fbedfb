import { describe, expect, it } from 'vitest';
import { appWiring } from '../index.ts';
import type { AppModel } from '../../api/model.ts';
import { cacheTier } from '../cache/index.ts';
import type { Observed, TierReport } from '../shared/report.ts';
import { modelOf, obj, observed, pod, workload } from '../shared/test-helpers.ts';
import { sessionsTier } from './index.ts';

/** The reports of the Redis tiers that are on, in registry order. */
const cacheReport = (app: AppModel, o: Observed): TierReport[] =>
  [cacheTier, sessionsTier]
    .filter((t) => t.build(app, appWiring(app)).length > 0)
    .map((t) => t.report(app, o, []));

describe('sessions', () => {
  const app = modelOf({ sessions: {} });

  it('reports SessionsReady and status.sessions', () => {
    const reports = cacheReport(
      app,
      observed([
        obj('Secret', 'shop-sessions-users'),
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
      fields: { sessions: { replicas: 1, readyReplicas: 1, ready: '1/1' } },
    });
  });

  it('says why the session store is not ready (e.g. its volume cannot be bound)', () => {
    const reports = cacheReport(
      app,
      observed(
        [obj('Secret', 'shop-sessions-users'), workload('StatefulSet', 'shop-sessions', 1, 0)],
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
    expect(both.map((r) => [r.condition.type, Object.keys(r.fields ?? {})[0]])).toEqual([
      ['CacheReady', 'cache'],
      ['SessionsReady', 'sessions'],
    ]);
    expect(both.every((r) => r.condition.reason === 'Creating')).toBe(true);
  });
});
