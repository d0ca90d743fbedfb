// pgBackRest for database.backup (issue 28), rendered from the model (pure). One repository
// per app (repo1, S3) and one stanza per shard, named as the shard (<app>-db-<i>): each
// shard is a Postgres cluster of its own with its own system identifier and timelines.
// - The configuration file goes into the shard's ConfigMap beside patroni.yml; the store's
//   keys never do: pgBackRest reads them from PGBACKREST_REPO1_S3_KEY{,_SECRET}, which the
//   pod takes from the credentials Secret.
// - WAL: archive_mode 'on' (not 'always') in Patroni's local parameters, so whichever member
//   is primary archives and replicas do not, across failovers and switchovers alike. A
//   promoted member archives its new timeline's history file and segments; pgBackRest keeps
//   each timeline apart, so the archive has no gap across the change of primary.
import type { AppModel } from '../../api/model.ts';
import { BACKUP_CREDENTIAL_KEYS } from '../../api/schema.ts';
import { POSTGRES_PORT, SUPERUSER, shardName } from './names.ts';

/** The file in the shard's ConfigMap (mounted at the Patroni config dir). */
export const PGBACKREST_CONFIG_FILE = 'pgbackrest.conf';
/** Where the store's CA is mounted when database.backup.s3.ca is set. */
export const BACKUP_CA_DIR = '/etc/pgbackrest/ca';
export const BACKUP_CA_FILE = 'ca.crt';
export const BACKUP_CA_VOLUME = 'backup-ca';

/** pgBackRest's own environment names for repo1's S3 keys (its PGBACKREST_<OPTION> form). */
export const BACKUP_ENV = {
  accessKeyId: 'PGBACKREST_REPO1_S3_KEY',
  secretAccessKey: 'PGBACKREST_REPO1_S3_KEY_SECRET',
} as const;

/** Full backups kept when the app sets neither a count nor days. */
export const DEFAULT_FULL_BACKUPS = 2;
/** A quiet primary still closes a segment this often, so the archive lags by at most this. */
export const ARCHIVE_TIMEOUT = '60s';

export type BackupModel = NonNullable<NonNullable<AppModel['database']>['backup']>;

export const backupOf = (app: AppModel): BackupModel | undefined => app.database?.backup;

/** The stanza of one shard: the shard's name, unique per namespace. */
export const stanzaName = (app: AppModel, shard: number): string => shardName(app, shard);

/** The repository's path in the bucket; by default one per namespace and app. */
export const repoPath = (app: AppModel, b: BackupModel): string =>
  (b.s3.path ?? `/${app.namespace}/${app.name}`).replace(/(.)\/+$/, '$1');

/** https://host[:port][/] -> host and port (443 unless given). */
export function endpointOf(b: BackupModel): { host: string; port: number } {
  const m = /^https:\/\/([^/:]+)(?::(\d+))?\/?$/.exec(b.s3.endpoint);
  if (!m?.[1]) throw new Error(`database.backup.s3.endpoint: not https://host[:port]`);
  return { host: m[1], port: m[2] ? Number(m[2]) : 443 };
}

/** Where pgBackRest finds the cluster and the store, as the pod lays them out. */
export interface BackupLayout {
  /** Mount point of the shard's ConfigMap (pgbackrest.conf beside patroni.yml). */
  readonly configDir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  /** The CA file of a private endpoint (database.backup.s3.ca). */
  readonly caFile: string;
  /** Lock files: a writable directory of the pod's own (emptyDir /tmp). */
  readonly lockDir: string;
}

function retentionLines(b: BackupModel): string[] {
  const { fullBackups, days } = b.retention;
  return days !== undefined
    ? ['repo1-retention-full-type=time', `repo1-retention-full=${days}`]
    : [
        'repo1-retention-full-type=count',
        `repo1-retention-full=${fullBackups ?? DEFAULT_FULL_BACKUPS}`,
      ];
}

/** pgbackrest.conf for one shard: [global] the store, [<stanza>] the shard's Postgres. */
export function renderPgBackRestConfig(app: AppModel, shard: number, layout: BackupLayout): string {
  const b = backupOf(app);
  if (!b) throw new Error('renderPgBackRestConfig: database.backup is not set');
  const { host, port } = endpointOf(b);
  return [
    '# Rendered by scalable-operator from database.backup. The S3 keys come from the',
    `# environment (${BACKUP_ENV.accessKeyId}, ${BACKUP_ENV.secretAccessKey}).`,
    '[global]',
    'repo1-type=s3',
    `repo1-s3-endpoint=${host}`,
    `repo1-storage-port=${port}`,
    `repo1-s3-bucket=${b.s3.bucket}`,
    `repo1-s3-region=${b.s3.region}`,
    `repo1-s3-uri-style=${b.s3.uriStyle}`,
    `repo1-path=${repoPath(app, b)}`,
    // Never talk to the store without verifying it; a private endpoint's CA when given.
    'repo1-storage-verify-tls=y',
    ...(b.s3.ca ? [`repo1-storage-ca-file=${layout.caFile}`] : []),
    ...retentionLines(b),
    // zstd: a fraction of gzip's CPU at a similar ratio, on the primary's archive path.
    'compress-type=zst',
    // Base backups start with an immediate checkpoint instead of waiting for a spread one.
    'start-fast=y',
    // The pod's root filesystem is read-only: warnings and errors to stderr (Postgres logs
    // archive_command's), no log file; locks in the pod's /tmp.
    'log-level-file=off',
    `lock-path=${layout.lockDir}`,
    '',
    `[${stanzaName(app, shard)}]`,
    `pg1-path=${layout.dataDir}`,
    `pg1-socket-path=${layout.socketDir}`,
    `pg1-port=${POSTGRES_PORT}`,
    `pg1-user=${SUPERUSER}`,
    '',
  ].join('\n');
}

/** The command pgBackRest is run with on a member: its config file and the shard's stanza. */
export function pgbackrestArgs(app: AppModel, shard: number, configDir: string): string[] {
  return [`--config=${configDir}/${PGBACKREST_CONFIG_FILE}`, `--stanza=${stanzaName(app, shard)}`];
}

/**
 * Postgres parameters of a shard with backups: Patroni's local parameters, so they reach
 * every member and only the primary acts on them (archive_mode 'on'). Empty without backups.
 */
export function archiveParameters(
  app: AppModel,
  shard: number,
  configDir: string,
): Record<string, string> {
  if (!backupOf(app)) return {};
  return {
    archive_mode: 'on',
    archive_command: [
      'pgbackrest',
      ...pgbackrestArgs(app, shard, configDir),
      'archive-push',
      '"%p"',
    ].join(' '),
    archive_timeout: ARCHIVE_TIMEOUT,
  };
}

/** The store's keys for the postgres container, from the app's Secret. */
export function backupEnv(app: AppModel) {
  const b = backupOf(app);
  if (!b) return [];
  const ref = (key: string) => ({
    secretKeyRef: { name: b.s3.credentialsSecret, key },
  });
  return [
    { name: BACKUP_ENV.accessKeyId, valueFrom: ref(BACKUP_CREDENTIAL_KEYS.accessKeyId) },
    { name: BACKUP_ENV.secretAccessKey, valueFrom: ref(BACKUP_CREDENTIAL_KEYS.secretAccessKey) },
  ];
}

/** The CA volume (one key of the Secret or ConfigMap the app names), if any. */
export function backupCaVolumes(app: AppModel) {
  const ca = backupOf(app)?.s3.ca;
  if (!ca) return [];
  const items = [{ key: ca.key, path: BACKUP_CA_FILE }];
  return [
    ca.secretName
      ? { name: BACKUP_CA_VOLUME, secret: { secretName: ca.secretName, items, defaultMode: 0o444 } }
      : {
          name: BACKUP_CA_VOLUME,
          configMap: { name: ca.configMapName ?? '', items, defaultMode: 0o444 },
        },
  ];
}

export function backupCaMounts(app: AppModel) {
  return backupOf(app)?.s3.ca
    ? [{ name: BACKUP_CA_VOLUME, mountPath: BACKUP_CA_DIR, readOnly: true }]
    : [];
}

/** The store's port, which the database pods' NetworkPolicy lets them reach. */
export function backupEgressPort(app: AppModel): number | undefined {
  const b = backupOf(app);
  return b ? endpointOf(b).port : undefined;
}
