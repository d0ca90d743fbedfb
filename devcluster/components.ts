// Command lines of the control plane's components: pure functions of ports and file paths.
import type { CertPaths } from './certs.ts';

export interface Ports {
  etcdClient: number;
  etcdPeer: number;
  apiserver: number;
  controllerManager: number;
  scheduler: number;
}

export interface Layout {
  certs: CertPaths;
  etcdData: string;
  kubeconfig: string;
  kwokStages: string;
  /** The API server's audit policy and log (optional: the seed run has none). */
  audit?: { policy: string; log: string };
}

/**
 * Audit only what ServiceAccounts of the default namespace do (the operator's RBAC-bound test
 * identities live there), at Metadata level: enough to tell which rules of the operator's
 * ClusterRole an integration run exercised (test/integration/rbac-audit.ts), small enough to
 * leave on. Everything else (controllers, kwok, the admin user) is not logged.
 */
export const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    userGroups: ['system:serviceaccounts:default']
  - level: None
`;

export const SERVICE_CIDR = '10.96.0.0/16';
export const SA_ISSUER = 'https://kubernetes.default.svc.cluster.local';

export function etcdArgs(ports: Ports, layout: Layout): string[] {
  const client = `http://127.0.0.1:${ports.etcdClient}`;
  const peer = `http://127.0.0.1:${ports.etcdPeer}`;
  return [
    '--name=devcluster',
    `--data-dir=${layout.etcdData}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=devcluster=${peer}`,
    '--initial-cluster-state=new',
    // A throwaway test store: durability buys nothing, fsync costs seconds on slow disks.
    '--unsafe-no-fsync=true',
    '--quota-backend-bytes=4294967296',
    '--log-level=warn',
  ];
}

export const ADMISSION_PLUGINS = [
  'NamespaceLifecycle',
  'LimitRanger',
  'ServiceAccount',
  'PodSecurity',
  'NodeRestriction',
  'DefaultStorageClass',
  'StorageObjectInUseProtection',
  'ResourceQuota',
];

export function apiserverArgs(ports: Ports, layout: Layout): string[] {
  const c = layout.certs;
  return [
    `--etcd-servers=http://127.0.0.1:${ports.etcdClient}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${ports.apiserver}`,
    `--tls-cert-file=${c.serverCert}`,
    `--tls-private-key-file=${c.serverKey}`,
    `--client-ca-file=${c.caCert}`,
    `--service-account-key-file=${c.saPub}`,
    `--service-account-signing-key-file=${c.saKey}`,
    `--service-account-issuer=${SA_ISSUER}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    '--authorization-mode=Node,RBAC',
    `--enable-admission-plugins=${ADMISSION_PLUGINS.join(',')}`,
    // Privileged pods are allowed by the server so that PodSecurity is what rejects them.
    '--allow-privileged=true',
    // The kubernetes Service cannot point at a loopback address; nothing dials it here anyway.
    '--endpoint-reconciler-type=none',
    '--profiling=false',
    '--v=0',
    ...(layout.audit
      ? [
          `--audit-policy-file=${layout.audit.policy}`,
          `--audit-log-path=${layout.audit.log}`,
          '--audit-log-format=json',
          '--audit-log-maxsize=200',
          '--audit-log-maxbackup=1',
        ]
      : []),
  ];
}

/** kube-controller-manager and kube-scheduler serve health on loopback with delegated auth. */
function servingArgs(port: number, kubeconfig: string): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    '--bind-address=127.0.0.1',
    `--secure-port=${port}`,
    '--leader-elect=false',
  ];
}

export function controllerManagerArgs(ports: Ports, layout: Layout): string[] {
  const c = layout.certs;
  return [
    ...servingArgs(ports.controllerManager, layout.kubeconfig),
    // Every default controller: garbage collector, namespaces, replica sets, stateful sets,
    // service-account tokens, PV binder, node lifecycle...
    '--controllers=*',
    '--use-service-account-credentials=true',
    `--service-account-private-key-file=${c.saKey}`,
    `--root-ca-file=${c.caCert}`,
    `--cluster-signing-cert-file=${c.caCert}`,
    `--cluster-signing-key-file=${c.caKey}`,
    // The PV controller's built-in hostPath provisioner backs the default StorageClass, so
    // every PVC of that class gets a PV and binds (no pod here ever mounts it for real).
    '--enable-hostpath-provisioner=true',
    '--v=0',
  ];
}

export function schedulerArgs(ports: Ports, layout: Layout): string[] {
  return [...servingArgs(ports.scheduler, layout.kubeconfig), '--v=0'];
}

export const KWOK_NODE_ANNOTATION = 'kwok.x-k8s.io/node';

export function kwokArgs(layout: Layout): string[] {
  return [
    `--kubeconfig=${layout.kubeconfig}`,
    `--config=${layout.kwokStages}`,
    `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION}=fake`,
    '--cidr=10.244.0.0/16',
    '--node-ip=10.0.0.1',
  ];
}
