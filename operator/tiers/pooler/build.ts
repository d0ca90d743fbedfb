// The pooler tier's objects: per shard a PgBouncer Deployment in front of the shard's
// primary (its -rw Service, which follows the leader), the -rw-pooler Service, a PDB, the
// files (config.ts), and two certificates from the app's CA: the one PgBouncer serves to
// clients, and the client certificate its auth role logs in to Postgres with. One
// NetworkPolicy: app pods -> pooler -> Postgres, nothing else.
import type { AppModel, PoolerModel } from '../../api/model.ts';
import { appDatabaseName, POSTGRES_PORT, shardIndexes, shardName } from '../database/names.ts';
import { synth } from '../shared/chart.ts';
import type { K8sObject } from '../shared/chart.ts';
import { dnsPeers, scrapeIngress } from '../shared/egress.ts';
import { k8s } from '../shared/k8s.ts';
import { APP_LABEL, labelsOf, metadataOf, selectorOf } from '../shared/meta.ts';
import {
  restrictedContainerSecurityContext,
  restrictedPodSecurityContext,
  topologySpreadOf,
} from '../shared/pod-security.ts';
import { resourcesOf } from '../shared/quantity.ts';
import { serverCertificate } from '../shared/tls/cert-manager.ts';
import {
  CA_DIR,
  LOCALHOST,
  SERVER_TLS_DIR,
  TLS_CLIENT_ANNOTATION,
  TLS_FILES,
  serverTlsObjects,
  serviceDnsNames,
  tlsSecretName,
} from '../shared/tls/objects.ts';
import {
  POOLER_ADMIN_USER,
  POOLER_AUTH_ROLE,
  POOLER_CONFIG_DIR,
  POOLER_EXPORTER_PORT,
  POOLER_HBA,
  POOLER_INI,
  POOLER_PORT,
  POOLER_SOCKET_DIR,
  renderPgbouncerHba,
  renderPgbouncerIni,
} from './config.ts';
import { poolerName, poolerOf, poolerServiceName } from './names.ts';

export { poolerName, poolerOf, poolerServiceName } from './names.ts';

export const POOLER_TIER = 'pooler';
const COMPONENT = 'pgbouncer';
/** Which shard a pooler pod serves (Deployments of one tier, told apart). */
export const POOLER_SHARD_LABEL = 'scalable.dev/pooler-shard';
/** uid/gid of the pgbouncer image (images/pgbouncer/Dockerfile). */
export const POOLER_UID = 999;
/** Where the pod mounts the auth role's client certificate. */
export const POOLER_CLIENT_CERT_DIR = '/etc/scalable/client';

/** The auth role's client certificate: <app>-db-<i>-pooler-client-tls. */
export const poolerClientBase = (app: AppModel, shard: number): string =>
  `${poolerName(app, shard)}-client`;
export const poolerNetworkPolicyName = (app: AppModel): string => `${app.name}-pooler`;

export const poolerSelector = (app: AppModel, shard: number): Record<string, string> => ({
  ...selectorOf(app, POOLER_TIER, COMPONENT),
  [POOLER_SHARD_LABEL]: String(shard),
});

const meta = (app: AppModel, name: string, extra?: Parameters<typeof metadataOf>[4]) =>
  metadataOf(app, POOLER_TIER, name, COMPONENT, extra);

export function buildPooler(app: AppModel): K8sObject[] {
  const pooler = poolerOf(app);
  if (!pooler) return [];
  return [
    ...shardIndexes(app).flatMap((shard) => [
      ...poolerTls(app, shard),
      poolerConfigMap(app, pooler, shard),
      ...poolerDeployment(app, pooler, shard),
      poolerService(app, shard),
      poolerPdb(app, pooler, shard),
    ]),
    ...poolerNetworkPolicy(app),
  ];
}

/** The pooler's serving certificate names its Service; the client one its auth role. */
function poolerTls(app: AppModel, shard: number): K8sObject[] {
  const issuer = app.database?.certificateIssuer;
  const base = poolerName(app, shard);
  const names = [...serviceDnsNames(app, poolerServiceName(app, shard)), LOCALHOST];
  const clientBase = poolerClientBase(app, shard);
  const [clientSecret, clientPublic] = serverTlsObjects(app, POOLER_TIER, clientBase, [
    POOLER_AUTH_ROLE,
  ]) as [K8sObject, K8sObject];
  const clientCert = serverCertificate(
    app,
    POOLER_TIER,
    clientBase,
    [POOLER_AUTH_ROLE],
    issuer,
    COMPONENT,
  );
  return [
    ...serverTlsObjects(app, POOLER_TIER, base, names, COMPONENT),
    serverCertificate(app, POOLER_TIER, base, names, issuer, COMPONENT),
    {
      ...clientSecret,
      metadata: {
        ...clientSecret.metadata,
        annotations: { ...clientSecret.metadata.annotations, [TLS_CLIENT_ANNOTATION]: 'true' },
      },
    },
    clientPublic,
    {
      ...clientCert,
      spec: { ...(clientCert['spec'] as object), usages: ['digital signature', 'client auth'] },
    },
  ];
}

function poolerConfigMap(app: AppModel, pooler: PoolerModel, shard: number): K8sObject {
  const ini = renderPgbouncerIni(pooler, appDatabaseName(app), {
    // The -rw Service: its endpoint is the primary; PgBouncer resolves it again (dns_max_ttl)
    // and opens new server connections there after a failover.
    serverHost: `${shardName(app, shard)}.${app.namespace}.svc`,
    serverPort: POSTGRES_PORT,
    listenPort: POOLER_PORT,
    clientCert: `${SERVER_TLS_DIR}/${TLS_FILES.cert}`,
    clientKey: `${SERVER_TLS_DIR}/${TLS_FILES.key}`,
    serverCert: `${POOLER_CLIENT_CERT_DIR}/${TLS_FILES.cert}`,
    serverKey: `${POOLER_CLIENT_CERT_DIR}/${TLS_FILES.key}`,
    ca: `${CA_DIR}/${TLS_FILES.ca}`,
  });
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: meta(app, poolerName(app, shard)),
    data: { [POOLER_INI]: ini, [POOLER_HBA]: renderPgbouncerHba() },
  };
}

function poolerDeployment(app: AppModel, pooler: PoolerModel, shard: number): K8sObject[] {
  const selector = poolerSelector(app, shard);
  const name = poolerName(app, shard);
  const security = restrictedContainerSecurityContext();
  const spread = topologySpreadOf(app, selector);
  const postgresPort = k8s.IntOrString.fromString('postgres');
  return synth((chart) => {
    // A ServiceAccount of its own (no token mounted): the operator's admission policy lets it
    // run pods only as the app's own accounts, never the namespace's default one.
    new k8s.KubeServiceAccount(chart, `pooler-sa-${shard}`, {
      metadata: meta(app, name),
      automountServiceAccountToken: false,
    });
    new k8s.KubeDeployment(chart, `pooler-${shard}`, {
      metadata: meta(app, name),
      spec: {
        replicas: pooler.replicas,
        selector: { matchLabels: selector },
        strategy: {
          type: 'RollingUpdate',
          rollingUpdate: {
            maxUnavailable: k8s.IntOrString.fromNumber(0),
            maxSurge: k8s.IntOrString.fromNumber(1),
          },
        },
        template: {
          metadata: { labels: { ...labelsOf(app, POOLER_TIER, COMPONENT), ...selector } },
          spec: {
            serviceAccountName: name,
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            securityContext: restrictedPodSecurityContext(POOLER_UID),
            ...(spread ? { topologySpreadConstraints: spread } : {}),
            containers: [
              {
                name: COMPONENT,
                image: app.images.pgbouncer,
                args: [`${POOLER_CONFIG_DIR}/${POOLER_INI}`],
                ports: [{ name: 'postgres', containerPort: POOLER_PORT, protocol: 'TCP' }],
                // No liveness probe: PgBouncer exits on what it cannot recover from, and a
                // probe of the same port would restart it on the very check that takes it
                // out of rotation.
                readinessProbe: { tcpSocket: { port: postgresPort }, periodSeconds: 5 },
                resources: resourcesOf(pooler.resources, '64Mi'),
                securityContext: security,
                volumeMounts: [
                  { name: 'config', mountPath: POOLER_CONFIG_DIR, readOnly: true },
                  { name: 'tls', mountPath: SERVER_TLS_DIR, readOnly: true },
                  { name: 'client-tls', mountPath: POOLER_CLIENT_CERT_DIR, readOnly: true },
                  { name: 'tls-ca', mountPath: CA_DIR, readOnly: true },
                  { name: 'socket', mountPath: POOLER_SOCKET_DIR },
                ],
              },
              {
                name: 'exporter',
                image: app.images.pgbouncer,
                command: ['/usr/bin/prometheus-pgbouncer-exporter'],
                args: [
                  `--pgBouncer.connectionString=host=${POOLER_SOCKET_DIR} port=${POOLER_PORT} user=${POOLER_ADMIN_USER} dbname=pgbouncer sslmode=disable`,
                  `--pgBouncer.pid-file=${POOLER_SOCKET_DIR}/pgbouncer.pid`,
                  `--web.listen-address=:${POOLER_EXPORTER_PORT}`,
                ],
                ports: [{ name: 'metrics', containerPort: POOLER_EXPORTER_PORT, protocol: 'TCP' }],
                resources: resourcesOf(
                  { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '64Mi' } },
                  '16Mi',
                ),
                securityContext: security,
                volumeMounts: [{ name: 'socket', mountPath: POOLER_SOCKET_DIR }],
              },
            ],
            volumes: [
              { name: 'config', configMap: { name } },
              // 0640, group = fsGroup: readable by PgBouncer's uid, nobody else's.
              { name: 'tls', secret: { secretName: tlsSecretName(name), defaultMode: 0o640 } },
              {
                name: 'client-tls',
                secret: {
                  secretName: tlsSecretName(poolerClientBase(app, shard)),
                  defaultMode: 0o640,
                },
              },
              // The database's CA, from the shard's own Secret: what verifies Postgres.
              {
                name: 'tls-ca',
                secret: {
                  secretName: tlsSecretName(shardName(app, shard)),
                  items: [{ key: TLS_FILES.ca, path: TLS_FILES.ca }],
                },
              },
              {
                name: 'socket',
                emptyDir: { medium: 'Memory', sizeLimit: k8s.Quantity.fromString('1Mi') },
              },
            ],
          },
        },
      },
    });
  });
}

function poolerService(app: AppModel, shard: number): K8sObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(app, poolerServiceName(app, shard)),
    spec: {
      selector: poolerSelector(app, shard),
      ports: [{ name: 'postgres', port: POSTGRES_PORT, targetPort: 'postgres', protocol: 'TCP' }],
    },
  };
}

/** Drains take one pooler pod at a time; with one replica they are not blocked. */
function poolerPdb(app: AppModel, pooler: PoolerModel, shard: number): K8sObject {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: meta(app, poolerName(app, shard)),
    spec: {
      maxUnavailable: pooler.replicas > 1 ? 1 : '100%',
      selector: { matchLabels: poolerSelector(app, shard) },
    },
  };
}

const tcp = (port: number) => ({ port: k8s.IntOrString.fromNumber(port), protocol: 'TCP' });

/**
 * In: the app's pods on the pooler port (as Postgres admits them), the exporter from the
 * monitoring namespaces. Out: the cluster's DNS and the app's Postgres pods, nothing else.
 */
function poolerNetworkPolicy(app: AppModel): K8sObject[] {
  return synth((chart) => {
    new k8s.KubeNetworkPolicy(chart, 'pooler-netpol', {
      metadata: meta(app, poolerNetworkPolicyName(app)),
      spec: {
        podSelector: { matchLabels: selectorOf(app, POOLER_TIER, COMPONENT) },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [
          {
            from: [{ podSelector: { matchLabels: { [APP_LABEL]: app.name } } }],
            ports: [tcp(POOLER_PORT)],
          },
          scrapeIngress(app, [POOLER_EXPORTER_PORT]),
        ],
        egress: [
          { to: dnsPeers(app), ports: [{ ...tcp(53), protocol: 'UDP' }, tcp(53)] },
          {
            to: [{ podSelector: { matchLabels: selectorOf(app, 'database', 'postgres') } }],
            ports: [tcp(POSTGRES_PORT)],
          },
        ],
      },
    });
  });
}
