// A 3-member Sentinel set for a replicated Redis tier: its Services, StatefulSet and PDB, and
// the discovery env the Redis and Sentinel pods share (start-redis.sh, start-sentinel.sh and
// pre-stop.sh read it). The cache and the queue tiers use it.
import type { Chart } from 'cdk8s';
import { k8s } from '../../tiers/shared/k8s.ts';
import type { AppModel } from '../../api/model.ts';
import type { EnvVar } from '../../tiers/tier.ts';
import { labelsOf, metadataOf, selectorOf } from '../../tiers/shared/meta.ts';
import type { TierName } from '../../tiers/shared/meta.ts';
import {
  memberSpreadOf,
  restrictedContainerSecurityContext,
} from '../../tiers/shared/pod-security.ts';
import { ephemeralStorage, quantity } from '../../tiers/shared/quantity.ts';
import {
  CONF_DIR,
  DATA_DIR,
  REDIS_PORT,
  SENTINEL_COUNT,
  SENTINEL_PORT,
  pingCommand,
} from './config.ts';
import {
  CONFIG_HASH_ANNOTATION,
  legacyPasswordEnv,
  passwordEnv,
  podNameEnv,
  redisPodSpec,
  sentinelConfigHash,
  svcHost,
  tlsCaEnv,
} from './pod.ts';
import { serverTlsMounts } from '../../tiers/shared/tls/objects.ts';
import type { ReplicatedRedisNames } from './names.ts';
import type { RedisTier } from './store.ts';

/** The Redis StatefulSet and headless Service a Sentinel set watches, and its own. */
export type SentinelNames = ReplicatedRedisNames;

/** host:port of each Sentinel: stable StatefulSet pod names behind a headless Service. */
export function sentinelAddresses(app: AppModel, n: SentinelNames): string[] {
  return Array.from(
    { length: SENTINEL_COUNT },
    (_, i) => `${n.sentinel}-${i}.${svcHost(app, n.sentinelHeadless)}:${SENTINEL_PORT}`,
  );
}

/** What every Redis and Sentinel pod of the set needs to find the current master. */
export function discoveryEnv(app: AppModel, n: SentinelNames, masterName: string): EnvVar[] {
  return [
    podNameEnv,
    { name: 'SENTINELS', value: sentinelAddresses(app, n).join(',') },
    { name: 'MASTER_NAME', value: masterName },
    { name: 'SEED_ADDR', value: `${n.redis}-0.${svcHost(app, n.headless)}:${REDIS_PORT}` },
  ];
}

/** A Redis pod's env: how to find the master, and its own stable address (as Sentinel and
 * the replicas know it). */
export const redisDiscoveryEnv = (
  app: AppModel,
  n: SentinelNames,
  masterName: string,
): EnvVar[] => [
  ...discoveryEnv(app, n, masterName),
  { name: 'SELF_ADDR', value: `$(POD_NAME).${svcHost(app, n.headless)}:${REDIS_PORT}` },
];

/**
 * Redis master + replicas watched by 3 Sentinels: the Redis pods' PDB, and the Sentinel
 * set (restarted when its keys of the tier's ConfigMap change; with TLS it serves the tier's
 * key pair).
 */
export function sentinelReplication(
  chart: Chart,
  t: RedisTier & { readonly names: SentinelNames },
  component: string,
  masterName: string,
) {
  const { app, tier, names: n } = t;
  maxOneDown(chart, app, tier, `${tier}-pdb`, n.redis, selectorOf(app, tier));
  const hash = sentinelConfigHash(t.data);
  const tlsBase = t.tls ? n.redis : undefined;
  const selector = selectorOf(app, tier, component);
  const ping = { exec: { command: pingCommand(SENTINEL_PORT) }, timeoutSeconds: 5 };
  // Liveness: the process accepts connections; a Sentinel busy in a failover is not killed.
  const alive = {
    tcpSocket: { port: k8s.IntOrString.fromString('sentinel') },
    timeoutSeconds: 5,
  };
  const ports = [
    { name: 'sentinel', port: SENTINEL_PORT, targetPort: k8s.IntOrString.fromString('sentinel') },
  ];
  new k8s.KubeService(chart, `${component}-svc`, {
    metadata: metadataOf(app, tier, n.sentinel, component),
    spec: { type: 'ClusterIP', selector, ports },
  });
  new k8s.KubeService(chart, `${component}-headless`, {
    metadata: metadataOf(app, tier, n.sentinelHeadless, component),
    spec: { clusterIp: 'None', publishNotReadyAddresses: true, selector, ports },
  });
  new k8s.KubeStatefulSet(chart, `${component}-sts`, {
    metadata: metadataOf(app, tier, n.sentinel, component),
    spec: {
      replicas: SENTINEL_COUNT,
      serviceName: n.sentinelHeadless,
      selector: { matchLabels: selector },
      // Sentinels find the master themselves; no reason to start them one by one.
      podManagementPolicy: 'Parallel',
      revisionHistoryLimit: 5,
      template: {
        metadata: {
          labels: labelsOf(app, tier, component),
          annotations: { [CONFIG_HASH_ANNOTATION]: hash },
        },
        spec: redisPodSpec({
          serviceAccountName: n.redis,
          configMapName: n.config,
          dataEmptyDir: '16Mi',
          // Quorum is 2 of 3: two Sentinels on one node would take it with them.
          spread: memberSpreadOf(app, selector, SENTINEL_COUNT),
          tlsBase,
          containers: [
            {
              name: 'sentinel',
              image: app.images.redis,
              command: ['sh', `${CONF_DIR}/start-sentinel.sh`],
              env: [
                // Its users (admin, app) and its user on Redis (sentinel); no data access.
                passwordEnv('admin', n.users),
                passwordEnv('sentinel', n.users),
                passwordEnv('app', n.users),
                legacyPasswordEnv(n.auth),
                { name: 'CONF_DIR', value: CONF_DIR },
                { name: 'DATA_DIR', value: DATA_DIR },
                ...(tlsBase !== undefined ? [tlsCaEnv] : []),
                ...discoveryEnv(app, n, masterName),
                {
                  name: 'SELF_ADDR',
                  value: `$(POD_NAME).${svcHost(app, n.sentinelHeadless)}:${SENTINEL_PORT}`,
                },
              ] as k8s.EnvVar[],
              ports: [{ name: 'sentinel', containerPort: SENTINEL_PORT, protocol: 'TCP' }],
              resources: {
                // Its config file and logs (the data emptyDir holds up to 16Mi).
                requests: {
                  cpu: quantity('50m'),
                  memory: quantity('64Mi'),
                  ...ephemeralStorage('32Mi'),
                },
                limits: { memory: quantity('64Mi') },
              },
              // start-sentinel.sh may wait up to a minute for the master's DNS name.
              startupProbe: { ...alive, periodSeconds: 5, failureThreshold: 30 },
              readinessProbe: { ...ping, periodSeconds: 5, failureThreshold: 3 },
              livenessProbe: { ...alive, periodSeconds: 10, failureThreshold: 6 },
              securityContext: restrictedContainerSecurityContext(),
              volumeMounts: [
                { name: 'config', mountPath: CONF_DIR, readOnly: true },
                { name: 'data', mountPath: DATA_DIR },
                ...(tlsBase !== undefined ? serverTlsMounts : []),
              ],
            },
          ],
        }),
      },
    },
  });
  // Quorum is 2 of 3: at most one Sentinel may be drained at a time.
  maxOneDown(chart, app, tier, `${component}-pdb`, n.sentinel, selector, component);
}

function maxOneDown(
  chart: Chart,
  app: AppModel,
  tier: TierName,
  id: string,
  name: string,
  selector: Record<string, string>,
  component?: string,
) {
  new k8s.KubePodDisruptionBudget(chart, id, {
    metadata: metadataOf(app, tier, name, component),
    spec: { maxUnavailable: k8s.IntOrString.fromNumber(1), selector: { matchLabels: selector } },
  });
}
