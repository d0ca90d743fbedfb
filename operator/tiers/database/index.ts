// The database (the chapter's replication, failover and sharding): per shard a Patroni-managed
// Postgres StatefulSet with -rw/-ro Services, and the shard map apps route by. Its hooks keep
// what lives outside its objects: the bucket ranges already published, Patroni's dynamic
// config, the data clean-up of deletionPolicy: Delete, and rollouts and scale-downs in an
// order that moves the primary once, by a switchover (rollout.ts). Its watches release the
// leader lock of a primary that went silent (fast failover, lease-watch.ts) and move buckets
// when the shard count grows (online resharding, reshard-watch.ts).
import type { Tier } from '../tier.ts';
import { buildDatabase } from './build.ts';
import { DATA_FINALIZER, cleanUpDatabase, retainedDatabase, wantsFinalizer } from './cleanup.ts';
import { syncPatroniConfig } from './dcs-sync.ts';
import { leaseWatch } from './lease-watch.ts';
import { reshardWatch } from './reshard-watch.ts';
import { holdShardMap } from './shard-hold.ts';
import { holdPoolerMap } from '../pooler/hold.ts';
import { databaseWiring } from './shard-map.ts';
import { holdReplicas } from './rollout.ts';
import { stepRollouts } from './rollout-step.ts';
import { DATABASE_READY, databaseReport } from './status.ts';
import { heldShards } from './held-shards.ts';

export const databaseTier: Tier = {
  name: 'database',
  sections: ['database'],
  conditionType: DATABASE_READY,
  build: buildDatabase,
  wiring: databaseWiring,
  report: databaseReport,
  retained: retainedDatabase,
  hold: heldShards,
  hooks: {
    adjust: (app, desired, live) =>
      holdPoolerMap(app, holdShardMap(app, desired, live), live).map((o) =>
        o.kind === 'StatefulSet' ? holdReplicas(o, live.object(o)) : o,
      ),
    afterApply: syncPatroniConfig,
    step: stepRollouts,
    finalizer: { name: DATA_FINALIZER, wanted: wantsFinalizer, cleanUp: cleanUpDatabase },
  },
  watches: [leaseWatch, reshardWatch],
};
