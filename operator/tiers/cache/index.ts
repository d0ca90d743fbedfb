// The cache (the chapter's "cache data as much as you can"): Redis with maxmemory and an
// eviction policy, Sentinel when it has replicas; never shared with sessions or queues.
import type { Tier } from '../tier.ts';
import { buildCache, cacheWiring } from './build.ts';
import { CACHE_READY, cacheReport } from './status.ts';

export const cacheTier: Tier = {
  name: 'cache',
  sections: ['cache'],
  conditionType: CACHE_READY,
  build: buildCache,
  wiring: cacheWiring,
  report: cacheReport,
};
