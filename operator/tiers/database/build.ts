// The database tier: per shard a Patroni-managed Postgres StatefulSet with its Services,
// PDB and Patroni config; shared RBAC, Secrets, NetworkPolicy and the shard map.
import { k8s } from '../shared/k8s.ts';
import type { AppModel } from '../../api/model.ts';
import { synth } from '../shared/chart.ts';
import type { K8sObject } from '../shared/chart.ts';
import { metadataOf } from '../shared/meta.ts';
import { patroniConfigMapName, shardIndexes } from './names.ts';
import { databaseNetworkPolicy } from './networkpolicy.ts';
import {
  PATRONI_CONFIG_FILE,
  POST_BOOTSTRAP_FILE,
  renderPatroniConfig,
  renderPostBootstrap,
} from './patroni-config.ts';
import { shardPdb } from './pdb.ts';
import { patroniRbac } from './rbac.ts';
import { databaseSecrets } from './secrets.ts';
import { shardServices } from './services.ts';
import { shardMapConfigMap } from './shard-map.ts';
import { shardStatefulSet } from './statefulset.ts';

export function buildDatabase(app: AppModel): K8sObject[] {
  if (!app.database) return [];
  const objects = synth((chart) => {
    patroniRbac(chart, app);
    for (const shard of shardIndexes(app)) {
      new k8s.KubeConfigMap(chart, `patroni-${shard}`, {
        metadata: metadataOf(app, 'database', patroniConfigMapName(app, shard), 'postgres'),
        data: {
          [PATRONI_CONFIG_FILE]: renderPatroniConfig(app, shard),
          [POST_BOOTSTRAP_FILE]: renderPostBootstrap(app),
        },
      });
      shardServices(chart, app, shard);
      shardStatefulSet(chart, app, shard);
      shardPdb(chart, app, shard);
    }
    databaseNetworkPolicy(chart, app);
  });
  return [...databaseSecrets(app), ...shardMapConfigMap(app), ...objects];
}
