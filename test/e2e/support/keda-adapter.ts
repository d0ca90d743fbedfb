// KEDA's metrics API server ("adapter") in the kind cluster, so the HPA KEDA makes for a
// ScaledObject gets the queue's backlog as an external metric and scales the workers 1 -> N
// (KEDA's operator alone goes 0 <-> 1). cmd/adapter of the same module, version and trimmed
// tree as the operator (scale-toolchain.ts), in a Debian image of ours, installed from KEDA's
// own config/metrics-server (the files its kustomization lists: RBAC, Deployment, Service,
// APIService v1beta1.external.metrics.k8s.io) with only the image, the pull policy and the
// certificates changed. It serves with the operator's certificate Secret (keda.ts), whose one
// key pair is both the API server's serving certificate and the mTLS client certificate
// for the operator's gRPC metrics service, as KEDA's own rotator makes it; upstream's
// rotator also writes the CA into the APIService, which we do here instead.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { load, type Doc } from './addons.ts';
import { buildBinaryImage } from './install.ts';
import { scaleBin } from './scale-toolchain.ts';

export const KEDA_ADAPTER = 'keda-metrics-apiserver';
/** The aggregated API the adapter serves (its APIService's name). */
export const EXTERNAL_METRICS_API = 'v1beta1.external.metrics.k8s.io';

interface Container {
  name: string;
  image?: string;
  imagePullPolicy?: string;
}
type Workload = Doc & { spec: { template: { spec: { containers: Container[] } } } };

/** The files config/metrics-server/kustomization.yaml lists, in its order. */
export function kustomizationResources(kustomization: string): string[] {
  const k = yaml.load(kustomization) as { resources?: unknown } | null;
  const resources = k?.resources;
  if (!Array.isArray(resources) || resources.length === 0)
    throw new Error('KEDA config/metrics-server/kustomization.yaml lists no resources');
  return resources.map(String);
}

/**
 * KEDA's config/metrics-server objects with our image (never pulled) in the Deployment and
 * the CA that signed the adapter's certificate (PEM) in the APIService, which upstream leaves
 * to the operator's certificate rotation (off here: keda.ts). Everything else as upstream:
 * its flags already read the certificates from the operator's Secret mounted at /certs.
 */
export function kedaAdapterManifest(files: readonly string[], image: string, caPem: string): Doc[] {
  const docs = files.flatMap(load);
  const deployment = docs.find((d) => d.kind === 'Deployment');
  if (!deployment) throw new Error('no Deployment in KEDA config/metrics-server');
  for (const c of (deployment as Workload).spec.template.spec.containers) {
    c.image = image;
    c.imagePullPolicy = 'IfNotPresent';
  }
  const api = docs.find(
    (d) => d.kind === 'APIService' && d.metadata?.name === EXTERNAL_METRICS_API,
  );
  if (!api) throw new Error(`no APIService ${EXTERNAL_METRICS_API} in KEDA config/metrics-server`);
  const spec = api['spec'] as Record<string, unknown>;
  if (spec['insecureSkipTLSVerify'] === true)
    throw new Error(`KEDA's APIService ${EXTERNAL_METRICS_API} skips TLS verification`);
  spec['caBundle'] = Buffer.from(caPem).toString('base64');
  return docs;
}

/** config/metrics-server's files, as its kustomization lists them. */
export async function kedaAdapterFiles(moduleDir: string): Promise<string[]> {
  const dir = join(moduleDir, 'config', 'metrics-server');
  const names = kustomizationResources(await readFile(join(dir, 'kustomization.yaml'), 'utf8'));
  return Promise.all(names.map((f) => readFile(join(dir, f), 'utf8')));
}

/** The image: our build at upstream's path (/keda-adapter, the Deployment's command). */
export const buildKedaAdapterImage = (base: string, tag: string): Promise<string> =>
  buildBinaryImage({ base, binary: scaleBin('keda-adapter'), path: '/keda-adapter', tag });
