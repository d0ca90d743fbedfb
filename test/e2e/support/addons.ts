// The cluster add-ons kind applies from the node image (/kind/manifests/default-cni.yaml and
// default-storage.yaml), rendered from the upstream manifests in the Go module zips with only
// the images (and flannel's backend) changed. Pure functions of the manifest texts.
import yaml from 'js-yaml';

export const ADDON_IMAGES = {
  flannel: 'scalable-e2e/flannel',
  kubeRouter: 'scalable-e2e/kube-router',
  localPath: 'scalable-e2e/local-path-provisioner',
  helper: 'scalable-e2e/debian',
} as const;

/** kind's default pod subnet; flannel's Network must equal it. */
export const POD_SUBNET = '10.244.0.0/16';

export type Doc = Record<string, unknown> & {
  kind?: string;
  metadata?: Record<string, unknown> & { name?: string };
};
interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  imagePullPolicy?: string;
}
interface PodTemplateOwner {
  spec: { template: { spec: { initContainers?: Container[]; containers: Container[] } } };
}

/** The objects of a multi-document YAML text. */
export const load = (text: string): Doc[] =>
  yaml.loadAll(text).filter((d): d is Doc => typeof d === 'object' && d !== null);
const dump = (docs: readonly Doc[]): string =>
  docs.map((d) => yaml.dump(d, { lineWidth: -1, noRefs: true })).join('---\n');

function containersOf(doc: Doc): Container[] {
  const spec = (doc as unknown as PodTemplateOwner).spec.template.spec;
  return [...(spec.initContainers ?? []), ...spec.containers];
}

/**
 * flannel in host-gw mode (every kind node is on one docker bridge), its CNI config at
 * cniVersion 0.3.1 (the v0.9.1 meta plugin's library stops at 0.4.0), every image ours.
 */
export function flannelManifest(upstream: string, tag: string): string {
  const docs = load(upstream).map((doc) => {
    if (doc.kind === 'ConfigMap') {
      const data = doc['data'] as Record<string, string>;
      const cni = JSON.parse(data['cni-conf.json'] ?? '{}') as Record<string, unknown>;
      const net = JSON.parse(data['net-conf.json'] ?? '{}') as Record<string, unknown>;
      doc['data'] = {
        'cni-conf.json': JSON.stringify({ ...cni, cniVersion: '0.3.1' }, null, 2),
        'net-conf.json': JSON.stringify(
          { ...net, Network: POD_SUBNET, Backend: { Type: 'host-gw' } },
          null,
          2,
        ),
      };
    }
    if (doc.kind === 'DaemonSet') {
      for (const c of containersOf(doc)) {
        c.image = `${ADDON_IMAGES.flannel}:${tag}`;
        c.imagePullPolicy = 'IfNotPresent';
        // Upstream's install-conf helper is a copy with extra checks; cp does the same here.
        if (c.name === 'install-cni') {
          c.command = ['cp'];
          c.args = ['-f', '/etc/kube-flannel/cni-conf.json', '/etc/cni/net.d/10-flannel.conflist'];
        }
      }
    }
    return doc;
  });
  return dump(docs);
}

interface Volume {
  name: string;
}
interface PodSpecDoc {
  initContainers?: Container[];
  containers: (Container & {
    env?: { name: string }[];
    volumeMounts?: Volume[];
    resources?: unknown;
  })[];
  volumes?: Volume[];
}

/** Volumes kube-router's firewall keeps: the modules it may load and the iptables lock. */
const KUBE_ROUTER_VOLUMES = ['lib-modules', 'xtables-lock'];

/**
 * kube-router as NetworkPolicy enforcer only (iptables + ipset; flannel routes, kube-proxy
 * serves Services), from its kubeadm manifest: its RBAC as is; the DaemonSet without its CNI
 * installer and host kubeconfig (the in-cluster ServiceAccount instead), our image.
 */
export function kubeRouterManifest(upstream: string, tag: string): string {
  const docs = load(upstream)
    .filter((doc) => doc.kind !== 'ConfigMap')
    .map((doc) => {
      if (doc.kind !== 'DaemonSet') return doc;
      const spec = (doc as unknown as { spec: { template: { spec: PodSpecDoc } } }).spec.template
        .spec;
      delete spec.initContainers;
      spec.volumes = (spec.volumes ?? []).filter((v) => KUBE_ROUTER_VOLUMES.includes(v.name));
      for (const c of spec.containers) {
        c.image = `${ADDON_IMAGES.kubeRouter}:${tag}`;
        c.imagePullPolicy = 'IfNotPresent';
        c.args = [
          '--run-router=false',
          '--run-firewall=true',
          '--run-service-proxy=false',
          '--health-port=20244',
        ];
        c.env = (c.env ?? []).filter((e) => e.name !== 'KUBE_ROUTER_CNI_CONF_FILE');
        c.volumeMounts = (c.volumeMounts ?? []).filter((m) => KUBE_ROUTER_VOLUMES.includes(m.name));
        c.resources = { requests: { cpu: '50m', memory: '64Mi' } };
      }
      return doc;
    });
  return dump(docs);
}

/** kind's own local-path storage manifest (a Go raw string in pkg/build/nodeimage). */
export function storageManifest(constStorageGo: string, tag: string, helperTag: string): string {
  const start = constStorageGo.indexOf('const defaultStorageManifest = `');
  if (start < 0) throw new Error('no defaultStorageManifest in kind const_storage.go');
  const body = constStorageGo.slice(start + 'const defaultStorageManifest = `'.length);
  const end = body.lastIndexOf('`');
  return body
    .slice(0, end)
    .replaceAll('` + storageProvisionerImage + `', `${ADDON_IMAGES.localPath}:${tag}`)
    .replaceAll('` + storageHelperImage + `', `${ADDON_IMAGES.helper}:${helperTag}`);
}
