// Connection pooling (database.pooler): PgBouncer per shard in front of the primary, so many
// app pods share few Postgres connections. Off unless the section is present.
import type { Tier } from '../tier.ts';
import { POOLER_TIER, buildPooler } from './build.ts';
import { POOLER_READY, poolerReport } from './status.ts';

export const poolerTier: Tier = {
  name: POOLER_TIER,
  // A part of the database section; the database tier is the section's owner.
  sections: [],
  conditionType: POOLER_READY,
  build: buildPooler,
  report: poolerReport,
};
