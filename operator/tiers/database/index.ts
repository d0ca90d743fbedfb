// The database (the chapter's replication, failover and sharding): per shard a Patroni-managed
// Postgres StatefulSet with -rw/-ro Services, and the shard map apps route by. Its hooks keep
// what lives outside its objects: the bucket ranges already published, Patroni's dynamic
// config, and the data clean-up of deletionPolicy: Delete.
import type { K8sObject } from '../shared/chart.ts';
import type { Tier } from '../tier.ts';
import { buildDatabase } from './build.ts';
import { DATA_FINALIZER, cleanUpDatabase, retainedDatabase, wantsFinalizer } from './cleanup.ts';
import { syncPatroniConfig } from './dcs-sync.ts';
import { SHARD_MAP_KEY, databaseWiring, holdLiveShardMap, isShardMapObject } from './shard-map.ts';
import { DATABASE_READY, databaseReport } from './status.ts';

/** A live shard map keeps its bucket ranges: rows are never routed to a shard that does
 *  not hold them (moving buckets is not automated yet). */
function holdShardMap(
  desired: readonly K8sObject[],
  live: (obj: K8sObject) => K8sObject | undefined,
): K8sObject[] {
  return desired.map((obj) => {
    if (!isShardMapObject(obj)) return obj;
    const data = live(obj)?.['data'] as Record<string, string> | undefined;
    return holdLiveShardMap(obj, data?.[SHARD_MAP_KEY]);
  });
}

export const databaseTier: Tier = {
  name: 'database',
  sections: ['database'],
  conditionType: DATABASE_READY,
  build: buildDatabase,
  wiring: databaseWiring,
  report: databaseReport,
  retained: retainedDatabase,
  hooks: {
    adjust: (_app, desired, live) => holdShardMap(desired, live),
    afterApply: syncPatroniConfig,
    finalizer: { name: DATA_FINALIZER, wanted: wantsFinalizer, cleanUp: cleanUpDatabase },
  },
};
