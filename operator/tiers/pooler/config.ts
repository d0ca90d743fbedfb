// PgBouncer's files for one shard, and the SQL that lets it look up the app role's SCRAM
// secret. Pure text renderers: the pooler tier puts the files in a ConfigMap, the images
// test runs the real PgBouncer on them.
//
// Auth without any password file: clients log in with SCRAM-SHA-256 as the app role;
// PgBouncer fetches that role's SCRAM secret through auth_query, as POOLER_AUTH_ROLE, and
// logs in to Postgres with the client's own proof (SCRAM pass-through: the secret it holds
// is the server's, same salt and iterations). POOLER_AUTH_ROLE itself has no password: it
// logs in with a client certificate (pg_hba `cert`), and may only read the app role's
// secret, through a SECURITY DEFINER function. The exporter reads the admin console as user
// `pgbouncer` over the pod's Unix socket: PgBouncer admits that user without a password only
// from its own uid (the exporter container runs as 999 too), never over TCP.
import type { PoolerModel } from '../../api/model.ts';

/** The role PgBouncer runs auth_query as. A hyphen: no app role can be named so. */
export const POOLER_AUTH_ROLE = 'scalable-pooler';
/** Schema of the lookup function, in the app's database. */
export const POOLER_SCHEMA = 'scalable_pooler';
/** The admin console's user for a client of PgBouncer's own uid on the Unix socket. */
export const POOLER_ADMIN_USER = 'pgbouncer';

export const POOLER_PORT = 5432;
export const POOLER_EXPORTER_PORT = 9127;
export const POOLER_CONFIG_DIR = '/etc/pgbouncer';
export const POOLER_INI = 'pgbouncer.ini';
export const POOLER_HBA = 'hba.conf';
/** PgBouncer's Unix socket, in an emptyDir the exporter shares. */
export const POOLER_SOCKET_DIR = '/var/run/postgresql';
/**
 * Protocol-level prepared statements PgBouncer tracks per server connection in transaction
 * mode (node-postgres names its statements): enough for an app's distinct queries.
 */
export const MAX_PREPARED_STATEMENTS = 200;

/** Where the pooler's files are and where the primary is: the pod's, or a test's. */
export interface PoolerLayout {
  /** The primary: the shard's -rw Service name, which follows the leader. */
  readonly serverHost: string;
  readonly serverPort: number;
  readonly listenPort: number;
  /** Key pair served to clients. */
  readonly clientCert: string;
  readonly clientKey: string;
  /** Key pair PgBouncer presents to Postgres (CN = POOLER_AUTH_ROLE). */
  readonly serverCert: string;
  readonly serverKey: string;
  /** The database CA: verifies Postgres (verify-full). */
  readonly ca: string;
}

const quoteIni = (v: string): string => {
  if (/[\n\r]/.test(v)) throw new Error(`pgbouncer.ini: a value holds a line break: ${v}`);
  return v;
};
/** A libpq-style connection value, single-quoted (the [databases] section's syntax). */
const connValue = (v: string): string => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

export function renderPgbouncerIni(
  pooler: PoolerModel,
  database: string,
  layout: PoolerLayout,
): string {
  const db = [
    `host=${connValue(layout.serverHost)}`,
    `port=${layout.serverPort}`,
    `dbname=${connValue(database)}`,
  ].join(' ');
  const settings: Array<[string, string | number]> = [
    ['listen_addr', '*'],
    ['listen_port', layout.listenPort],
    ['unix_socket_dir', POOLER_SOCKET_DIR],
    // In the pod's own emptyDir; the exporter reads it for process metrics.
    ['pidfile', `${POOLER_SOCKET_DIR}/pgbouncer.pid`],
    ['pool_mode', pooler.mode],
    ['max_client_conn', pooler.maxClientConnections],
    ['default_pool_size', pooler.defaultPoolSize],
    ['min_pool_size', pooler.minPoolSize],
    ['reserve_pool_size', pooler.reservePoolSize],
    ['reserve_pool_timeout', 5],
    // The database's only pool is the app role's; the auth pool is POOLER_AUTH_ROLE's.
    ['max_db_connections', pooler.defaultPoolSize + pooler.reservePoolSize + 1],
    ['max_prepared_statements', MAX_PREPARED_STATEMENTS],
    ['auth_type', 'hba'],
    ['auth_hba_file', `${POOLER_CONFIG_DIR}/${POOLER_HBA}`],
    ['auth_user', POOLER_AUTH_ROLE],
    ['auth_query', `SELECT usename, passwd FROM ${POOLER_SCHEMA}.lookup($1)`],
    // Clients: TLS only, the pooler's certificate from the app's CA.
    ['client_tls_sslmode', 'require'],
    ['client_tls_cert_file', layout.clientCert],
    ['client_tls_key_file', layout.clientKey],
    // Loaded even when client certificates are not asked for (require, not verify-*).
    ['client_tls_ca_file', layout.ca],
    ['client_tls_protocols', 'tlsv1.2,tlsv1.3'],
    // Postgres: TLS, its certificate verified against the database CA for the -rw name.
    ['server_tls_sslmode', 'verify-full'],
    ['server_tls_ca_file', layout.ca],
    ['server_tls_cert_file', layout.serverCert],
    ['server_tls_key_file', layout.serverKey],
    ['server_tls_protocols', 'tlsv1.2,tlsv1.3'],
    // A failover: connections to the old primary die with it (Patroni stops Postgres when
    // it demotes); new ones go to the -rw name again. Check idle ones before reuse.
    ['server_check_delay', 10],
    ['server_connect_timeout', 5],
    ['server_login_retry', 1],
    ['dns_max_ttl', 5],
    // A primary whose node died sends nothing, not even a reset: a server connection waiting
    // on it (a transaction in flight) would hang for the kernel's two hours. Probes after
    // 10 s of silence, 3 more 3 s apart, and unacknowledged data for 20 s, let it go; its
    // client gets an error and its next transaction goes to the -rw Service again.
    ['tcp_keepalive', 1],
    ['tcp_keepidle', 10],
    ['tcp_keepintvl', 3],
    ['tcp_keepcnt', 3],
    ['tcp_user_timeout', 20_000],
    ['ignore_startup_parameters', 'extra_float_digits,options'],
    ['log_connections', 0],
    ['log_disconnections', 0],
    ['logfile', ''],
  ];
  return [
    '[databases]',
    `${database} = ${db}`,
    '',
    '[pgbouncer]',
    ...settings.map(([k, v]) => `${k} = ${quoteIni(String(v))}`),
    '',
  ].join('\n');
}

/**
 * PgBouncer's hba: SCRAM over TLS for every TCP client; nothing else gets in (plain TCP and
 * other Unix socket users included).
 */
export function renderPgbouncerHba(): string {
  return ['hostssl all all 0.0.0.0/0 scram-sha-256', 'hostssl all all ::/0 scram-sha-256', ''].join(
    '\n',
  );
}

/** Postgres' pg_hba lines for the auth role: a client certificate, nothing else. */
export const poolerPgHba = (hba: string): string[] => [
  `${hba} all ${POOLER_AUTH_ROLE} 0.0.0.0/0 cert`,
  `${hba} all ${POOLER_AUTH_ROLE} ::/0 cert`,
];

/**
 * In the app's database, as a superuser: the auth role (no password) and the only thing it
 * may do, read the SCRAM secret of `appRole`. Idempotent, so it also runs on a database
 * made before the pooler was turned on.
 */
export function poolerAuthSql(appRole: string): string {
  const role = `"${POOLER_AUTH_ROLE}"`;
  const app = appRole.replace(/'/g, "''");
  return [
    'DO $$ BEGIN',
    `  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${POOLER_AUTH_ROLE}') THEN`,
    `    CREATE ROLE ${role} LOGIN NOINHERIT;`,
    '  END IF;',
    'END $$;',
    `CREATE SCHEMA IF NOT EXISTS ${POOLER_SCHEMA};`,
    `REVOKE ALL ON SCHEMA ${POOLER_SCHEMA} FROM PUBLIC;`,
    `GRANT USAGE ON SCHEMA ${POOLER_SCHEMA} TO ${role};`,
    // A set: no row (not a row of NULLs) for any other name.
    `CREATE OR REPLACE FUNCTION ${POOLER_SCHEMA}.lookup(i_username text)`,
    '  RETURNS TABLE (usename name, passwd text)',
    '  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $fn$',
    '    SELECT rolname, rolpassword::text FROM pg_authid',
    `    WHERE rolname = i_username AND rolname = '${app}' AND rolcanlogin AND NOT rolsuper`,
    '  $fn$;',
    `REVOKE ALL ON FUNCTION ${POOLER_SCHEMA}.lookup(text) FROM PUBLIC;`,
    `GRANT EXECUTE ON FUNCTION ${POOLER_SCHEMA}.lookup(text) TO ${role};`,
    '',
  ].join('\n');
}
