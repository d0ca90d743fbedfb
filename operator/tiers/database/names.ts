// Names and labels of the database tier, in one place: Services, Patroni's scope and the
// shard map must agree on them, and Patroni's own label values are a contract too.
import type { AppModel } from '../../api/model.ts';
import { labelsOf, nameOf, selectorOf } from '../shared/meta.ts';

export const POSTGRES_PORT = 5432;
export const PATRONI_PORT = 8008;
export const EXPORTER_PORT = 9187;

/**
 * Labels Patroni reads and writes. Patroni lists its members by DATABASE_LABEL + SCOPE_LABEL
 * and also puts them on the ConfigMaps it creates (<scope>-config, -leader, -failover,
 * -sync): deliberately not scalable.dev/app, so pruning the app's children never deletes
 * Patroni's cluster state.
 */
export const DATABASE_LABEL = 'scalable.dev/database';
export const SCOPE_LABEL = 'scalable.dev/cluster';
export const ROLE_LABEL = 'scalable.dev/role';
/** Role label values of Debian's Patroni 3.0.x; pinned in the config for Patroni 4.x too. */
export const PRIMARY_ROLE = 'master';
export const REPLICA_ROLE = 'replica';

/**
 * Label selector of the ConfigMaps Patroni creates for this app's shards (its cluster
 * state: leader lock, dynamic config, system id). They carry no owner reference, so
 * pruning never touches them; with deletionPolicy Delete the reconciler deletes them with
 * the volumes, or a re-created database would find a stale system id and never bootstrap.
 */
export const patroniStateSelector = (app: Pick<AppModel, 'name'>): string =>
  `${DATABASE_LABEL}=${app.name}`;

/** Keys Patroni stores as ConfigMaps (configmap mode): `<scope>-<key>`. */
export const PATRONI_CONFIGMAP_KEYS = ['config', 'leader', 'failover', 'sync'] as const;

/** Patroni scope, StatefulSet and primary Service of shard i: <app>-db-<i>. */
export const shardName = (app: AppModel, shard: number): string => nameOf(app, 'db', shard);
export const replicaServiceName = (app: AppModel, shard: number): string =>
  `${shardName(app, shard)}-ro`;
export const headlessServiceName = (app: AppModel, shard: number): string =>
  `${shardName(app, shard)}-hl`;
export const patroniConfigMapName = (app: AppModel, shard: number): string =>
  `${shardName(app, shard)}-patroni`;
export const podName = (app: AppModel, shard: number, ordinal: number): string =>
  `${shardName(app, shard)}-${ordinal}`;
/** ServiceAccount, Role, RoleBinding and NetworkPolicy shared by every shard. */
export const tierName = (app: AppModel): string => nameOf(app, 'db');
/** Superuser, replication and monitoring passwords: only Postgres pods read them. */
export const authSecretName = (app: Pick<AppModel, 'name'>): string => nameOf(app, 'db', 'auth');
/** The application role's password: what app pods read. */
export const appSecretName = (app: Pick<AppModel, 'name'>): string => nameOf(app, 'db', 'app');
/**
 * The rewind role's password, in a Secret of its own: the operator never reads or updates a
 * generated Secret, so a key added to <app>-db-auth would never reach apps made before it;
 * a new Secret is simply created for them on their next reconcile.
 */
export const rewindSecretName = (app: Pick<AppModel, 'name'>): string =>
  nameOf(app, 'db', 'rewind');
/** Every generated Secret of the tier: retained with the data, deleted with it. */
export const databaseSecretNames = (app: Pick<AppModel, 'name'>): string[] => [
  authSecretName(app),
  appSecretName(app),
  rewindSecretName(app),
];
export const shardMapName = (app: AppModel): string => nameOf(app, 'shard-map');
/**
 * One name every shard's certificate carries besides its Services': scrapers of Patroni's
 * REST API (any shard's pod, by IP) verify against it. Not a Service.
 */
export const tlsCommonName = (app: AppModel): string => `${tierName(app)}.${app.namespace}.svc`;

export const AUTH_KEYS = {
  superuser: 'superuser-password',
  replication: 'replication-password',
  restapi: 'restapi-password',
  monitor: 'monitor-password',
} as const;
export const APP_PASSWORD_KEY = 'password';
export const REWIND_PASSWORD_KEY = 'password';

export const SUPERUSER = 'postgres';
export const REPLICATION_USER = 'replicator';
export const MONITOR_USER = 'monitor';
/**
 * pg_rewind's role (no superuser: EXECUTE on the four file functions pg_rewind calls). The
 * hyphen keeps it apart from every app role: appDatabaseName turns hyphens into underscores,
 * so no app, earlier or later, can own a role of this name.
 */
export const REWIND_USER = 'scalable-rewind';

/**
 * The app's role and database: its name as a Postgres identifier ([a-z0-9_]; quoted in SQL,
 * since user or order are keywords), prefixed when it would clash with our own roles or
 * Postgres's reserved pg_ prefix.
 */
export function appDatabaseName(app: AppModel): string {
  const id = app.name.replace(/-/g, '_');
  const clashes = id.startsWith('pg_') || [SUPERUSER, REPLICATION_USER, MONITOR_USER].includes(id);
  return (clashes ? `app_${id}` : id).slice(0, 63);
}

export const shardIndexes = (app: AppModel): number[] =>
  Array.from({ length: app.database?.shards ?? 0 }, (_, i) => i);

/** Stable selector of one shard's pods (StatefulSet selector, PDB, headless Service). */
export function shardSelector(app: AppModel, shard: number): Record<string, string> {
  return {
    ...selectorOf(app, 'database', 'postgres'),
    [DATABASE_LABEL]: app.name,
    [SCOPE_LABEL]: shardName(app, shard),
  };
}

/** Labels on a shard's pods: the tier's labels plus what Patroni selects members by. */
export function shardPodLabels(app: AppModel, shard: number): Record<string, string> {
  return {
    ...labelsOf(app, 'database', 'postgres'),
    [DATABASE_LABEL]: app.name,
    [SCOPE_LABEL]: shardName(app, shard),
  };
}

/** In-cluster DNS name of a Service of this app. */
export const serviceHost = (app: AppModel, service: string): string =>
  `${service}.${app.namespace}.svc`;
