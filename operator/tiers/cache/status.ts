// Pure: the cache's verdict from the observed children: CacheReady and status.cache for the
// cache Redis (+ Sentinels). Status True means "usable": a replicated cache that lost a
// replica but still has a master and a Sentinel quorum is True with reason Degraded.
import type { AppModel } from '../../api/model.ts';
import { SENTINEL_COUNT, SENTINEL_QUORUM } from '../../engines/redis/config.ts';
import { condition } from '../shared/report.ts';
import type { Observed, TierCondition, TierReport } from '../shared/report.ts';
import { missing, podProblem, ratio, tierStatus, workload } from '../shared/workload-status.ts';
import { cacheNames } from './build.ts';

export const CACHE_READY = 'CacheReady';

export function cacheReport(app: AppModel, observed: Observed): TierReport {
  if (!app.cache) return { condition: condition(CACHE_READY, 'Unknown', 'Off', 'no cache') };
  return cacheTier(app, app.cache, observed);
}

function cacheTier(
  app: AppModel,
  cache: NonNullable<AppModel['cache']>,
  observed: Observed,
): TierReport {
  const n = cacheNames(app);
  const replicated = cache.replicas > 0;
  const redis = workload(
    observed,
    replicated ? 'StatefulSet' : 'Deployment',
    n.cache,
    replicated ? cache.replicas + 1 : 1,
  );
  const sentinel = replicated
    ? workload(observed, 'StatefulSet', n.sentinel, SENTINEL_COUNT)
    : undefined;
  const report = (status: TierCondition['status'], reason: string, message: string) => ({
    condition: condition(CACHE_READY, status, reason, message),
    fields: { cache: tierStatus(redis) },
  });

  const absent = missing(observed, [
    ['Secret', n.users],
    [redis.kind, redis.name],
    ...(sentinel ? [[sentinel.kind, sentinel.name] as [string, string]] : []),
  ]);
  if (absent.length > 0) return report('False', 'Creating', `waiting for ${absent.join(', ')}`);

  const counts =
    `${ratio(redis)} Redis pods ready` +
    (sentinel ? `, ${ratio(sentinel)} Sentinels ready (quorum ${SENTINEL_QUORUM})` : '');
  const usable = redis.ready >= 1 && (!sentinel || sentinel.ready >= SENTINEL_QUORUM);
  if (!usable) {
    const problem = podProblem(app, observed, 'cache');
    if (problem) return report('False', problem.reason, `${counts}; ${problem.message}`);
    if (sentinel && sentinel.ready < SENTINEL_QUORUM && redis.ready >= 1)
      return report('False', 'NoSentinelQuorum', `${counts}: no failover and no master discovery`);
    return report('False', 'NotReady', counts);
  }
  const allReady =
    redis.ready >= redis.desired && (!sentinel || sentinel.ready >= sentinel.desired);
  // Serving with fewer copies or Sentinels than asked: the app's Degraded says so too.
  if (!allReady)
    return {
      ...report('True', 'Degraded', counts),
      degraded: { reason: 'CacheDegraded', message: `cache: ${counts}` },
    };
  if (redis.outdated || sentinel?.outdated)
    return report('True', 'Updating', `${counts}; rolling out`);
  return report('True', 'Ready', counts);
}
