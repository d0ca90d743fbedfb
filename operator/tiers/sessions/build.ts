// The session store: a Redis of its own (never the cache: cache data is evictable, sessions
// are not) with an append-only file on a PVC and maxmemory-policy noeviction, so the web
// tier stays stateless and a restart loses no session.
import { k8s } from '../shared/k8s.ts';
import type { AppModel } from '../../api/model.ts';
import type { AppWiring, EnvVar } from '../tier.ts';
import { synth } from '../shared/chart.ts';
import type { K8sObject } from '../shared/chart.ts';
import { labelsOf, metadataOf, nameOf, selectorOf } from '../shared/meta.ts';
import { quantity } from '../shared/quantity.ts';
import {
  EXPORTER_PORT,
  REDIS_PORT,
  START_REDIS_SH,
  memoryLimitOf,
  sessionsRedisConf,
} from '../../engines/redis/config.ts';
import {
  CONFIG_HASH_ANNOTATION,
  PASSWORD_KEY,
  configHashOf,
  exporterContainer,
  passwordEnv,
  redisContainer,
  redisNetworkPolicy,
  redisPodSpec,
  redisTlsObjects,
  serviceAccount,
  svcHost,
} from '../../engines/redis/pod.ts';
import { caFileOf, caWiring } from '../shared/tls/objects.ts';
import { generatedSecret } from '../shared/secrets.ts';

export function sessionsNames(app: AppModel) {
  return {
    sessions: nameOf(app, 'sessions'),
    auth: nameOf(app, 'sessions', 'auth'),
    config: nameOf(app, 'sessions', 'config'),
    headless: nameOf(app, 'sessions', 'headless'),
  };
}

/** The app pod's volume (and directory under /etc/scalable/ca) holding the store's CA. */
const CA_VOLUME = 'sessions-ca';

/** With TLS a rediss:// URL by the name the certificate carries, and the CA file. */
export function sessionsEnv(app: AppModel): EnvVar[] {
  const sessions = app.sessions;
  if (!sessions) return [];
  const n = sessionsNames(app);
  return [
    {
      name: 'SESSION_REDIS_URL',
      value: sessions.tls
        ? `rediss://${svcHost(app, n.sessions)}:${REDIS_PORT}/0`
        : `redis://${n.sessions}:${REDIS_PORT}/0`,
    },
    passwordEnv('SESSION_REDIS_PASSWORD', n.auth),
    ...(sessions.tls ? [{ name: 'SESSION_REDIS_SSLROOTCERT', value: caFileOf(CA_VOLUME) }] : []),
    { name: 'SESSION_TTL_SECONDS', value: String(sessions.ttlSeconds) },
  ];
}

/** The env above and, with TLS, the CA mounted from the store's certificate Secret. */
export function sessionsWiring(app: AppModel): Partial<AppWiring> {
  const tls = app.sessions?.tls ? caWiring(CA_VOLUME, sessionsNames(app).sessions) : undefined;
  return { env: sessionsEnv(app), ...(tls ?? {}) };
}

export const sessionsConfigData = (
  sessions: NonNullable<AppModel['sessions']>,
): Record<string, string> => ({
  'redis.conf': sessionsRedisConf(sessions.memory, sessions.tls),
  'start-redis.sh': START_REDIS_SH,
});

export function buildSessions(app: AppModel): K8sObject[] {
  const sessions = app.sessions;
  if (!sessions) return [];
  const n = sessionsNames(app);
  const data = sessionsConfigData(sessions);
  const selector = selectorOf(app, 'sessions');
  const ports = [
    { name: 'redis', port: REDIS_PORT, targetPort: k8s.IntOrString.fromString('redis') },
    { name: 'metrics', port: EXPORTER_PORT, targetPort: k8s.IntOrString.fromString('metrics') },
  ];
  const objects = synth((chart) => {
    serviceAccount(chart, app, 'sessions', n.sessions);
    new k8s.KubeConfigMap(chart, 'sessions-config', {
      metadata: metadataOf(app, 'sessions', n.config),
      data,
    });
    new k8s.KubeService(chart, 'sessions-svc', {
      metadata: metadataOf(app, 'sessions', n.sessions),
      spec: { type: 'ClusterIP', selector, ports },
    });
    new k8s.KubeService(chart, 'sessions-headless', {
      metadata: metadataOf(app, 'sessions', n.headless),
      spec: { clusterIp: 'None', publishNotReadyAddresses: true, selector, ports },
    });
    new k8s.KubeStatefulSet(chart, 'sessions-sts', {
      metadata: metadataOf(app, 'sessions', n.sessions),
      spec: {
        replicas: 1,
        serviceName: n.headless,
        selector: { matchLabels: selector },
        revisionHistoryLimit: 5,
        // Sessions outlive the StatefulSet: the volume stays when it is deleted or scaled.
        persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
        template: {
          metadata: {
            labels: labelsOf(app, 'sessions'),
            annotations: { [CONFIG_HASH_ANNOTATION]: configHashOf(data) },
          },
          spec: redisPodSpec({
            serviceAccountName: n.sessions,
            configMapName: n.config,
            containers: [
              redisContainer({
                app,
                secretName: n.auth,
                memoryLimit: memoryLimitOf(sessions.memory),
                tls: sessions.tls,
              }),
              exporterContainer(app, n.auth, [], sessions.tls),
            ],
            tlsBase: sessions.tls ? n.sessions : undefined,
          }),
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'data', labels: labelsOf(app, 'sessions') },
            spec: {
              accessModes: ['ReadWriteOnce'],
              resources: { requests: { storage: quantity(sessions.storage.size) } },
              ...(sessions.storage.storageClassName !== undefined
                ? { storageClassName: sessions.storage.storageClassName }
                : {}),
            },
          },
        ],
      },
    });
    redisNetworkPolicy(chart, app, 'sessions', n.sessions, [REDIS_PORT]);
  });
  const tls = sessions.tls
    ? redisTlsObjects(app, 'sessions', n.sessions, [n.sessions], [n.headless])
    : [];
  return [generatedSecret(app, 'sessions', n.auth, [PASSWORD_KEY]), ...tls, ...objects];
}
