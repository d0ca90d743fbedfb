// The database (the chapter's replication, failover and sharding): per shard a Patroni-managed
// Postgres StatefulSet with -rw/-ro Services, and the shard map apps route by. Its hooks keep
// what lives outside its objects: the bucket ranges already published, Patroni's dynamic
// config, and the data clean-up of deletionPolicy: Delete.
import type { Tier } from '../tier.ts';
import { buildDatabase } from './build.ts';
import { DATA_FINALIZER, cleanUpDatabase, retainedDatabase, wantsFinalizer } from './cleanup.ts';
import { syncPatroniConfig } from './dcs-sync.ts';
import { holdShardMap } from './shard-hold.ts';
import { databaseWiring } from './shard-map.ts';
import { DATABASE_READY, databaseReport } from './status.ts';

export const databaseTier: Tier = {
  name: 'database',
  sections: ['database'],
  conditionType: DATABASE_READY,
  build: buildDatabase,
  wiring: databaseWiring,
  report: databaseReport,
  retained: retainedDatabase,
  hooks: {
    adjust: holdShardMap,
    afterApply: syncPatroniConfig,
    finalizer: { name: DATA_FINALIZER, wanted: wantsFinalizer, cleanUp: cleanUpDatabase },
  },
};
