// The names of a Redis tier's objects: <app>-<tier> for the Redis workload, its Service and
// ServiceAccount; -users, -config, -headless; with Sentinel -sentinel and -sentinel-headless;
// -auth, the legacy password's Secret of tiers created before ACL users (no longer created).
import type { AppModel } from '../../api/model.ts';
import { nameOf } from '../../tiers/shared/meta.ts';
import type { TierName } from '../../tiers/shared/meta.ts';

export interface RedisNames {
  /** The Redis workload, its Service and its ServiceAccount. */
  readonly redis: string;
  /** The generated Secret: one password per ACL role (config.ts ACL_USERS). */
  readonly users: string;
  /** The legacy single password's Secret: read (optionally) while it exists, never created. */
  readonly auth: string;
  readonly config: string;
  readonly headless: string;
}

/** With Sentinel: the Sentinel set's StatefulSet and headless Service too. */
export interface ReplicatedRedisNames extends RedisNames {
  readonly sentinel: string;
  readonly sentinelHeadless: string;
}

export const redisNames = (app: AppModel, tier: TierName): RedisNames => ({
  redis: nameOf(app, tier),
  users: nameOf(app, tier, 'users'),
  auth: nameOf(app, tier, 'auth'),
  config: nameOf(app, tier, 'config'),
  headless: nameOf(app, tier, 'headless'),
});

export const replicatedRedisNames = (app: AppModel, tier: TierName): ReplicatedRedisNames => ({
  ...redisNames(app, tier),
  sentinel: nameOf(app, tier, 'sentinel'),
  sentinelHeadless: nameOf(app, tier, 'sentinel', 'headless'),
});
