// Patroni's configuration, rendered from the model (pure). The same text goes into the
// ConfigMap the pods mount and into the engine tests, which start real Patroni from it.
// Per-pod values (member name, pod IP, connect addresses, passwords) are not in the file:
// Patroni reads them from PATRONI_* environment variables, which override the file, so
// one file serves every member of a shard and no password is ever in a ConfigMap.
import { poolerAuthSql, poolerPgHba } from '../pooler/config.ts';
import yaml from 'js-yaml';
import type { AppModel } from '../../api/model.ts';
import { parseQuantity } from '../shared/quantity.ts';
import { timingsOf } from './lease-break.ts';
import { CA_DIR, SERVER_TLS_DIR, TLS_FILES } from '../shared/tls/objects.ts';
import { bucketFunctionSql } from '../../../sdk/src/contract/hash.ts';
import { BACKUP_CA_DIR, BACKUP_CA_FILE, archiveParameters, type BackupLayout } from './backup.ts';
import {
  DATABASE_LABEL,
  MONITOR_USER,
  PATRONI_PORT,
  POSTGRES_PORT,
  PRIMARY_ROLE,
  REPLICA_ROLE,
  REPLICATION_USER,
  REWIND_USER,
  ROLE_LABEL,
  SCOPE_LABEL,
  SUPERUSER,
  appDatabaseName,
  shardName,
} from './names.ts';

export const PATRONI_CONFIG_FILE = 'patroni.yml';
export const POST_BOOTSTRAP_FILE = 'post-bootstrap.sh';

/** Where things live in the pod. Tests pass their own configDir; the rest comes from env. */
export interface PodLayout {
  /** Mount point of the ConfigMap holding patroni.yml and post-bootstrap.sh. */
  readonly configDir: string;
  /** Mount point of the server key pair (tls.crt, tls.key). */
  readonly tlsDir: string;
  /** Mount point of the CA certificate (ca.crt). */
  readonly caDir: string;
}

export const POD_LAYOUT: PodLayout = {
  configDir: '/etc/patroni',
  tlsDir: SERVER_TLS_DIR,
  caDir: CA_DIR,
};
/** The PVC is mounted one level up: a fresh volume's lost+found must not be in PGDATA. */
export const DATA_MOUNT = '/var/lib/postgresql/data';
export const DATA_DIR = `${DATA_MOUNT}/pgdata`;
export const SOCKET_DIR = '/var/run/postgresql';
export const binDir = (version: string): string => `/usr/lib/postgresql/${version}/bin`;

/** Where pgBackRest finds the shard's Postgres, its store's CA and a place for locks. */
export const backupLayout = (layout: PodLayout = POD_LAYOUT): BackupLayout => ({
  configDir: layout.configDir,
  dataDir: DATA_DIR,
  socketDir: SOCKET_DIR,
  caFile: `${BACKUP_CA_DIR}/${BACKUP_CA_FILE}`,
  lockDir: '/tmp/pgbackrest',
});

/** Env names the pod sets (from the downward API and Secrets) and Patroni/psql read. */
export const ENV = {
  name: 'PATRONI_NAME',
  podIp: 'PATRONI_KUBERNETES_POD_IP',
  postgresConnect: 'PATRONI_POSTGRESQL_CONNECT_ADDRESS',
  restapiConnect: 'PATRONI_RESTAPI_CONNECT_ADDRESS',
  superuserPassword: 'PATRONI_SUPERUSER_PASSWORD',
  replicationPassword: 'PATRONI_REPLICATION_PASSWORD',
  rewindPassword: 'PATRONI_REWIND_PASSWORD',
  restapiUsername: 'PATRONI_RESTAPI_USERNAME',
  restapiPassword: 'PATRONI_RESTAPI_PASSWORD',
  appPassword: 'SCALABLE_APP_PASSWORD',
  monitorPassword: 'SCALABLE_MONITOR_PASSWORD',
} as const;

const MiB = 2 ** 20;

/** shared_buffers a quarter and effective_cache_size three quarters of the memory limit. */
function memoryParameters(app: AppModel): Record<string, string> {
  const limit = parseQuantity(app.database?.resources.limits.memory ?? '1Gi');
  return {
    shared_buffers: `${Math.max(16, Math.floor(limit / 4 / MiB))}MB`,
    effective_cache_size: `${Math.max(32, Math.floor((limit * 3) / 4 / MiB))}MB`,
  };
}

/**
 * Parameters failover depends on, kept in step on live clusters like the memory ones.
 * wal_receiver_timeout: a standby whose primary died with its node (no TCP reset) gives up
 * its stream after 5 s instead of 60, so its Patroni reports it no longer streams, which is
 * what lets the operator release the dead primary's lock (lease-break.ts).
 */
export const FAILOVER_PARAMETERS: Readonly<Record<string, string>> = {
  wal_receiver_timeout: '5s',
};

/**
 * Parameters Postgres reads only when it starts, kept in step on live clusters; a change
 * rolls the pods (the pod template carries them, statefulset.ts), since Patroni only marks
 * them pending_restart. wal_level logical: a bucket move (resharding.ts) streams the moving
 * rows by logical replication from the source shard's primary, so every member runs with it
 * before a move is asked for, not by a restart at move time. Patroni takes wal_level from
 * the dynamic config only (its value in patroni.yml's postgresql.parameters is ignored).
 */
export const RESTART_PARAMETERS: Readonly<Record<string, string>> = {
  wal_level: 'logical',
};

/**
 * Failover slots (Postgres 17): a move's subscription creates its slot with failover=true,
 * and each standby's slot sync worker keeps a copy in step with the primary's, so the move
 * resumes from the promoted standby after a failover. The worker needs hot_standby_feedback,
 * a physical slot per standby (Patroni's use_slots: primary_slot_name) and a dbname in
 * primary_conninfo (Patroni 4.0 adds it); sync_replication_slots is a reload, not a restart.
 * Not Patroni's permanent logical slots: those are fixed in the DCS config, created by
 * Patroni rather than by the subscription, and Patroni stops a replica's Postgres to copy one
 * onto it (slots.py copy_logical_slots), then advances it only to the position the primary
 * last published in the DCS.
 */
export function slotSyncParameters(app: AppModel): Record<string, string> {
  return Number(app.database?.version ?? 0) >= 17 ? { sync_replication_slots: 'on' } : {};
}

/**
 * Patroni drops every replication slot it does not manage (slots.py _drop_incorrect_slots):
 * a subscription's slot on the primary whenever its subscriber disconnects, and on standbys
 * it would try (and fail: Postgres refuses to drop a slot being synchronized) on every loop.
 * So the app database's pgoutput slots, which only logical replication creates, are not
 * Patroni's: a move drops its own slot when it ends or aborts (resharding-sql.ts).
 */
export const ignoredSlots = (app: AppModel): Array<Record<string, string>> => [
  { type: 'logical', database: appDatabaseName(app), plugin: 'pgoutput' },
];

/** The pod template's record of RESTART_PARAMETERS: changing them rolls the members. */
export const restartParametersText = (): string =>
  Object.entries(RESTART_PARAMETERS)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

/**
 * Patroni's primary_start_timeout: how long a primary whose Postgres died (kill -9, a crash of
 * the postmaster, its container restarted by the kubelet) may take to start again in place
 * before Patroni fails over. A restarted Patroni that still holds the lock starts Postgres as
 * primary again, unless this is 0: then it releases the lock ("Primary crashed. Failing
 * over.") whenever a member may take it (ha.py recover(), is_failover_possible), and keeps it
 * only when none can.
 * - synchronous: 0, as CloudNativePG's failoverDelay 0. Only the synchronous standby may
 *   take the lock, and it holds every acknowledged commit: failing over loses nothing, and a
 *   crashed primary is replaced on one code path (the standby's) instead of racing its own
 *   restart (the kubelet restarts the container at once).
 * - asynchronous: Patroni's default 300. A promoted replica lacks what it had not received,
 *   so a primary that can come back in place keeps its writes by doing so.
 */
export const primaryStartTimeout = (synchronous: boolean): number => (synchronous ? 0 : 300);

/**
 * TLS: Postgres serves it (ssl=on) and pg_hba admits TCP only over it (hostssl; a plain
 * connection finds no line and is refused). Replication and pg_rewind verify the primary's
 * chain and name (verify-full): members connect by the pod's DNS name under the headless
 * Service (statefulset.ts), which the shard's certificate carries (*.<app>-db-<i>-hl). With
 * verify-ca, any certificate of the CA would do: another app's primary, given a network
 * position, could pass for this one. Patroni's REST API serves HTTPS and members verify each
 * other by the same names.
 */
function tlsParts(app: AppModel, layout: PodLayout) {
  if (!app.database?.tls) return undefined;
  const cert = `${layout.tlsDir}/${TLS_FILES.cert}`;
  const key = `${layout.tlsDir}/${TLS_FILES.key}`;
  const ca = `${layout.caDir}/${TLS_FILES.ca}`;
  const verifyFull = { sslmode: 'verify-full', sslrootcert: ca };
  return {
    parameters: { ssl: 'on', ssl_cert_file: cert, ssl_key_file: key, ssl_ca_file: ca },
    restapi: { certfile: cert, keyfile: key },
    ctl: { cacert: ca },
    replication: verifyFull,
    rewind: verifyFull,
    hba: 'hostssl',
  };
}

export function patroniConfig(app: AppModel, shard: number, layout: PodLayout = POD_LAYOUT) {
  const db = app.database;
  if (!db) throw new Error('patroniConfig: the database tier is off');
  const tls = tlsParts(app, layout);
  const hba = tls?.hba ?? 'host';
  return {
    scope: shardName(app, shard),
    log: { level: 'INFO' },
    restapi: { listen: `0.0.0.0:${PATRONI_PORT}`, ...tls?.restapi },
    ...(tls ? { ctl: tls.ctl } : {}),
    kubernetes: {
      namespace: app.namespace,
      labels: { [DATABASE_LABEL]: app.name },
      scope_label: SCOPE_LABEL,
      role_label: ROLE_LABEL,
      // Patroni 3.x hard-codes these values; 4.x defaults the leader to "primary". Pinning
      // them keeps the Service selectors right whichever Patroni the image carries.
      leader_label_value: PRIMARY_ROLE,
      follower_label_value: REPLICA_ROLE,
      standby_leader_label_value: PRIMARY_ROLE,
      // ConfigMaps, not Endpoints: the Services select the primary by the role label, and
      // Patroni then needs no rights on Endpoints or Services.
      use_endpoints: false,
      ports: [{ name: 'postgresql', port: POSTGRES_PORT }],
    },
    bootstrap: {
      dcs: {
        ...timingsOf(db.failoverSeconds),
        // A replica more than 1 MiB behind is never promoted (async mode).
        maximum_lag_on_failover: 1048576,
        synchronous_mode: db.synchronous,
        // Not strict: with every replica gone the primary keeps accepting writes.
        synchronous_mode_strict: false,
        // A crashed synchronous primary fails over to its standby, an async one restarts.
        primary_start_timeout: primaryStartTimeout(db.synchronous),
        // An API server that does not answer (an upgrade, an outage) does not demote the
        // primary while every member answers it on its REST API; the members that hear from
        // it do not promote. The operator's release leaves such a primary alone (its standby
        // still streams: lease-break.ts).
        failsafe_mode: true,
        ignore_slots: ignoredSlots(app),
        postgresql: {
          use_pg_rewind: true,
          use_slots: true,
          parameters: {
            max_connections: 200,
            ...RESTART_PARAMETERS,
            hot_standby: 'on',
            wal_log_hints: 'on',
            max_wal_senders: 10,
            max_replication_slots: 10,
            wal_keep_size: '256MB',
            hot_standby_feedback: 'on',
            password_encryption: 'scram-sha-256',
            ...FAILOVER_PARAMETERS,
            ...slotSyncParameters(app),
            ...memoryParameters(app),
          },
        },
      },
      initdb: [{ encoding: 'UTF8' }, { locale: 'C.UTF-8' }, 'data-checksums'],
      post_bootstrap: `${layout.configDir}/${POST_BOOTSTRAP_FILE}`,
    },
    postgresql: {
      listen: `0.0.0.0:${POSTGRES_PORT}`,
      data_dir: DATA_DIR,
      bin_dir: binDir(db.version),
      pgpass: '/tmp/pgpass',
      authentication: {
        superuser: { username: SUPERUSER },
        replication: { username: REPLICATION_USER, ...tls?.replication },
        // Not the superuser: Patroni creates this role at bootstrap with EXECUTE on the file
        // functions pg_rewind calls; on clusters bootstrapped before, fence.py creates it.
        rewind: { username: REWIND_USER, ...tls?.rewind },
      },
      parameters: {
        unix_socket_directories: SOCKET_DIR,
        ...tls?.parameters,
        // Local, not in the DCS: a shard's members all archive to its stanza when primary.
        ...archiveParameters(app, shard, layout.configDir),
      },
      // Patroni's own superuser connections (its loop, post_bootstrap) over the socket: the
      // superuser has no TCP line in pg_hba.
      use_unix_socket: true,
      // New replicas clone at once instead of waiting for a spread checkpoint (minutes).
      basebackup: [{ checkpoint: 'fast' }],
      // A pg_rewind that fails part-way (its connection to the new primary cut, as a node
      // coming back did on kind) leaves the old primary's data directory unusable: Postgres
      // PANICs on its checkpoint record and Patroni restarts it in a loop until a human
      // re-clones. On a synchronous shard the new primary holds every acknowledged commit
      // (only a synchronous standby may take the lock), so the old data holds nothing to keep:
      // Patroni removes it and clones the member again. An asynchronous shard's old primary
      // may hold acknowledged writes no replica got: there, a human decides.
      ...(db.synchronous ? { remove_data_directory_on_rewind_failure: true } : {}),
      // Password auth everywhere; who may connect at all is the NetworkPolicy's job. The
      // superuser only over the pod's socket (an emptyDir of the Postgres container): its
      // password gives no way in from the network, loopback and sidecars included.
      pg_hba: [
        'local all all scram-sha-256',
        `host all ${SUPERUSER} 0.0.0.0/0 reject`,
        `host all ${SUPERUSER} ::/0 reject`,
        `${hba} replication ${REPLICATION_USER} 0.0.0.0/0 scram-sha-256`,
        `${hba} replication ${REPLICATION_USER} ::/0 scram-sha-256`,
        // The pooler's auth_query role: its client certificate, never a password.
        ...(db.pooler && db.tls ? poolerPgHba(hba) : []),
        `${hba} all all 0.0.0.0/0 scram-sha-256`,
        `${hba} all all ::/0 scram-sha-256`,
      ],
    },
    // No /dev/watchdog in a restricted pod: the pod's fence (fence.py) adds Patroni's
    // software watchdog on a pipe it reads (mode required) when it starts Patroni, so a
    // Patroni started without it (an older pod) runs as before.
    watchdog: { mode: 'off' },
  };
}

/** patroni.yml for one shard. */
export function renderPatroniConfig(
  app: AppModel,
  shard: number,
  layout: PodLayout = POD_LAYOUT,
): string {
  return yaml.dump(patroniConfig(app, shard, layout), {
    lineWidth: -1,
    noRefs: true,
    quotingType: "'",
  });
}

/** The pooler's auth SQL in the shard's ConfigMap: fence.py runs it whenever a member leads. */
export const POOLER_AUTH_FILE = 'pooler-auth.sql';

/**
 * With the pooler on, its auth role and lookup function for fence.py to make on a database
 * bootstrapped before the pooler was turned on (post_bootstrap makes them on a new one).
 */
export function renderPoolerAuthFile(app: AppModel): string | undefined {
  return app.database?.pooler && app.database.tls ? poolerAuthSql(appDatabaseName(app)) : undefined;
}

/**
 * Runs once, on the first primary, after initdb: the app's role and database, the
 * monitoring role and the bucket function. Passwords come from the environment through
 * psql's \getenv (never argv), and a failing statement is not logged with its text.
 */
export function renderPostBootstrap(app: AppModel): string {
  const db = appDatabaseName(app);
  return [
    '#!/bin/sh',
    '# Patroni passes a connection string as $1 (and PGPASSFILE for the superuser).',
    'set -eu',
    'psql -X -v ON_ERROR_STOP=1 -d "$1" <<\'SQL\'',
    "SET log_min_error_statement = 'panic';",
    `\\getenv app_password ${ENV.appPassword}`,
    `\\getenv monitor_password ${ENV.monitorPassword}`,
    // Quoted: an app named user, order or select is a keyword as an identifier.
    `CREATE ROLE "${db}" LOGIN PASSWORD :'app_password';`,
    `CREATE ROLE ${MONITOR_USER} LOGIN PASSWORD :'monitor_password' IN ROLE pg_monitor;`,
    `CREATE DATABASE "${db}" OWNER "${db}";`,
    `\\connect "${db}"`,
    bucketFunctionSql(),
    // A database bootstrapped with the pooler on: its auth role and lookup function.
    ...(app.database?.pooler && app.database.tls ? [poolerAuthSql(db)] : []),
    'SQL',
    '',
  ].join('\n');
}

/**
 * Patroni reads bootstrap.dcs only when a cluster is created; afterwards the dynamic
 * configuration lives in the DCS, on the `config` annotation of the ConfigMap
 * <scope>-config, and Patroni applies changes written there on its next loop. So the
 * reconciler keeps the keys the spec controls in sync through this pure function.
 */
export const DCS_CONFIG_ANNOTATION = 'config';
export const dcsConfigMapName = (app: AppModel, shard: number): string =>
  `${shardName(app, shard)}-config`;

type Json = Record<string, unknown>;
const obj = (v: unknown): Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {};

/**
 * The new value of the `config` annotation when the live dynamic config disagrees with the
 * spec (synchronous mode and the crash handling that goes with it, failsafe mode, timings,
 * memory, failover, slot sync and restart parameters, the ignored slots), else undefined.
 * Other keys, including ones an admin set with patronictl, are kept as they are (an admin's
 * ignore_slots entries too: ours are added to them).
 */
export function dcsConfigUpdate(
  app: AppModel,
  shard: number,
  live: string | undefined,
): string | undefined {
  if (!app.database || live === undefined) return undefined;
  let current: Json;
  try {
    current = obj(JSON.parse(live));
  } catch {
    return undefined; // not ours to repair; Patroni rewrites it
  }
  const want = patroniConfig(app, shard).bootstrap.dcs;
  const pg = obj(current['postgresql']);
  const params = obj(pg['parameters']);
  const memory = {
    ...RESTART_PARAMETERS,
    ...FAILOVER_PARAMETERS,
    ...slotSyncParameters(app),
    ...memoryParameters(app),
  };
  const ignored = Array.isArray(current['ignore_slots'])
    ? (current['ignore_slots'] as unknown[])
    : [];
  const missing = ignoredSlots(app).filter(
    (want) => !ignored.some((have) => JSON.stringify(have) === JSON.stringify(want)),
  );
  const modes = {
    synchronous_mode: want.synchronous_mode,
    synchronous_mode_strict: want.synchronous_mode_strict,
    primary_start_timeout: want.primary_start_timeout,
    failsafe_mode: want.failsafe_mode,
  };
  const timings = timingsOf(app.database.failoverSeconds);
  const next = {
    ...current,
    ...modes,
    ...timings,
    ...(missing.length > 0 ? { ignore_slots: [...ignored, ...missing] } : {}),
    postgresql: { ...pg, parameters: { ...params, ...memory } },
  };
  const same =
    missing.length === 0 &&
    Object.entries(modes).every(([k, v]) => current[k] === v) &&
    Object.entries(timings).every(([k, v]) => current[k] === v) &&
    Object.entries(memory).every(([k, v]) => params[k] === v);
  return same ? undefined : JSON.stringify(next);
}

/**
 * Whether the live dynamic config (the `config` annotation) lags RESTART_PARAMETERS: a
 * member restarted now would come back with the old values and, its pod being up to date,
 * never be restarted again. Undefined (not bootstrapped yet) or unreadable: no lag known.
 */
export function restartParametersLag(live: string | undefined): boolean {
  if (live === undefined) return false;
  let params: Json;
  try {
    params = obj(obj(obj(JSON.parse(live))['postgresql'])['parameters']);
  } catch {
    return false;
  }
  return Object.entries(RESTART_PARAMETERS).some(([k, v]) => params[k] !== v);
}
