// Pod pieces shared by the cache and the session Redis: the redis container (started by
// start-redis.sh from the ConfigMap), the redis_exporter sidecar, volumes, the
// NetworkPolicy. Pod Security "restricted" everywhere; the redis image's user is 999.
import { createHash } from 'node:crypto';
import type { Chart } from 'cdk8s';
import { k8s } from '../../tiers/shared/k8s.ts';
import type { AppModel } from '../../api/model.ts';
import type { EnvVar } from '../../tiers/tier.ts';
import { dataTierEgress, scrapeIngress } from '../../tiers/shared/egress.ts';
import { APP_LABEL, TIER_LABEL, metadataOf } from '../../tiers/shared/meta.ts';
import type { TierName } from '../../tiers/shared/meta.ts';
import {
  restrictedContainerSecurityContext,
  restrictedPodSecurityContext,
} from '../../tiers/shared/pod-security.ts';
import { ephemeralStorage, quantity } from '../../tiers/shared/quantity.ts';
import {
  ACL_USERS,
  CONF_DIR,
  DATA_DIR,
  EXPORTER_PORT,
  LEGACY_PASSWORD,
  REDIS_PORT,
  readyCommand,
} from './config.ts';
import type { AclRole } from './config.ts';
import type { K8sObject } from '../../tiers/shared/chart.ts';
import {
  appCaObjects,
  appCaOwner,
  serverCertificate,
} from '../../tiers/shared/tls/cert-manager.ts';
import {
  CA_FILE,
  LOCALHOST,
  serverTlsMounts,
  serverTlsObjects,
  serverTlsVolumes,
  serviceDnsNames,
} from '../../tiers/shared/tls/objects.ts';

/** UID of the redis user in the official redis images. */
export const REDIS_UID = 999;
/** The keys of a Redis tier's generated Secret: one password per ACL role (config.ts). */
export const PASSWORD_KEYS: readonly string[] = Object.values(ACL_USERS).map((u) => u.key);
/** Changes with the ConfigMap, so pods restart on a new redis.conf. */
export const CONFIG_HASH_ANNOTATION = 'scalable.dev/config-hash';

export function configHashOf(data: Readonly<Record<string, string>>): string {
  const h = createHash('sha256');
  for (const key of Object.keys(data).sort()) h.update(`${key}\0${data[key]}\0`);
  return h.digest('hex').slice(0, 16);
}

/** The ConfigMap keys each pod reads: it restarts only when they change. */
const REDIS_KEYS = ['redis.conf', 'start-redis.sh', 'pre-stop.sh'];
const SENTINEL_KEYS = ['sentinel.conf', 'start-sentinel.sh'];

const hashOfKeys = (data: Readonly<Record<string, string>>, keys: readonly string[]) =>
  configHashOf(Object.fromEntries(keys.filter((k) => k in data).map((k) => [k, data[k] ?? ''])));

/** The config hash of the Redis pods, and of the Sentinel pods. */
export const redisConfigHash = (data: Readonly<Record<string, string>>): string =>
  hashOfKeys(data, REDIS_KEYS);
export const sentinelConfigHash = (data: Readonly<Record<string, string>>): string =>
  hashOfKeys(data, SENTINEL_KEYS);

/** A role's password from the tier's Secret, under `name` (by default the scripts' name). */
export const passwordEnv = (
  role: AclRole,
  secretName: string,
  name: string = ACL_USERS[role].env,
): EnvVar => ({
  name,
  valueFrom: { secretKeyRef: { name: secretName, key: ACL_USERS[role].key } },
});

/**
 * The legacy single password, optional: only Secrets made before ACL users have it, and the
 * scripts fall back to it for peers still on the old config (config.ts LEGACY_PASSWORD).
 */
export const legacyPasswordEnv = (secretName: string): EnvVar => ({
  name: LEGACY_PASSWORD.env,
  valueFrom: { secretKeyRef: { name: secretName, key: LEGACY_PASSWORD.key, optional: true } },
});

export const podNameEnv: EnvVar = {
  name: 'POD_NAME',
  valueFrom: { fieldRef: { fieldPath: 'metadata.name' } },
};

/** Short in-cluster DNS name that resolves without knowing the cluster domain. */
export const svcHost = (app: AppModel, service: string): string =>
  `${service}.${app.namespace}.svc`;

export interface RedisContainerProps {
  readonly app: AppModel;
  /** The tier's generated Secret (a password per ACL role). */
  readonly secretName: string;
  /** The legacy password's Secret, read while it exists (config.ts LEGACY_PASSWORD). */
  readonly legacySecretName: string;
  /** Memory limit (and request): maxmemory plus headroom. */
  readonly memoryLimit: string;
  /** Extra env for start-redis.sh (Sentinel discovery). */
  readonly env?: readonly EnvVar[];
  /** Script in the ConfigMap to run before the container stops. */
  readonly preStop?: string;
  /** Ephemeral storage to request: the data emptyDir's size when there is no volume. */
  readonly ephemeralStorage?: string;
  /** TLS only (redis.conf has tls-port): mount the key pair, hand the scripts the CA. */
  readonly tls?: boolean;
}

/** What redis-cli in the scripts and probes verifies the server against (config.ts). */
export const tlsCaEnv: EnvVar = { name: 'TLS_CA_FILE', value: CA_FILE };

/**
 * A Redis tier's certificate: one server key pair for every name a client or a peer uses
 * (its Services, its pods behind the headless Services, where Sentinel announces them by
 * hostname, and loopback for the exporter), issued by the operator or by cert-manager.
 */
export function redisTlsObjects(
  app: AppModel,
  tier: TierName,
  base: string,
  services: readonly string[],
  headless: readonly string[],
): K8sObject[] {
  const names = [
    ...services.flatMap((svc) => serviceDnsNames(app, svc)),
    ...headless.flatMap((svc) => serviceDnsNames(app, svc, true)),
    LOCALHOST,
  ];
  return [
    ...(appCaOwner(app) === tier ? appCaObjects(app, tier, tier) : []),
    ...serverTlsObjects(app, tier, base, names),
    serverCertificate(app, tier, base, names, undefined, tier),
  ];
}

export function redisContainer(p: RedisContainerProps): k8s.Container {
  // Ready: a master, or a replica in sync (config.ts readyCommand says what that gates).
  const ready = { exec: { command: readyCommand(REDIS_PORT) }, timeoutSeconds: 5 };
  // Liveness asks only whether the process still accepts connections: a Redis that is busy
  // (loading its append-only file, a slow command) leaves rotation through readiness and is
  // not killed, which would only start the load again.
  const alive = { tcpSocket: { port: k8s.IntOrString.fromString('redis') }, timeoutSeconds: 5 };
  return {
    name: 'redis',
    image: p.app.images.redis,
    command: ['sh', `${CONF_DIR}/start-redis.sh`],
    env: [
      // Every role's password: redis-server defines the ACL users from them at start.
      ...(Object.keys(ACL_USERS) as AclRole[]).map((r) => passwordEnv(r, p.secretName)),
      legacyPasswordEnv(p.legacySecretName),
      { name: 'CONF_DIR', value: CONF_DIR },
      { name: 'DATA_DIR', value: DATA_DIR },
      ...(p.tls ? [tlsCaEnv] : []),
      ...(p.env ?? []),
    ] as k8s.EnvVar[],
    ports: [{ name: 'redis', containerPort: REDIS_PORT, protocol: 'TCP' }],
    // Request = limit for memory: Redis's footprint is its dataset, overcommit only hurts.
    resources: {
      requests: {
        cpu: quantity('100m'),
        memory: quantity(p.memoryLimit),
        ...ephemeralStorage(p.ephemeralStorage ?? '64Mi'),
      },
      limits: { memory: quantity(p.memoryLimit) },
    },
    // start-redis.sh may wait for Sentinel before Redis listens: liveness waits for startup.
    startupProbe: { ...alive, periodSeconds: 5, failureThreshold: 60 },
    readinessProbe: { ...ready, periodSeconds: 5, failureThreshold: 3 },
    livenessProbe: { ...alive, periodSeconds: 10, failureThreshold: 6 },
    ...(p.preStop
      ? { lifecycle: { preStop: { exec: { command: ['sh', `${CONF_DIR}/${p.preStop}`] } } } }
      : {}),
    securityContext: restrictedContainerSecurityContext(),
    volumeMounts: [
      { name: 'config', mountPath: CONF_DIR, readOnly: true },
      { name: 'data', mountPath: DATA_DIR },
      ...(p.tls ? serverTlsMounts : []),
    ],
  };
}

/**
 * redis_exporter: Prometheus metrics on :9121, scraping Redis over localhost; with TLS as
 * rediss://localhost, verified against the CA (the certificate names localhost). Its
 * /scrape?target= endpoint (which dials any address with this Redis's password) and key
 * values as labels are off: the image's entrypoint says so, and the env says it again for
 * an upstream image put in its place (images/redis-exporter/Dockerfile has the story).
 */
export function exporterContainer(
  app: AppModel,
  secretName: string,
  extraEnv: readonly EnvVar[] = [],
  tls = false,
): k8s.Container {
  return {
    name: 'exporter',
    image: app.images.redisExporter,
    env: [
      { name: 'REDIS_ADDR', value: `${tls ? 'rediss' : 'redis'}://localhost:${REDIS_PORT}` },
      // Its own ACL user: INFO and stream metadata, never values, CONFIG or CLIENT KILL.
      { name: 'REDIS_USER', value: ACL_USERS.exporter.user },
      passwordEnv('exporter', secretName, 'REDIS_PASSWORD'),
      ...(tls ? [{ name: 'REDIS_EXPORTER_TLS_CA_CERT_FILE', value: CA_FILE }] : []),
      { name: 'REDIS_EXPORTER_DISABLE_SCRAPE_ENDPOINT', value: 'true' },
      { name: 'REDIS_EXPORTER_DISABLE_EXPORTING_KEY_VALUES', value: 'true' },
      ...extraEnv,
    ] as k8s.EnvVar[],
    ports: [{ name: 'metrics', containerPort: EXPORTER_PORT, protocol: 'TCP' }],
    resources: {
      requests: { cpu: quantity('10m'), memory: quantity('32Mi'), ...ephemeralStorage('16Mi') },
      limits: { memory: quantity('64Mi') },
    },
    readinessProbe: {
      tcpSocket: { port: k8s.IntOrString.fromString('metrics') },
      periodSeconds: 10,
    },
    securityContext: restrictedContainerSecurityContext(),
    ...(tls ? { volumeMounts: serverTlsMounts.filter((m) => m.name === 'tls-ca') } : {}),
  };
}

export interface RedisPodProps {
  readonly serviceAccountName: string;
  readonly containers: k8s.Container[];
  readonly configMapName: string;
  /** The data volume when it is not a PVC (cache: nothing persists). */
  readonly dataEmptyDir?: string;
  readonly spread?: k8s.TopologySpreadConstraint[] | undefined;
  /** The base name of the tier's TLS Secret (redisTlsObjects), when it has TLS. */
  readonly tlsBase?: string | undefined;
  /** Longer than the default 30 s: a master's preStop may wait for a replica in sync. */
  readonly terminationGracePeriodSeconds?: number;
}

export function redisPodSpec(p: RedisPodProps): k8s.PodSpec {
  return {
    serviceAccountName: p.serviceAccountName,
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    securityContext: {
      ...restrictedPodSecurityContext(REDIS_UID),
      // Large session volumes: chown only when the root of the volume is wrong.
      fsGroupChangePolicy: 'OnRootMismatch',
    },
    terminationGracePeriodSeconds: p.terminationGracePeriodSeconds ?? 30,
    ...(p.spread ? { topologySpreadConstraints: p.spread } : {}),
    containers: p.containers,
    volumes: [
      // 0444: the scripts run as `sh script`, nothing needs to execute or write them.
      { name: 'config', configMap: { name: p.configMapName, defaultMode: 0o444 } },
      ...(p.dataEmptyDir !== undefined
        ? [{ name: 'data', emptyDir: { sizeLimit: quantity(p.dataEmptyDir) } }]
        : []),
      ...(p.tlsBase !== undefined ? serverTlsVolumes(p.tlsBase) : []),
    ],
  };
}

/**
 * Only this app's pods may reach the tier's Redis/Sentinel ports; the metrics port only
 * Prometheus, from the monitoring namespaces (egress.ts). Egress: the cluster's DNS and the
 * tier's own pods on the same ports (replicas sync from the master, Sentinels talk to Redis
 * and to each other).
 */
export function redisNetworkPolicy(
  chart: Chart,
  app: AppModel,
  tier: TierName,
  name: string,
  ports: readonly number[],
) {
  const pods = { [APP_LABEL]: app.name, [TIER_LABEL]: tier };
  new k8s.KubeNetworkPolicy(chart, `${tier}-netpol`, {
    metadata: metadataOf(app, tier, name),
    spec: {
      podSelector: { matchLabels: pods },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        {
          from: [{ podSelector: { matchLabels: { [APP_LABEL]: app.name } } }],
          ports: ports.map((port) => ({ port: k8s.IntOrString.fromNumber(port), protocol: 'TCP' })),
        },
        scrapeIngress(app, [EXPORTER_PORT]),
      ],
      egress: dataTierEgress(app, { peers: pods, peerPorts: ports }),
    },
  });
}

export function serviceAccount(chart: Chart, app: AppModel, tier: TierName, name: string) {
  new k8s.KubeServiceAccount(chart, `${tier}-sa`, {
    metadata: metadataOf(app, tier, name),
    automountServiceAccountToken: false,
  });
}
