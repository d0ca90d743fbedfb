// KEDA in the kind cluster, so a queue message can wake a worker from zero: the keda-operator
// the devcluster builds (its scalers trimmed to those we render, devcluster/keda-trim.ts) in a
// Debian image of ours, installed from KEDA's own kustomize bases in its module (config/crd,
// config/rbac, config/manager) with only the image, the pull policy and the flags changed.
// Only the operator runs: it alone scales a worker 0 <-> 1; its metrics adapter (for the HPA
// between 1 and max) is not built here, as in the devcluster.
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { generateCerts } from '../../../devcluster/certs.ts';
import { binPath } from '../../../devcluster/paths.ts';
import { downloadModule } from '../../../devcluster/toolchain.ts';
import { ADDON_BINARY_VERSIONS } from '../../../devcluster/versions.ts';
import { load, type Doc } from './addons.ts';
import { kubectl, type KindCluster } from './cluster.ts';
import { buildBinaryImage } from './install.ts';

export const KEDA_NAMESPACE = 'keda';
export const KEDA_VERSION = ADDON_BINARY_VERSIONS['keda-operator'];
export const KEDA_IMAGE = `scalable-e2e/keda-operator:${KEDA_VERSION}`;
/** The Secret the upstream Deployment mounts at /certs (optional there; its gRPC server needs it). */
const CERT_SECRET = 'kedaorg-certs';

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
}

/**
 * The manifest that installs KEDA's operator: its namespace (Pod Security restricted, which the
 * upstream Deployment meets), CRDs, ServiceAccount, ClusterRole and binding, and Deployment.
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
    deployment,
  ];
}

async function kedaSources(): Promise<KedaSources> {
  const info = await downloadModule(`github.com/kedacore/keda/v2@${KEDA_VERSION}`);
  const dir = join(info.Dir ?? '', 'config');
  const bases = join(dir, 'crd', 'bases');
  const crdFiles = (await readdir(bases)).filter((f) => f.endsWith('.yaml')).sort();
  return {
    crds: await Promise.all(crdFiles.map((f) => readFile(join(bases, f), 'utf8'))),
    role: await readFile(join(dir, 'rbac', 'role.yaml'), 'utf8'),
    manager: await readFile(join(dir, 'manager', 'manager.yaml'), 'utf8'),
  };
}

/**
 * The operator image: the devcluster's static keda-operator binary at upstream's /keda, on
 * the Debian base the project's images use, as a non-root user.
 */
export const buildKedaImage = (base: string): Promise<string> =>
  buildBinaryImage({ base, binary: binPath('keda-operator'), path: '/keda', tag: KEDA_IMAGE });

/** Installs KEDA (after its image is loaded) and waits for its operator to be available. */
export async function installKeda(c: KindCluster): Promise<void> {
  const docs = kedaManifest(await kedaSources(), KEDA_IMAGE);
  const apply = (part: Doc[]) =>
    kubectl(
      c,
      ['apply', '--server-side', '-f', '-'],
      part.map((d) => yaml.dump(d, { lineWidth: -1, noRefs: true })).join('---\n'),
    );
  // The Deployment last: started before its certificates exist, KEDA exits and restarts.
  await apply(docs.filter((d) => d.kind !== 'Deployment'));
  const pki = await mkdtemp(join(tmpdir(), 'keda-pki-'));
  try {
    const certs = await generateCerts(pki);
    const secret = await kubectl(c, [
      'create',
      'secret',
      'generic',
      CERT_SECRET,
      '-n',
      KEDA_NAMESPACE,
      `--from-file=ca.crt=${certs.caCert}`,
      `--from-file=tls.crt=${certs.serverCert}`,
      `--from-file=tls.key=${certs.serverKey}`,
      '--dry-run=client',
      '-o',
      'yaml',
    ]);
    await kubectl(c, ['apply', '-f', '-'], secret.stdout);
  } finally {
    await rm(pki, { recursive: true, force: true });
  }
  await apply(docs.filter((d) => d.kind === 'Deployment'));
  await kubectl(c, [
    'rollout',
    'status',
    'deployment/keda-operator',
    '-n',
    KEDA_NAMESPACE,
    '--timeout=180s',
  ]);
}
