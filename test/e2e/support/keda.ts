// KEDA in the kind cluster, so a queue's backlog scales its workers 0 -> N -> 0: the
// keda-operator the devcluster builds (its scalers trimmed to those we render,
// devcluster/keda-trim.ts) and KEDA's metrics adapter built from the same tree
// (keda-adapter.ts), in Debian images of ours, installed from KEDA's own kustomize bases in
// its module (config/crd, config/rbac, config/manager, config/metrics-server) with only the
// images, the pull policy, the flags and the certificates changed. The operator scales a
// worker 0 <-> 1; the adapter serves the backlog to the HPA the operator makes, for 1 -> N.
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateMutualTlsCerts } from '../../../devcluster/certs.ts';
import { binPath } from '../../../devcluster/paths.ts';
import { downloadModule } from '../../../devcluster/toolchain.ts';
import { ADDON_BINARY_VERSIONS } from '../../../devcluster/versions.ts';
import { load, type Doc } from './addons.ts';
import { kubectl, type KindCluster } from './cluster.ts';
import { applyDocs, buildBinaryImage, waitApiService, waitAvailable } from './install.ts';
import {
  buildKedaAdapterImage,
  EXTERNAL_METRICS_API,
  KEDA_ADAPTER,
  kedaAdapterFiles,
  kedaAdapterManifest,
} from './keda-adapter.ts';

export const KEDA_NAMESPACE = 'keda';
export const KEDA_VERSION = ADDON_BINARY_VERSIONS['keda-operator'];
export const KEDA_IMAGE = `scalable-e2e/keda-operator:${KEDA_VERSION}`;
export const KEDA_ADAPTER_IMAGE = `scalable-e2e/keda-adapter:${KEDA_VERSION}`;
/**
 * The Secret both upstream Deployments mount at /certs (optional for the operator; its gRPC
 * server needs it, and the adapter serves and dials the operator with it).
 */
const CERT_SECRET = 'kedaorg-certs';
/** The Services whose names the certificate carries (config/manager, config/metrics-server). */
const KEDA_SERVICES = ['keda-operator', KEDA_ADAPTER];

/**
 * The names KEDA's own certificate rotator puts in the certificate (pkg/certificates'
 * getDNSNames, cluster domain cluster.local): the adapter dials the operator at
 * keda-operator.<ns>.svc.cluster.local:9666, the API server the adapter at
 * keda-metrics-apiserver.<ns>.svc, and each checks the other's certificate.
 */
export function kedaCertNames(namespace: string = KEDA_NAMESPACE): string[] {
  return KEDA_SERVICES.flatMap((svc) => [
    svc,
    `${svc}.${namespace}`,
    `${svc}.${namespace}.svc`,
    `${svc}.${namespace}.svc.cluster.local`,
  ]);
}

interface Container {
  name: string;
  image?: string;
  imagePullPolicy?: string;
  args?: string[];
  env?: { name: string; value?: string }[];
}

export interface KedaSources {
  /** Every file of config/crd/bases (KEDA's controllers watch each of these kinds). */
  readonly crds: readonly string[];
  /** config/rbac/role.yaml: the operator's ClusterRole. */
  readonly role: string;
  /** config/manager/manager.yaml: the operator's Deployment. */
  readonly manager: string;
  /** config/manager/service.yaml: the operator's Service (its gRPC metrics service, for the adapter). */
  readonly service: string;
}

/**
 * The manifest that installs KEDA's operator: its namespace (Pod Security restricted, which the
 * upstream Deployment meets), CRDs, ServiceAccount, ClusterRole and binding, Service and
 * Deployment.
 * No leader election (one replica) and no self-rotated certificates (they would need RBAC on
 * Secrets and webhooks we do not install); the certificates come in CERT_SECRET instead.
 */
export function kedaManifest(src: KedaSources, image: string): Doc[] {
  const ns = KEDA_NAMESPACE;
  const deployment = load(src.manager).find((d) => d.kind === 'Deployment');
  if (!deployment) throw new Error('no Deployment in KEDA config/manager/manager.yaml');
  const spec = (
    deployment as unknown as { spec: { template: { spec: { containers: Container[] } } } }
  ).spec.template.spec;
  for (const c of spec.containers) {
    c.image = image;
    c.imagePullPolicy = 'IfNotPresent';
    c.args = [
      '--leader-elect=false',
      '--zap-log-level=info',
      '--zap-encoder=console',
      '--enable-cert-rotation=false',
      '--cert-dir=/certs',
    ];
  }
  const role = load(src.role).find((d) => d.kind === 'ClusterRole');
  if (!role) throw new Error('no ClusterRole in KEDA config/rbac/role.yaml');
  const service = load(src.service).find((d) => d.kind === 'Service');
  if (!service) throw new Error('no Service in KEDA config/manager/service.yaml');
  return [
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: ns, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } },
    },
    ...src.crds.flatMap(load),
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'keda-operator', namespace: ns },
    },
    role,
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'keda-operator' },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: 'keda-operator',
      },
      subjects: [{ kind: 'ServiceAccount', name: 'keda-operator', namespace: ns }],
    },
    service,
    deployment,
  ];
}

async function kedaModuleDir(): Promise<string> {
  const info = await downloadModule(`github.com/kedacore/keda/v2@${KEDA_VERSION}`);
  if (!info.Dir) throw new Error('go mod download gave no directory for KEDA');
  return info.Dir;
}

async function kedaSources(moduleDir: string): Promise<KedaSources> {
  const dir = join(moduleDir, 'config');
  const bases = join(dir, 'crd', 'bases');
  const crdFiles = (await readdir(bases)).filter((f) => f.endsWith('.yaml')).sort();
  return {
    crds: await Promise.all(crdFiles.map((f) => readFile(join(bases, f), 'utf8'))),
    role: await readFile(join(dir, 'rbac', 'role.yaml'), 'utf8'),
    manager: await readFile(join(dir, 'manager', 'manager.yaml'), 'utf8'),
    service: await readFile(join(dir, 'manager', 'service.yaml'), 'utf8'),
  };
}

/**
 * The operator image: the devcluster's static keda-operator binary at upstream's /keda, on
 * the Debian base the project's images use, as a non-root user.
 */
export const buildKedaImage = (base: string): Promise<string> =>
  buildBinaryImage({ base, binary: binPath('keda-operator'), path: '/keda', tag: KEDA_IMAGE });

/** The adapter image (our build of cmd/adapter at upstream's /keda-adapter). */
export const buildKedaAdapter = (base: string): Promise<string> =>
  buildKedaAdapterImage(base, KEDA_ADAPTER_IMAGE);

/**
 * Installs KEDA's operator and metrics adapter (their images loaded) and waits until both
 * Deployments are available and the external metrics API answers.
 */
export async function installKeda(c: KindCluster): Promise<void> {
  const moduleDir = await kedaModuleDir();
  const pki = await mkdtemp(join(tmpdir(), 'keda-pki-'));
  try {
    const certs = await generateMutualTlsCerts(
      pki,
      'keda-operator',
      kedaCertNames().map((n) => `DNS:${n}`),
    );
    const docs = [
      ...kedaManifest(await kedaSources(moduleDir), KEDA_IMAGE),
      ...kedaAdapterManifest(
        await kedaAdapterFiles(moduleDir),
        KEDA_ADAPTER_IMAGE,
        await readFile(certs.caCert, 'utf8'),
      ),
    ];
    const deployments = docs.filter((d) => d.kind === 'Deployment');
    // The APIService last: registered before its server answers, it fails discovery for every
    // client meanwhile (and the namespace controller's deletions with it).
    const api = docs.filter((d) => d.kind === 'APIService');
    await applyDocs(
      c,
      docs.filter((d) => !deployments.includes(d) && !api.includes(d)),
    );
    // The Deployments after their certificates: started without them, KEDA exits and restarts.
    const secret = await kubectl(c, [
      'create',
      'secret',
      'generic',
      CERT_SECRET,
      '-n',
      KEDA_NAMESPACE,
      `--from-file=ca.crt=${certs.caCert}`,
      `--from-file=tls.crt=${certs.cert}`,
      `--from-file=tls.key=${certs.key}`,
      '--dry-run=client',
      '-o',
      'yaml',
    ]);
    await kubectl(c, ['apply', '-f', '-'], secret.stdout);
    await applyDocs(c, deployments);
    await Promise.all([
      waitAvailable(c, KEDA_NAMESPACE, 'keda-operator'),
      waitAvailable(c, KEDA_NAMESPACE, KEDA_ADAPTER),
    ]);
    await applyDocs(c, api);
    await waitApiService(c, EXTERNAL_METRICS_API);
  } finally {
    await rm(pki, { recursive: true, force: true });
  }
}
