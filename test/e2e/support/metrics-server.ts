// metrics-server in the kind cluster, so the web tier's HPA gets CPU figures: our build in a
// Debian image of ours, installed from the upstream kustomize base in its module
// (manifests/base, with its kustomization's commonLabels) with only the image, the pull
// policy and one flag changed: --kubelet-insecure-tls, as kind's kubelets serve a self-signed
// certificate.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { downloadModule } from '../../../devcluster/toolchain.ts';
import { load, type Doc } from './addons.ts';
import type { KindCluster } from './cluster.ts';
import { applyDocs, buildBinaryImage, waitApiService, waitAvailable } from './install.ts';
import { scaleBin } from './scale-toolchain.ts';
import { SCALE_VERSIONS } from './versions.ts';

export const METRICS_SERVER_IMAGE = `scalable-e2e/metrics-server:${SCALE_VERSIONS.metricsServer}`;
const BASE_FILES = ['apiservice.yaml', 'deployment.yaml', 'rbac.yaml', 'service.yaml'];
/** manifests/base/kustomization.yaml's commonLabels. */
const COMMON_LABELS = { 'k8s-app': 'metrics-server' };

interface PodSpec {
  containers: { name: string; image?: string; imagePullPolicy?: string; args?: string[] }[];
}
type Workload = Doc & {
  spec: {
    selector?: { matchLabels?: Record<string, string> };
    template: { metadata?: { labels?: Record<string, string> }; spec: PodSpec };
  };
};

/**
 * The base's objects with kustomize's commonLabels applied (labels, selectors, pod template),
 * our image, and --kubelet-insecure-tls added to upstream's flags.
 */
export function metricsServerManifest(baseFiles: readonly string[], image: string): Doc[] {
  return baseFiles.flatMap(load).map((doc) => {
    const meta = (doc.metadata ??= {});
    meta['labels'] = {
      ...(meta['labels'] as Record<string, string> | undefined),
      ...COMMON_LABELS,
    };
    if (doc.kind === 'Service') {
      const spec = doc['spec'] as { selector?: Record<string, string> };
      spec.selector = { ...spec.selector, ...COMMON_LABELS };
    }
    if (doc.kind === 'Deployment') {
      const spec = (doc as Workload).spec;
      spec.selector = { matchLabels: { ...spec.selector?.matchLabels, ...COMMON_LABELS } };
      spec.template.metadata = {
        ...spec.template.metadata,
        labels: { ...spec.template.metadata?.labels, ...COMMON_LABELS },
      };
      for (const c of spec.template.spec.containers) {
        c.image = image;
        c.imagePullPolicy = 'IfNotPresent';
        c.args = [...(c.args ?? []), '--kubelet-insecure-tls'];
      }
    }
    return doc;
  });
}

/** Our build at upstream's path (/metrics-server, its image's entrypoint). */
export const buildMetricsServerImage = (base: string): Promise<string> =>
  buildBinaryImage({
    base,
    binary: scaleBin('metrics-server'),
    path: '/metrics-server',
    tag: METRICS_SERVER_IMAGE,
  });

async function baseFiles(): Promise<string[]> {
  const info = await downloadModule(`sigs.k8s.io/metrics-server@${SCALE_VERSIONS.metricsServer}`);
  const dir = join(info.Dir ?? '', 'manifests', 'base');
  return Promise.all(BASE_FILES.map((f) => readFile(join(dir, f), 'utf8')));
}

/** Installs metrics-server (its image loaded) and waits until the metrics API answers. */
export async function installMetricsServer(c: KindCluster): Promise<void> {
  await applyDocs(c, metricsServerManifest(await baseFiles(), METRICS_SERVER_IMAGE));
  await waitAvailable(c, 'kube-system', 'metrics-server');
  await waitApiService(c, 'v1beta1.metrics.k8s.io');
}
