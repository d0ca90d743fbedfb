// Recording rules the alerts and the dashboard share. Each app's PrometheusRule records only
// its own series (its selector is in every rule), so two apps never write the same series.
import type { AppModel } from '../../api/model.ts';
import { BY_TIER, tierSeries } from './promql.ts';

export interface RecordingRule {
  readonly record: string;
  readonly expr: string;
}

export const RECORD = {
  hitRatio5m: 'scalable:redis_hit_ratio:rate5m',
  hitRatio1h: 'scalable:redis_hit_ratio:rate1h',
  evictions5m: 'scalable:redis_evicted_keys:rate5m',
  memoryUsed: 'scalable:redis_memory_used:ratio',
} as const;

const hitRatio = (s: string, window: string): string =>
  `sum by (${BY_TIER}) (rate(redis_keyspace_hits_total${s}[${window}]))\n` +
  `/ (sum by (${BY_TIER}) (rate(redis_keyspace_hits_total${s}[${window}]))\n` +
  `  + sum by (${BY_TIER}) (rate(redis_keyspace_misses_total${s}[${window}])))`;

/** Over the app's Redis tiers (cache, sessions): one rule per series name, by tier. */
function redisRecords(app: AppModel, tiers: readonly string[]): RecordingRule[] {
  if (tiers.length === 0) return [];
  const s = tierSeries(app, `~${tiers.join('|')}`);
  return [
    { record: RECORD.hitRatio5m, expr: hitRatio(s, '5m') },
    { record: RECORD.hitRatio1h, expr: hitRatio(s, '1h') },
    {
      record: RECORD.evictions5m,
      expr: `sum by (${BY_TIER}) (rate(redis_evicted_keys_total${s}[5m]))`,
    },
    {
      // Per pod: the fullest Redis of the tier decides (a replica holds what the master does).
      record: RECORD.memoryUsed,
      expr: `max by (${BY_TIER}, pod) (redis_memory_used_bytes${s})\n/ max by (${BY_TIER}, pod) (redis_memory_max_bytes${s} > 0)`,
    },
  ];
}

export function recordingRules(app: AppModel): RecordingRule[] {
  return redisRecords(app, [
    ...(app.cache ? ['cache'] : []),
    ...(app.sessions ? ['sessions'] : []),
  ]);
}
