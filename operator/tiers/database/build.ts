// The database tier: per shard a Patroni-managed Postgres StatefulSet with its Services,
// PDB and Patroni config; shared RBAC, Secrets, NetworkPolicy and the shard map.
import { k8s } from '../shared/k8s.ts';
import type { AppModel } from '../../api/model.ts';
import { synth } from '../shared/chart.ts';
import type { K8sObject } from '../shared/chart.ts';
import { metadataOf } from '../shared/meta.ts';
import { appCaObjects, appCaOwner, serverCertificate } from '../shared/tls/cert-manager.ts';
import { LOCALHOST, serverTlsObjects, serviceDnsNames } from '../shared/tls/objects.ts';
import {
  headlessServiceName,
  patroniConfigMapName,
  replicaServiceName,
  shardIndexes,
  shardName,
  tlsCommonName,
} from './names.ts';
import { FENCE_FILE, fenceScript } from './fence.ts';
import { databaseNetworkPolicy } from './networkpolicy.ts';
import {
  PATRONI_CONFIG_FILE,
  backupLayout,
  POOLER_AUTH_FILE,
  POST_BOOTSTRAP_FILE,
  renderPatroniConfig,
  renderPoolerAuthFile,
  renderPostBootstrap,
} from './patroni-config.ts';
import { shardPdb } from './pdb.ts';
import { patroniRbac } from './rbac.ts';
import { databaseSecrets } from './secrets.ts';
import { shardServices } from './services.ts';
import { shardMapConfigMap } from './shard-map.ts';
import { PGBACKREST_CONFIG_FILE, renderPgBackRestConfig } from './backup.ts';
import { shardStatefulSet } from './statefulset.ts';

/** What a shard's certificate names: its Services, its pods, the tier's common name, loopback. */
export function shardDnsNames(app: AppModel, shard: number): string[] {
  return [
    ...serviceDnsNames(app, shardName(app, shard)),
    ...serviceDnsNames(app, replicaServiceName(app, shard)),
    ...serviceDnsNames(app, headlessServiceName(app, shard), true),
    tlsCommonName(app),
    LOCALHOST,
  ];
}

/** Per shard the Secret (and its record) to issue into, and cert-manager's way to fill it. */
function shardTls(app: AppModel): K8sObject[] {
  const db = app.database;
  if (!db?.tls) return [];
  const issuer = db.certificateIssuer;
  return [
    ...(appCaOwner(app) === 'database' ? appCaObjects(app, 'database', 'postgres') : []),
    ...shardIndexes(app).flatMap((shard) => {
      const base = shardName(app, shard);
      const names = shardDnsNames(app, shard);
      return [
        ...serverTlsObjects(app, 'database', base, names, 'postgres'),
        serverCertificate(app, 'database', base, names, issuer, 'postgres'),
      ];
    }),
  ];
}

const poolerAuthFileOf = (app: AppModel): Record<string, string> => {
  const sql = renderPoolerAuthFile(app);
  return sql === undefined ? {} : { [POOLER_AUTH_FILE]: sql };
};

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
          [FENCE_FILE]: fenceScript(),
          ...poolerAuthFileOf(app),
          ...(app.database?.backup
            ? { [PGBACKREST_CONFIG_FILE]: renderPgBackRestConfig(app, shard, backupLayout()) }
            : {}),
        },
      });
      shardServices(chart, app, shard);
      shardStatefulSet(chart, app, shard);
      shardPdb(chart, app, shard);
    }
    databaseNetworkPolicy(chart, app);
  });
  return [...databaseSecrets(app), ...shardTls(app), ...shardMapConfigMap(app), ...objects];
}
