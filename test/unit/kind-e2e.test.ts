// The pure parts of the kind e2e harness: add-on manifests, cluster config, node image switch.
import yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import {
  flannelManifest,
  kubeRouterManifest,
  POD_SUBNET,
  storageManifest,
} from '../e2e/support/addons.ts';
import { kindConfig } from '../e2e/support/cluster.ts';
import { KEDA_NAMESPACE, kedaManifest } from '../e2e/support/keda.ts';
import { metricsServerManifest } from '../e2e/support/metrics-server.ts';
import { nodeImageChoice } from '../e2e/support/node-image.ts';
import { restrictedViolations } from './pod-security.ts';

const FLANNEL = `---
kind: ConfigMap
apiVersion: v1
metadata: {name: kube-flannel-cfg, namespace: kube-flannel}
data:
  cni-conf.json: |
    {"name": "cbr0", "cniVersion": "1.0.0", "plugins": [{"type": "flannel"}]}
  net-conf.json: |
    {"Network": "10.244.0.0/16", "EnableNFTables": false, "Backend": {"Type": "vxlan"}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: kube-flannel-ds, namespace: kube-flannel}
spec:
  template:
    spec:
      initContainers:
      - {name: install-cni-plugin, image: ghcr.io/flannel-io/flannel-cni-plugin:v1, command: [cp], args: [-f, /flannel, /opt/cni/bin/flannel]}
      - {name: install-cni, image: ghcr.io/flannel-io/flannel:v0.28.10, command: [/opt/bin/install-conf]}
      containers:
      - {name: kube-flannel, image: ghcr.io/flannel-io/flannel:v0.28.10}
`;

type Docs = { kind: string; data?: Record<string, string>; spec?: unknown }[];

describe('kind e2e add-ons', () => {
  it('flannel: host-gw on the pod subnet, CNI config 0.3.1, our image everywhere, cp instead of install-conf', () => {
    const docs = yaml.loadAll(flannelManifest(FLANNEL, 'v0.28.10')) as Docs;
    const cm = docs.find((d) => d.kind === 'ConfigMap');
    expect(JSON.parse(cm?.data?.['net-conf.json'] ?? '')).toEqual({
      Network: POD_SUBNET,
      EnableNFTables: false,
      Backend: { Type: 'host-gw' },
    });
    expect(JSON.parse(cm?.data?.['cni-conf.json'] ?? '')).toMatchObject({ cniVersion: '0.3.1' });
    const ds = JSON.stringify(docs.find((d) => d.kind === 'DaemonSet'));
    expect(ds).not.toContain('ghcr.io');
    expect(ds.match(/scalable-e2e\/flannel:v0\.28\.10/g)).toHaveLength(3);
    expect(ds).not.toContain('install-conf');
    expect(ds).toContain('/etc/cni/net.d/10-flannel.conflist');
  });

  it('kube-router: the firewall alone, in-cluster credentials, no CNI installer, our image', () => {
    const upstream = `kind: ConfigMap
metadata: {name: kube-router-cfg}
---
kind: DaemonSet
spec:
  template:
    spec:
      serviceAccountName: kube-router
      initContainers: [{name: install-cni, image: docker.io/cloudnativelabs/kube-router}]
      containers:
      - name: kube-router
        image: docker.io/cloudnativelabs/kube-router
        args: [--run-router=true, --run-firewall=true]
        env: [{name: NODE_NAME}, {name: KUBE_ROUTER_CNI_CONF_FILE, value: x}]
        volumeMounts: [{name: lib-modules}, {name: kubeconfig}, {name: xtables-lock}, {name: cni-conf-dir}]
      volumes: [{name: lib-modules}, {name: kubeconfig}, {name: xtables-lock}, {name: cni-conf-dir}, {name: host-opt}]
---
kind: ClusterRole
metadata: {name: kube-router}
`;
    const docs = yaml.loadAll(kubeRouterManifest(upstream, 'v2.1.0')) as {
      kind: string;
      spec?: {
        template: { spec: Record<string, unknown> & { containers: Record<string, unknown>[] } };
      };
    }[];
    expect(docs.map((d) => d.kind)).toEqual(['DaemonSet', 'ClusterRole']);
    const pod = docs[0]?.spec?.template.spec;
    expect(pod?.['initContainers']).toBeUndefined();
    expect(pod?.['volumes']).toEqual([{ name: 'lib-modules' }, { name: 'xtables-lock' }]);
    expect(pod?.containers[0]).toMatchObject({
      image: 'scalable-e2e/kube-router:v2.1.0',
      args: expect.arrayContaining([
        '--run-router=false',
        '--run-firewall=true',
        '--run-service-proxy=false',
      ]),
      env: [{ name: 'NODE_NAME' }],
      volumeMounts: [{ name: 'lib-modules' }, { name: 'xtables-lock' }],
    });
  });

  it("storage: kind's manifest text with our provisioner and helper images", () => {
    const go =
      'package x\nconst defaultStorageManifest = `\nkind: Deployment\nimage: ` + storageProvisionerImage + `\nargs: [--helper-image, ` + storageHelperImage + `]\n`\n';
    expect(storageManifest(go, 'v0.0.30', 'trixie')).toBe(
      '\nkind: Deployment\nimage: scalable-e2e/local-path-provisioner:v0.0.30\nargs: [--helper-image, scalable-e2e/debian:trixie]\n',
    );
    expect(() => storageManifest('package x', 'v', 't')).toThrow(/defaultStorageManifest/);
  });
});

describe('kind e2e cluster config', () => {
  it('one control plane and three workers in zones a, b, c; cgroup v1 allowed; etcd tag only for our node image', () => {
    const local = yaml.load(kindConfig('scalable-e2e/kind-node:x', true)) as {
      nodes: { role: string; image?: string; labels?: Record<string, string> }[];
      kubeadmConfigPatches: string[];
      networking: { podSubnet: string };
    };
    expect(local.nodes.map((n) => [n.role, n.labels?.['topology.kubernetes.io/zone']])).toEqual([
      ['control-plane', undefined],
      ['worker', 'zone-a'],
      ['worker', 'zone-b'],
      ['worker', 'zone-c'],
    ]);
    expect(local.nodes.every((n) => n.image === 'scalable-e2e/kind-node:x')).toBe(true);
    expect(local.networking.podSubnet).toBe(POD_SUBNET);
    expect(local.kubeadmConfigPatches.join('\n')).toMatch(/failCgroupV1: false/);
    expect(local.kubeadmConfigPatches.join('\n')).toMatch(/imageTag: "3\.6\.\d+-0"/);
    const stock = yaml.load(kindConfig(undefined, false)) as typeof local;
    expect(stock.nodes.some((n) => n.image)).toBe(false);
    expect(stock.kubeadmConfigPatches.join('\n')).not.toMatch(/imageTag/);
  });

  it('E2E_NODE_IMAGE: unset builds ours, "stock" is kind\'s default, anything else is used as is', () => {
    expect(nodeImageChoice({})).toEqual({ kind: 'local' });
    expect(nodeImageChoice({ E2E_NODE_IMAGE: ' ' })).toEqual({ kind: 'local' });
    expect(nodeImageChoice({ E2E_NODE_IMAGE: 'stock' })).toEqual({ kind: 'stock' });
    expect(nodeImageChoice({ E2E_NODE_IMAGE: 'kindest/node:v1.36.0' })).toEqual({
      kind: 'given',
      image: 'kindest/node:v1.36.0',
    });
  });
});

// Shaped like KEDA v2.21's config/manager/manager.yaml and config/rbac/role.yaml.
const KEDA_MANAGER = `---
apiVersion: apps/v1
kind: Deployment
metadata: {name: keda-operator, namespace: keda}
spec:
  replicas: 1
  selector: {matchLabels: {app: keda-operator}}
  template:
    metadata: {labels: {app: keda-operator}}
    spec:
      securityContext: {runAsNonRoot: true}
      serviceAccountName: keda-operator
      containers:
        - name: keda-operator
          image: ghcr.io/kedacore/keda:latest
          command: [/keda]
          args: [--leader-elect, --enable-cert-rotation=true]
          imagePullPolicy: Always
          securityContext:
            runAsNonRoot: true
            capabilities: {drop: [ALL]}
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            seccompProfile: {type: RuntimeDefault}
          volumeMounts: [{mountPath: /certs, name: certificates, readOnly: true}]
      volumes: [{name: certificates, secret: {secretName: kedaorg-certs, optional: true}}]
`;
const KEDA_ROLE = `---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: keda-operator}
rules: [{apiGroups: [''], resources: [secrets], verbs: [get, list, watch]}]
`;
const KEDA_CRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: scaledobjects.keda.sh}
`;

describe('kind e2e KEDA', () => {
  type Doc = {
    kind: string;
    metadata: { name: string; namespace?: string; labels?: Record<string, string> };
    spec?: { template: { spec: Parameters<typeof restrictedViolations>[0] } };
    subjects?: unknown[];
  };
  const docs = kedaManifest(
    { crds: [KEDA_CRD], role: KEDA_ROLE, manager: KEDA_MANAGER },
    'scalable-e2e/keda-operator:v2.21.0',
  ) as unknown as Doc[];

  it("installs KEDA's own CRDs, ClusterRole and Deployment in a restricted namespace, the Deployment last", () => {
    expect(docs.map((d) => `${d.kind}/${d.metadata.name}`)).toEqual([
      `Namespace/${KEDA_NAMESPACE}`,
      'CustomResourceDefinition/scaledobjects.keda.sh',
      'ServiceAccount/keda-operator',
      'ClusterRole/keda-operator',
      'ClusterRoleBinding/keda-operator',
      'Deployment/keda-operator',
    ]);
    expect(docs[0]?.metadata.labels).toEqual({
      'pod-security.kubernetes.io/enforce': 'restricted',
    });
    expect(docs[4]?.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'keda-operator', namespace: KEDA_NAMESPACE },
    ]);
  });

  it('runs our image, never pulled, one replica without leader election or self-rotated certificates; restricted', () => {
    const pod = docs.at(-1)?.spec?.template.spec;
    const c = (pod?.containers ?? [])[0] as Record<string, unknown>;
    expect(c['image']).toBe('scalable-e2e/keda-operator:v2.21.0');
    expect(c['imagePullPolicy']).toBe('IfNotPresent');
    expect(c['args']).toEqual(
      expect.arrayContaining([
        '--leader-elect=false',
        '--enable-cert-rotation=false',
        '--cert-dir=/certs',
      ]),
    );
    expect(c['args']).not.toContain('--leader-elect');
    expect(restrictedViolations(pod as Parameters<typeof restrictedViolations>[0])).toEqual([]);
  });
});

const MS_DEPLOYMENT = `---
apiVersion: apps/v1
kind: Deployment
metadata: {name: metrics-server, namespace: kube-system}
spec:
  template:
    spec:
      containers:
        - name: metrics-server
          image: gcr.io/k8s-staging-metrics-server/metrics-server:master
          imagePullPolicy: IfNotPresent
          args: [--cert-dir=/tmp, --secure-port=10250]
          securityContext:
            readOnlyRootFilesystem: true
            runAsNonRoot: true
            runAsUser: 1000
            allowPrivilegeEscalation: false
            seccompProfile: {type: RuntimeDefault}
            capabilities: {drop: [ALL]}
`;
const MS_SERVICE = `---
apiVersion: v1
kind: Service
metadata: {name: metrics-server, namespace: kube-system}
spec:
  ports: [{name: https, port: 443, targetPort: https}]
`;

describe('kind e2e metrics-server', () => {
  type Doc = {
    kind: string;
    metadata: { labels?: Record<string, string> };
    spec: {
      selector?: Record<string, unknown>;
      template?: {
        metadata?: { labels?: Record<string, string> };
        spec: Parameters<typeof restrictedViolations>[0];
      };
    };
  };
  const docs = metricsServerManifest(
    [MS_DEPLOYMENT, MS_SERVICE],
    'scalable-e2e/metrics-server:v0.8.0',
  ) as unknown as Doc[];
  const [deployment, service] = docs;

  it("applies the base's commonLabels to every object, selector and pod template, as kustomize does", () => {
    const label = { 'k8s-app': 'metrics-server' };
    for (const d of docs) expect(d.metadata.labels).toEqual(label);
    expect(service?.spec.selector).toEqual(label);
    expect(deployment?.spec.selector).toEqual({ matchLabels: label });
    expect(deployment?.spec.template?.metadata?.labels).toEqual(label);
  });

  it("runs our image, never pulled, with upstream's flags and --kubelet-insecure-tls; restricted", () => {
    const pod = deployment?.spec.template?.spec;
    const c = (pod?.containers ?? [])[0] as Record<string, unknown>;
    expect(c['image']).toBe('scalable-e2e/metrics-server:v0.8.0');
    expect(c['imagePullPolicy']).toBe('IfNotPresent');
    expect(c['args']).toEqual(['--cert-dir=/tmp', '--secure-port=10250', '--kubelet-insecure-tls']);
    expect(restrictedViolations(pod as Parameters<typeof restrictedViolations>[0])).toEqual([]);
  });
});
