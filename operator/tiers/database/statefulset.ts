// One StatefulSet per shard: replicasPerShard + 1 pods of Patroni-managed Postgres plus a
// postgres_exporter sidecar. Patroni decides who is primary; Kubernetes only keeps the pods.
import { k8s } from '../shared/k8s.ts';
import type { Chart } from 'cdk8s';
import type { AppModel } from '../../api/model.ts';
import { metadataOf } from '../shared/meta.ts';
import {
  restrictedContainerSecurityContext,
  restrictedPodSecurityContext,
  memberSpreadOf,
} from '../shared/pod-security.ts';
import { ephemeralStorage, quantity, resourcesOf } from '../shared/quantity.ts';
import { CA_FILE, TLS_FILES, serverTlsMounts, serverTlsVolumes } from '../shared/tls/objects.ts';
import {
  AUTH_KEYS,
  EXPORTER_PORT,
  MONITOR_USER,
  PATRONI_PORT,
  POSTGRES_PORT,
  REWIND_PASSWORD_KEY,
  REWIND_USER,
  SUPERUSER,
  authSecretName,
  appSecretName,
  APP_PASSWORD_KEY,
  appDatabaseName,
  headlessServiceName,
  patroniConfigMapName,
  rewindSecretName,
  shardName,
  shardPodLabels,
  shardSelector,
  tierName,
} from './names.ts';
import { FENCE_ANNOTATION, FENCE_MARGIN_SECONDS } from './lease-break.ts';
import { FENCE_FILE, fenceArgs } from './fence.ts';
import { backupCaMounts, backupCaVolumes, backupEnv } from './backup.ts';
import {
  DATA_DIR,
  DATA_MOUNT,
  ENV,
  PATRONI_CONFIG_FILE,
  POD_LAYOUT,
  POOLER_AUTH_FILE,
  SOCKET_DIR,
  binDir,
  renderPoolerAuthFile,
  restartParametersText,
} from './patroni-config.ts';

/** Pod annotation: the restart-only Postgres parameters the members run with. */
export const RESTART_ANNOTATION = 'scalable.dev/postgres-restart';

export const REWIND_PASSWORD_ENV = ENV.rewindPassword;

/** The first word of the check's message; the status recognises it. */
export const MAJOR_VERSION_MISMATCH = 'MajorVersionMismatch';

/** The official image runs Postgres as uid/gid 999 (user postgres). */
export const POSTGRES_UID = 999;
export const RESTAPI_USER = 'patroni';

const secretEnv = (name: string, secret: string, key: string) => ({
  name,
  valueFrom: { secretKeyRef: { name: secret, key } },
});

/**
 * On SIGTERM Patroni stops Postgres with a shutdown checkpoint, which writes every dirty
 * buffer (up to shared_buffers, a quarter of the memory limit) and waits for replicas to
 * receive the last WAL. A kill before it ends means crash recovery on the next start and,
 * for a primary, a failover instead of a clean hand-over. 30 s is too short for a few GiB
 * of dirty buffers on a slow volume; 300 s (as Zalando's postgres-operator) covers it and
 * costs nothing when shutdown is quick: the kubelet stops waiting once the process exits.
 */
export const SHUTDOWN_GRACE_SECONDS = 300;

/**
 * The ServiceAccount token, as the kubelet would mount it for the whole pod (a projected,
 * expiring token it rotates; the cluster CA; the namespace), but into Patroni's container
 * only. Patroni reads the token file again every minute, so rotation needs nothing else.
 */
export const API_ACCESS_VOLUME = 'kube-api-access';
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
const apiAccessVolume = {
  name: API_ACCESS_VOLUME,
  projected: {
    defaultMode: 0o444,
    sources: [
      { serviceAccountToken: { path: 'token', expirationSeconds: 3607 } },
      { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
      {
        downwardApi: {
          items: [
            { path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } },
          ],
        },
      },
    ],
  },
};

/** The init container that refuses a data directory of another major version. */
export const DATA_VERSION_CHECK = 'check-data-version';

export function postgresImage(app: AppModel): string {
  return app.images.postgres.replace('{version}', app.database?.version ?? '');
}

function patroniEnv(app: AppModel, shard: number) {
  const auth = authSecretName(app);
  // With TLS, members reach each other's REST API and Postgres (replication, pg_rewind,
  // verify-full) by a name the certificate carries.
  const host = app.database?.tls
    ? `$(${ENV.name}).${headlessServiceName(app, shard)}.${app.namespace}.svc`
    : '$(POD_IP)';
  return [
    { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    { name: ENV.name, valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: ENV.podIp, value: '$(POD_IP)' },
    { name: ENV.postgresConnect, value: `${host}:${POSTGRES_PORT}` },
    { name: ENV.restapiConnect, value: `${host}:${PATRONI_PORT}` },
    secretEnv(ENV.superuserPassword, auth, AUTH_KEYS.superuser),
    secretEnv(ENV.replicationPassword, auth, AUTH_KEYS.replication),
    // The rewind role's (patroni.yml): without it Patroni cannot check a returning member
    // against the new leader after a switchover, nor pg_rewind it. fence.py also reads it to
    // create the role on clusters bootstrapped before it existed.
    secretEnv(REWIND_PASSWORD_ENV, rewindSecretName(app), REWIND_PASSWORD_KEY),
    { name: ENV.restapiUsername, value: RESTAPI_USER },
    secretEnv(ENV.restapiPassword, auth, AUTH_KEYS.restapi),
    // Read once by post-bootstrap.sh on the first primary.
    secretEnv(ENV.appPassword, appSecretName(app), APP_PASSWORD_KEY),
    secretEnv(ENV.monitorPassword, auth, AUTH_KEYS.monitor),
  ];
}

/**
 * Prefer pods of one shard on different nodes and zones: a score on top of the spread
 * constraints, which insist on distinct nodes (memberSpreadOf).
 */
function antiAffinity(selector: Record<string, string>) {
  return {
    podAntiAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [
        ['kubernetes.io/hostname', 100],
        ['topology.kubernetes.io/zone', 50],
      ].map(([topologyKey, weight]) => ({
        weight: weight as number,
        podAffinityTerm: {
          topologyKey: topologyKey as string,
          labelSelector: { matchLabels: selector },
        },
      })),
    },
  };
}

export function shardStatefulSet(chart: Chart, app: AppModel, shard: number): void {
  const db = app.database;
  if (!db) return;
  const name = shardName(app, shard);
  const selector = shardSelector(app, shard);
  const spread = memberSpreadOf(app, selector, db.replicasPerShard + 1);
  new k8s.KubeStatefulSet(chart, `sts-${shard}`, {
    metadata: metadataOf(app, 'database', name, 'postgres'),
    spec: {
      replicas: db.replicasPerShard + 1,
      serviceName: headlessServiceName(app, shard),
      selector: { matchLabels: selector },
      // Patroni orders bootstrap itself (replicas wait for a leader), so start pods together.
      podManagementPolicy: 'Parallel',
      // The operator restarts pods itself, replicas first and the primary after a
      // switchover (rollout.ts); the controller's ordinal order ignores where the primary is.
      updateStrategy: { type: 'OnDelete' },
      persistentVolumeClaimRetentionPolicy: {
        // Volumes never go with the StatefulSet (a pruned or switched-off database keeps its
        // data); deletionPolicy: Delete is carried out by the app's finalizer (cleanup.ts).
        whenDeleted: 'Retain',
        whenScaled: 'Retain',
      },
      template: {
        metadata: {
          labels: shardPodLabels(app, shard),
          annotations: {
            // The operator releases a silent primary's lock only where its pod fences
            // (lease-break.ts), and reckons with this margin.
            [FENCE_ANNOTATION]: String(FENCE_MARGIN_SECONDS),
            // The parameters Postgres must have been started with: a change is a new
            // revision, which the operator rolls replicas first, then by a switchover
            // (rollout.ts), so no primary restarts in place.
            [RESTART_ANNOTATION]: restartParametersText(),
          },
        },
        spec: {
          serviceAccountName: tierName(app),
          // Patroni's DCS is the Kubernetes API and needs the token; the exporter sidecar
          // (reachable by Prometheus) must not hold it: mounted into Patroni's container only.
          automountServiceAccountToken: false,
          securityContext: restrictedPodSecurityContext(POSTGRES_UID),
          enableServiceLinks: false,
          terminationGracePeriodSeconds: SHUTDOWN_GRACE_SECONDS,
          affinity: antiAffinity(selector),
          topologySpreadConstraints: spread,
          initContainers: [dataVersionCheck(app, db)],
          containers: [patroniContainer(app, db, shard), exporterContainer(app)],
          volumes: [
            ...(db.tls ? serverTlsVolumes(name) : []),
            {
              name: 'config',
              configMap: { name: patroniConfigMapName(app, shard), defaultMode: 0o555 },
            },
            { name: 'tmp', emptyDir: { sizeLimit: quantity('64Mi') } },
            { name: 'socket', emptyDir: { sizeLimit: quantity('1Mi') } },
            { name: 'shm', emptyDir: { medium: 'Memory', sizeLimit: quantity('256Mi') } },
            apiAccessVolume,
            ...backupCaVolumes(app),
          ],
        },
      },
      volumeClaimTemplates: [
        {
          metadata: { name: 'data', labels: shardSelector(app, shard) },
          spec: {
            accessModes: ['ReadWriteOnce'],
            ...(db.storage.storageClassName
              ? { storageClassName: db.storage.storageClassName }
              : {}),
            resources: { requests: { storage: quantity(db.storage.size) } },
          },
        },
      ],
    },
  });
}

/**
 * Postgres refuses a data directory of another major, and Patroni then restarts it in a
 * loop whose reason is buried in its log. This check runs first and fails with one line
 * (the termination message, FallbackToLogsOnError) that the status turns into
 * MajorVersionMismatch. The image's major comes from its postgres binary, not the spec,
 * so an image override is checked too. An empty volume (first start) passes.
 */
function dataVersionCheck(app: AppModel, db: NonNullable<AppModel['database']>) {
  return {
    name: DATA_VERSION_CHECK,
    image: postgresImage(app),
    command: ['sh', '-c', dataVersionScript()],
    env: [
      { name: 'PGDATA', value: DATA_DIR },
      { name: 'PG_BIN', value: binDir(db.version) },
    ],
    terminationMessagePolicy: 'FallbackToLogsOnError',
    resources: {
      requests: { cpu: quantity('10m'), memory: quantity('16Mi'), ...ephemeralStorage('16Mi') },
      limits: { memory: quantity('64Mi') },
    },
    securityContext: restrictedContainerSecurityContext(),
    volumeMounts: [{ name: 'data', mountPath: DATA_MOUNT, readOnly: true }],
  };
}

/** The check's shell script; the engine tests run it against real data directories. */
export function dataVersionScript(): string {
  return [
    'set -eu',
    '[ -f "$PGDATA/PG_VERSION" ] || exit 0',
    'data=$(cat "$PGDATA/PG_VERSION")',
    'image=$("$PG_BIN/postgres" -V 2>/dev/null | sed -n \'s/^postgres (PostgreSQL) \\([0-9]*\\).*/\\1/p\') || true',
    '[ "$data" = "$image" ] && exit 0',
    `echo "${MAJOR_VERSION_MISMATCH}: the data directory was initialised by PostgreSQL $data, this image runs PostgreSQL \${image:-(none at $PG_BIN)}; Postgres was not started and the data is untouched. Run the image of PostgreSQL $data (database.version), or upgrade the data with pg_upgrade first." >&2`,
    'exit 1',
  ].join('\n');
}

/** How often the entrypoint looks for a renewed certificate (the kubelet syncs ~1 min). */
export const TLS_RELOAD_SECONDS = 30;

/** The python3 of the image (Patroni's) runs fence.py. */
export const PYTHON = 'python3';

function patroniContainer(app: AppModel, db: NonNullable<AppModel['database']>, shard: number) {
  // The kubelet's HTTPS probes do not verify the certificate; they only need the scheme.
  const scheme = db.tls ? { scheme: 'HTTPS' } : {};
  const configFile = `${POD_LAYOUT.configDir}/${PATRONI_CONFIG_FILE}`;
  return {
    name: 'postgres',
    image: postgresImage(app),
    // fence.py starts Patroni, fences Postgres when Patroni stops renewing its lock, and
    // passes on SIGTERM; it exits with Patroni's status.
    command: [PYTHON, `${POD_LAYOUT.configDir}/${FENCE_FILE}`],
    args: fenceArgs({
      config: configFile,
      pgdata: DATA_DIR,
      margin: FENCE_MARGIN_SECONDS,
      superuser: SUPERUSER,
      rewindUser: REWIND_USER,
      // The pooler's auth role, on databases bootstrapped before the pooler was turned on.
      ...(renderPoolerAuthFile(app) === undefined
        ? {}
        : {
            poolerSql: `${POD_LAYOUT.configDir}/${POOLER_AUTH_FILE}`,
            appDatabase: appDatabaseName(app),
          }),
      ...(db.tls
        ? { cert: `${POD_LAYOUT.tlsDir}/${TLS_FILES.cert}`, every: TLS_RELOAD_SECONDS }
        : {}),
    }),
    ports: [
      { name: 'postgresql', containerPort: POSTGRES_PORT, protocol: 'TCP' },
      { name: 'patroni', containerPort: PATRONI_PORT, protocol: 'TCP' },
    ],
    env: [...patroniEnv(app, shard), ...backupEnv(app)],
    // /tmp (up to 64Mi), logs and the writable layer; the data is on its volume.
    resources: resourcesOf(db.resources, '256Mi'),
    // /readiness: 200 on the leader, and on a replica whose Postgres is running.
    readinessProbe: {
      httpGet: { path: '/readiness', port: k8s.IntOrString.fromString('patroni'), ...scheme },
      periodSeconds: 5,
      failureThreshold: 3,
    },
    // /liveness: Patroni's loop is alive. Generous: a restart during recovery costs more.
    livenessProbe: {
      httpGet: { path: '/liveness', port: k8s.IntOrString.fromString('patroni'), ...scheme },
      initialDelaySeconds: 30,
      periodSeconds: 10,
      failureThreshold: 6,
    },
    securityContext: restrictedContainerSecurityContext(),
    volumeMounts: [
      { name: 'data', mountPath: DATA_MOUNT },
      { name: 'config', mountPath: POD_LAYOUT.configDir, readOnly: true },
      { name: 'tmp', mountPath: '/tmp' },
      { name: 'socket', mountPath: SOCKET_DIR },
      { name: 'shm', mountPath: '/dev/shm' },
      ...(db.tls ? serverTlsMounts : []),
      ...backupCaMounts(app),
      { name: API_ACCESS_VOLUME, mountPath: SERVICE_ACCOUNT_DIR, readOnly: true },
    ],
  };
}

/** lib/pq's URI: with TLS, verify the server as `localhost` (its certificate names it). */
export function exporterDataSource(app: AppModel, caFile = CA_FILE): string {
  const ssl = app.database?.tls ? `sslmode=verify-full&sslrootcert=${caFile}` : 'sslmode=disable';
  return `localhost:${POSTGRES_PORT}/postgres?${ssl}`;
}

function exporterContainer(app: AppModel) {
  return {
    name: 'exporter',
    image: app.images.postgresExporter,
    ports: [{ name: 'metrics', containerPort: EXPORTER_PORT, protocol: 'TCP' }],
    env: [
      { name: 'DATA_SOURCE_URI', value: exporterDataSource(app) },
      { name: 'DATA_SOURCE_USER', value: MONITOR_USER },
      secretEnv('DATA_SOURCE_PASS', authSecretName(app), AUTH_KEYS.monitor),
    ],
    resources: {
      requests: { cpu: quantity('10m'), memory: quantity('32Mi'), ...ephemeralStorage('16Mi') },
      limits: { memory: quantity('128Mi') },
    },
    readinessProbe: {
      httpGet: { path: '/', port: k8s.IntOrString.fromString('metrics') },
      periodSeconds: 10,
    },
    securityContext: restrictedContainerSecurityContext(),
    ...(app.database?.tls
      ? { volumeMounts: serverTlsMounts.filter((m) => m.name === 'tls-ca') }
      : {}),
  };
}
