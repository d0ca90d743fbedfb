// A Redis tier's objects, as the cache, the session store and the queue store build them:
// the generated password and TLS objects, the ServiceAccount and ConfigMap, the Services, the
// pod template (redis + redis_exporter) and the StatefulSet. Each tier says only what
// differs: its config, memory, volume and Sentinel (sentinel.ts); client.ts is what app pods
// get to reach it.
import type { Chart } from 'cdk8s';
import type { AppModel } from '../../api/model.ts';
import type { EnvVar } from '../../tiers/tier.ts';
import { synth } from '../../tiers/shared/chart.ts';
import type { K8sObject } from '../../tiers/shared/chart.ts';
import { k8s } from '../../tiers/shared/k8s.ts';
import { labelsOf, metadataOf, selectorOf } from '../../tiers/shared/meta.ts';
import type { TierName } from '../../tiers/shared/meta.ts';
import { quantity } from '../../tiers/shared/quantity.ts';
import { generatedSecret } from '../../tiers/shared/secrets.ts';
import { EXPORTER_PORT, REDIS_PORT, REDIS_STOP_GRACE_SECONDS } from './config.ts';
import type { RedisNames, ReplicatedRedisNames } from './names.ts';
import {
  CONFIG_HASH_ANNOTATION,
  PASSWORD_KEYS,
  exporterContainer,
  redisContainer,
  redisConfigHash,
  redisPodSpec,
  redisTlsObjects,
  serviceAccount,
} from './pod.ts';

/** What every piece of a Redis tier is built from. */
export interface RedisTier {
  readonly app: AppModel;
  readonly tier: TierName;
  readonly names: RedisNames;
  /** The ConfigMap: redis.conf and the scripts (and sentinel.conf with Sentinel). */
  readonly data: Readonly<Record<string, string>>;
  readonly tls: boolean;
}

/**
 * The tier's objects: its passwords' Secret, with TLS its certificate objects, then its
 * ServiceAccount and ConfigMap and what `define` adds (workload, Services, policies).
 */
export function redisObjects(t: RedisTier, define: (chart: Chart) => void): K8sObject[] {
  const { app, tier, names: n } = t;
  const objects = synth((chart) => {
    serviceAccount(chart, app, tier, n.redis);
    new k8s.KubeConfigMap(chart, `${tier}-config`, {
      metadata: metadataOf(app, tier, n.config),
      data: { ...t.data },
    });
    define(chart);
  });
  const sentinel = 'sentinel' in n ? (n as ReplicatedRedisNames) : undefined;
  const certificate = t.tls
    ? redisTlsObjects(
        app,
        tier,
        n.redis,
        sentinel ? [n.redis, sentinel.sentinel] : [n.redis],
        sentinel ? [n.headless, sentinel.sentinelHeadless] : [n.headless],
      )
    : [];
  return [generatedSecret(app, tier, n.users, PASSWORD_KEYS), ...certificate, ...objects];
}

/** The Service app pods connect through, and the headless one the pods find each other by. */
export function redisService(chart: Chart, t: RedisTier, headless = false) {
  const ports = [
    { name: 'redis', port: REDIS_PORT, targetPort: k8s.IntOrString.fromString('redis') },
    { name: 'metrics', port: EXPORTER_PORT, targetPort: k8s.IntOrString.fromString('metrics') },
  ];
  const selector = selectorOf(t.app, t.tier);
  new k8s.KubeService(chart, `${t.tier}-${headless ? 'headless' : 'svc'}`, {
    metadata: metadataOf(t.app, t.tier, headless ? t.names.headless : t.names.redis),
    spec: headless
      ? // Pods resolve each other before they are ready (replication, Sentinel's monitor line).
        { clusterIp: 'None', publishNotReadyAddresses: true, selector, ports }
      : { type: 'ClusterIP', selector, ports },
  });
}

/** What differs between the Redis pods of the tiers. */
export interface RedisPodProps {
  readonly memoryLimit: string;
  /** Extra env for start-redis.sh (Sentinel discovery). */
  readonly env?: readonly EnvVar[];
  /** Script in the ConfigMap to run before the container stops. */
  readonly preStop?: string | undefined;
  /** Extra env for redis_exporter. */
  readonly exporterEnv?: readonly EnvVar[];
  /** No volume: the data in an emptyDir of this size (also requested as ephemeral storage). */
  readonly dataEmptyDir?: string;
  readonly spread?: k8s.TopologySpreadConstraint[] | undefined;
}

/** The pod template of a Redis tier: redis and the redis_exporter sidecar. */
export function redisTemplate(t: RedisTier, p: RedisPodProps): k8s.PodTemplateSpec {
  const { app, names: n } = t;
  return {
    metadata: {
      labels: labelsOf(app, t.tier),
      annotations: { [CONFIG_HASH_ANNOTATION]: redisConfigHash(t.data) },
    },
    spec: redisPodSpec({
      serviceAccountName: n.redis,
      configMapName: n.config,
      containers: [
        redisContainer({
          app,
          secretName: n.users,
          legacySecretName: n.auth,
          memoryLimit: p.memoryLimit,
          ...(p.dataEmptyDir !== undefined ? { ephemeralStorage: p.dataEmptyDir } : {}),
          ...(p.env ? { env: p.env } : {}),
          ...(p.preStop ? { preStop: p.preStop } : {}),
          tls: t.tls,
        }),
        exporterContainer(app, n.users, p.exporterEnv ?? [], t.tls),
      ],
      ...(p.dataEmptyDir !== undefined ? { dataEmptyDir: p.dataEmptyDir } : {}),
      spread: p.spread,
      tlsBase: t.tls ? n.redis : undefined,
      // pre-stop.sh may wait for a replica in sync before it hands the master role over.
      ...(p.preStop ? { terminationGracePeriodSeconds: REDIS_STOP_GRACE_SECONDS } : {}),
    }),
  };
}

export interface RedisSetProps {
  readonly replicas: number;
  /** A client Service in front (not with Sentinel: it would reach replicas too). */
  readonly service: boolean;
  /** Pod 0 first, for a set whose pod 0 is the master of a fresh set (Sentinel). */
  readonly orderedReady?: boolean;
  /** A volume per pod, kept when the set is deleted or scaled down. */
  readonly storage?: {
    readonly size: string | number;
    readonly storageClassName?: string | undefined;
  };
  readonly pod: RedisPodProps;
}

/** The Redis StatefulSet, its headless Service and (p.service) its client Service. */
export function redisSet(chart: Chart, t: RedisTier, p: RedisSetProps) {
  const { app, tier, names: n } = t;
  const storage = p.storage;
  if (p.service) redisService(chart, t);
  redisService(chart, t, true);
  new k8s.KubeStatefulSet(chart, `${tier}-sts`, {
    metadata: metadataOf(app, tier, n.redis),
    spec: {
      replicas: p.replicas,
      serviceName: n.headless,
      selector: { matchLabels: selectorOf(app, tier) },
      ...(p.orderedReady ? { podManagementPolicy: 'OrderedReady' } : {}),
      revisionHistoryLimit: 5,
      template: redisTemplate(t, p.pod),
      ...(storage
        ? {
            // The data outlives the StatefulSet: the volumes stay when it is deleted.
            persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
            volumeClaimTemplates: [
              {
                metadata: { name: 'data', labels: labelsOf(app, tier) },
                spec: {
                  accessModes: ['ReadWriteOnce'],
                  resources: { requests: { storage: quantity(storage.size) } },
                  ...(storage.storageClassName !== undefined
                    ? { storageClassName: storage.storageClassName }
                    : {}),
                },
              },
            ],
          }
        : {}),
    },
  });
}
