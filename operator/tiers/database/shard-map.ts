// The shard map ConfigMap <app>-shard-map (JSON) and the wiring that hands it and the
// DATABASE_* env to every app pod. Addresses are Service DNS names, stable across failover.
// With database.pooler on, a shard's primary address is its pooler's Service: apps write
// through PgBouncer, and turning the pooler on or off changes the map's addresses (not its
// version), which running SDK clients take without a restart.
import type { AppModel } from '../../api/model.ts';
import type { AppWiring, EnvVar } from '../tier.ts';
import type { K8sObject } from '../shared/chart.ts';
import { COMPONENT_LABEL, metadataOf, withAnnotations } from '../shared/meta.ts';
import { caFileOf, caWiring } from '../shared/tls/objects.ts';
import { writeServiceName } from '../pooler/names.ts';
import { makeShardMap, parseShardMap } from '../../../sdk/src/contract/shard-map.ts';
import type { ShardMap } from '../../../sdk/src/contract/shard-map.ts';
import {
  APP_PASSWORD_KEY,
  POSTGRES_PORT,
  appDatabaseName,
  appSecretName,
  replicaServiceName,
  serviceHost,
  shardIndexes,
  shardMapName,
  shardName,
} from './names.ts';

export const SHARD_MAP_KEY = 'shard-map.json';
export const SHARD_MAP_COMPONENT = 'shard-map';
export const SHARD_MAP_MOUNT = '/etc/scalable/shard-map';
export const SHARD_MAP_VERSION_ANNOTATION = 'scalable.dev/shard-map-version';

/**
 * The map for the current spec. Buckets are a pure function of the shard count, and shards
 * only ever grow (the CRD forbids shrinking), so the count is a monotonic version: it goes
 * up exactly when buckets move.
 */
export function shardMapOf(app: AppModel): ShardMap | undefined {
  const db = app.database;
  if (!db) return undefined;
  return makeShardMap({
    version: db.shards,
    database: appDatabaseName(app),
    ...(db.shardKey ? { shardKey: db.shardKey } : {}),
    shards: shardIndexes(app).map((index) => ({
      index,
      primary: serviceHost(app, writeServiceName(app, index)),
      replicas: serviceHost(app, replicaServiceName(app, index)),
      port: POSTGRES_PORT,
    })),
  });
}

/** Shards of the map that own no bucket: they wait for a resharding. */
export function shardsWithoutBuckets(map: ShardMap): number[] {
  const owners = new Set(map.ranges.map((r) => r.shard));
  return map.shards.map((s) => s.index).filter((i) => !owners.has(i));
}

/** The map for the spec as it stands; shard-hold.ts replaces it with the recorded one. */
export function shardMapConfigMap(app: AppModel): K8sObject[] {
  const map = shardMapOf(app);
  if (!map) return [];
  return [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: metadataOf(app, 'database', shardMapName(app), SHARD_MAP_COMPONENT, {
        annotations: { [SHARD_MAP_VERSION_ANNOTATION]: String(map.version) },
      }),
      data: { [SHARD_MAP_KEY]: JSON.stringify(map, null, 2) + '\n' },
    },
  ];
}

/** Whether a desired object is the shard-map ConfigMap (the one the reconciler holds). */
export const isShardMapObject = (obj: K8sObject): boolean =>
  obj.kind === 'ConfigMap' && obj.metadata.labels?.[COMPONENT_LABEL] === SHARD_MAP_COMPONENT;

/** The shard-map ConfigMap with `map` as its data (and version annotation). */
export function withShardMap(desired: K8sObject, map: ShardMap): K8sObject {
  const data = desired['data'] as Record<string, string> | undefined;
  const json = JSON.stringify(map, null, 2) + '\n';
  if (data?.[SHARD_MAP_KEY] === json) return desired;
  return {
    ...withAnnotations(desired, { [SHARD_MAP_VERSION_ANNOTATION]: String(map.version) }),
    data: { ...data, [SHARD_MAP_KEY]: json },
  };
}

/** The map a shard-map ConfigMap holds; undefined when absent or unparsable. */
export function shardMapIn(
  cm: { readonly [key: string]: unknown } | undefined,
): ShardMap | undefined {
  const json = (cm?.['data'] as Record<string, string> | undefined)?.[SHARD_MAP_KEY];
  if (!json) return undefined;
  try {
    return parseShardMap(json);
  } catch {
    return undefined;
  }
}

/** The app pod's volume (and directory under /etc/scalable/ca) holding the database CA. */
const CA_VOLUME = 'database-ca';

/**
 * DATABASE_* env (shard 0's Services for unsharded apps; DATABASE_HOST its pooler when on)
 * and the mounted shard map. The pooler's certificate comes from the same CA as the shards'.
 */
export function databaseWiring(app: AppModel): Partial<AppWiring> {
  if (!app.database) return {};
  const env: EnvVar[] = [
    { name: 'DATABASE_HOST', value: serviceHost(app, writeServiceName(app, 0)) },
    { name: 'DATABASE_RO_HOST', value: serviceHost(app, replicaServiceName(app, 0)) },
    { name: 'DATABASE_PORT', value: String(POSTGRES_PORT) },
    { name: 'DATABASE_NAME', value: appDatabaseName(app) },
    { name: 'DATABASE_USER', value: appDatabaseName(app) },
    {
      name: 'DATABASE_PASSWORD',
      valueFrom: { secretKeyRef: { name: appSecretName(app), key: APP_PASSWORD_KEY } },
    },
    { name: 'DATABASE_SHARD_MAP', value: `${SHARD_MAP_MOUNT}/${SHARD_MAP_KEY}` },
  ];
  // Every shard's certificate comes from the operator's one CA: shard 0's copy serves all.
  const tls = app.database.tls ? caWiring(CA_VOLUME, shardName(app, 0)) : undefined;
  if (tls) {
    env.push(
      { name: 'DATABASE_SSLMODE', value: 'verify-full' },
      { name: 'DATABASE_SSLROOTCERT', value: caFileOf(CA_VOLUME) },
    );
  }
  return {
    env,
    // A directory mount (not subPath), so a new map version reaches running pods.
    volumes: [
      { name: 'shard-map', configMap: { name: shardMapName(app) } },
      ...(tls?.volumes ?? []),
    ],
    volumeMounts: [
      { name: 'shard-map', mountPath: SHARD_MAP_MOUNT, readOnly: true },
      ...(tls?.volumeMounts ?? []),
    ],
  };
}
