// The pure parts of the kind e2e harness: add-on manifests, cluster config, node image switch.
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import yaml from 'js-yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { generateCerts, generateMutualTlsCerts } from '../../devcluster/certs.ts';
import {
  flannelManifest,
  kubeRouterManifest,
  POD_SUBNET,
  storageManifest,
} from '../e2e/support/addons.ts';
import { kindConfig } from '../e2e/support/cluster.ts';
import { KEDA_NAMESPACE, kedaCertNames, kedaManifest } from '../e2e/support/keda.ts';
import {
  EXTERNAL_METRICS_API,
  kedaAdapterManifest,
  kustomizationResources,
} from '../e2e/support/keda-adapter.ts';
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
const KEDA_SERVICE = `---
apiVersion: v1
kind: Service
metadata: {name: keda-operator, namespace: keda}
spec:
  ports: [{name: metricsservice, port: 9666, targetPort: 9666}, {name: metrics, port: 8080, targetPort: 8080}]
  selector: {app: keda-operator}
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
    { crds: [KEDA_CRD], role: KEDA_ROLE, manager: KEDA_MANAGER, service: KEDA_SERVICE },
    'scalable-e2e/keda-operator:v2.21.0',
  ) as unknown as Doc[];

  it("installs KEDA's own CRDs, ClusterRole, Service and Deployment in a restricted namespace, the Deployment last", () => {
    expect(docs.map((d) => `${d.kind}/${d.metadata.name}`)).toEqual([
      `Namespace/${KEDA_NAMESPACE}`,
      'CustomResourceDefinition/scaledobjects.keda.sh',
      'ServiceAccount/keda-operator',
      'ClusterRole/keda-operator',
      'ClusterRoleBinding/keda-operator',
      'Service/keda-operator',
      'Deployment/keda-operator',
    ]);
    // The adapter dials the operator's gRPC metrics service through it, as upstream's is.
    expect(docs[5]).toEqual(yaml.load(KEDA_SERVICE));
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

// Shaped like KEDA v2.21's config/metrics-server (kustomization, Deployment, APIService).
const ADAPTER_KUSTOMIZATION = `resources:
- role.yaml
- role_binding.yaml
- deployment.yaml
- service.yaml
- api_service.yaml
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
images:
- {name: ghcr.io/kedacore/keda-metrics-apiserver, newName: ghcr.io/kedacore/keda-metrics-apiserver, newTag: main}
`;
const ADAPTER_ROLE = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: keda-external-metrics-reader}
rules: [{apiGroups: [external.metrics.k8s.io], resources: ['*'], verbs: ['*']}]
`;
const ADAPTER_BINDINGS = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: keda-system-auth-delegator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: 'system:auth-delegator'}
subjects: [{kind: ServiceAccount, name: keda-operator, namespace: keda}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: keda-auth-reader, namespace: kube-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: extension-apiserver-authentication-reader}
subjects: [{kind: ServiceAccount, name: keda-operator, namespace: keda}]
`;
const ADAPTER_DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata: {name: keda-metrics-apiserver, namespace: keda}
spec:
  replicas: 1
  selector: {matchLabels: {app: keda-metrics-apiserver}}
  template:
    metadata: {labels: {app: keda-metrics-apiserver}}
    spec:
      securityContext: {runAsNonRoot: true}
      serviceAccountName: keda-operator
      containers:
        - name: keda-metrics-apiserver
          image: ghcr.io/kedacore/keda-metrics-apiserver:latest
          imagePullPolicy: Always
          command: [/keda-adapter]
          args: [--secure-port=6443, --zap-log-level=error, --client-ca-file=/certs/ca.crt, --tls-cert-file=/certs/tls.crt, --tls-private-key-file=/certs/tls.key, --cert-dir=/certs]
          volumeMounts: [{mountPath: /tmp, name: temp-vol}, {mountPath: /certs, name: certificates, readOnly: true}]
          securityContext:
            runAsNonRoot: true
            capabilities: {drop: [ALL]}
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            seccompProfile: {type: RuntimeDefault}
      volumes: [{name: temp-vol, emptyDir: {}}, {name: certificates, secret: {defaultMode: 420, secretName: kedaorg-certs}}]
`;
const ADAPTER_SERVICE = `---
apiVersion: v1
kind: Service
metadata: {name: keda-metrics-apiserver, namespace: keda}
spec:
  ports: [{name: https, port: 443, targetPort: 6443}]
  selector: {app: keda-metrics-apiserver}
`;
const ADAPTER_API = `apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.external.metrics.k8s.io}
spec:
  service: {name: keda-metrics-apiserver, namespace: keda}
  group: external.metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
`;
const ADAPTER_FILES = [
  ADAPTER_ROLE,
  ADAPTER_BINDINGS,
  ADAPTER_DEPLOYMENT,
  ADAPTER_SERVICE,
  ADAPTER_API,
];
const CA_PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

describe('kind e2e KEDA metrics adapter', () => {
  type Doc = {
    kind: string;
    metadata: { name: string };
    spec?: Record<string, unknown> & {
      template?: { spec: Parameters<typeof restrictedViolations>[0] };
    };
  };
  const image = 'scalable-e2e/keda-adapter:v2.21.0';
  const docs = kedaAdapterManifest(ADAPTER_FILES, image, CA_PEM) as unknown as Doc[];
  const upstream = ADAPTER_FILES.flatMap((f) => yaml.loadAll(f)) as Doc[];

  it("reads the files config/metrics-server's kustomization lists, in its order", () => {
    expect(kustomizationResources(ADAPTER_KUSTOMIZATION)).toEqual([
      'role.yaml',
      'role_binding.yaml',
      'deployment.yaml',
      'service.yaml',
      'api_service.yaml',
    ]);
    expect(() => kustomizationResources('kind: Kustomization\n')).toThrow(/lists no resources/);
  });

  it("keeps every upstream object; only the Deployment's image and pull policy and the APIService's CA change", () => {
    expect(docs.map((d) => `${d.kind}/${d.metadata.name}`)).toEqual([
      'ClusterRole/keda-external-metrics-reader',
      'ClusterRoleBinding/keda-system-auth-delegator',
      'RoleBinding/keda-auth-reader',
      'Deployment/keda-metrics-apiserver',
      'Service/keda-metrics-apiserver',
      `APIService/${EXTERNAL_METRICS_API}`,
    ]);
    const changed = (d: Doc) => d.kind === 'Deployment' || d.kind === 'APIService';
    expect(docs.filter((d) => !changed(d))).toEqual(upstream.filter((d) => !changed(d)));

    const api = docs.find((d) => d.kind === 'APIService');
    expect(Buffer.from(String(api?.spec?.['caBundle']), 'base64').toString()).toBe(CA_PEM);
    expect(api?.spec).toEqual({
      ...upstream.find((d) => d.kind === 'APIService')?.spec,
      caBundle: api?.spec?.['caBundle'],
    });
  });

  it("runs our image, never pulled, with upstream's command, flags and certificate Secret; restricted", () => {
    const pod = docs.find((d) => d.kind === 'Deployment')?.spec?.template?.spec;
    const up = upstream.find((d) => d.kind === 'Deployment')?.spec?.template?.spec;
    const [c] = (pod?.['containers'] ?? []) as Record<string, unknown>[];
    const [u] = (up?.['containers'] ?? []) as Record<string, unknown>[];
    expect(c).toEqual({ ...u, image, imagePullPolicy: 'IfNotPresent' });
    expect(pod?.['volumes']).toEqual(up?.['volumes']);
    expect(restrictedViolations(pod as Parameters<typeof restrictedViolations>[0])).toEqual([]);
  });

  it('refuses config it cannot install as told: no Deployment, no APIService, or one that skips TLS checks', () => {
    expect(() => kedaAdapterManifest([ADAPTER_API], image, CA_PEM)).toThrow(/no Deployment/);
    expect(() => kedaAdapterManifest([ADAPTER_DEPLOYMENT], image, CA_PEM)).toThrow(
      /no APIService v1beta1\.external\.metrics\.k8s\.io/,
    );
    const insecure = ADAPTER_API.replace('  group:', '  insecureSkipTLSVerify: true\n  group:');
    expect(() => kedaAdapterManifest([ADAPTER_DEPLOYMENT, insecure], image, CA_PEM)).toThrow(
      /skips TLS verification/,
    );
  });

  it("names in the certificate: KEDA's rotator's four per Service, for the operator and the adapter", () => {
    expect(kedaCertNames('keda')).toEqual([
      'keda-operator',
      'keda-operator.keda',
      'keda-operator.keda.svc',
      'keda-operator.keda.svc.cluster.local',
      'keda-metrics-apiserver',
      'keda-metrics-apiserver.keda',
      'keda-metrics-apiserver.keda.svc',
      'keda-metrics-apiserver.keda.svc.cluster.local',
    ]);
  });
});

describe('kind e2e KEDA certificate', () => {
  let dir = '';
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /**
   * One TLS handshake on loopback, each side checking the other against `ca`: undefined when
   * both accepted, else what the server said of the client's certificate or the client's error.
   */
  async function handshake(
    server: { cert: Buffer; key: Buffer },
    client: { cert: Buffer; key: Buffer },
    ca: Buffer,
    servername: string,
  ): Promise<string | undefined> {
    // The server reports its verdict on the client's certificate instead of hanging up.
    const srv = tls.createServer({ ...server, ca, requestCert: true, rejectUnauthorized: false });
    srv.on('secureConnection', (s) =>
      s.end(s.authorized ? 'ok' : `client refused: ${String(s.authorizationError)}`),
    );
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const { port } = srv.address() as AddressInfo;
    try {
      return await new Promise<string | undefined>((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port, servername, ...client, ca });
        let data = '';
        s.on('data', (d: Buffer) => (data += d.toString()));
        s.on('end', () => resolve(data === 'ok' ? undefined : data));
        s.on('error', (e) => resolve(e.message));
      });
    } finally {
      srv.close();
    }
  }

  it("one key pair serves both ends of mutual TLS under KEDA's names (the adapter dials the operator, the API server the adapter)", async () => {
    dir = await mkdtemp(join(tmpdir(), 'keda-certs-'));
    const names = kedaCertNames('keda');
    await mkdir(join(dir, 'keda'));
    await mkdir(join(dir, 'api'));
    const certs = await generateMutualTlsCerts(
      join(dir, 'keda'),
      'keda-operator',
      names.map((n) => `DNS:${n}`),
    );
    const [ca, cert, key] = await Promise.all(
      [certs.caCert, certs.cert, certs.key].map((f) => readFile(f)),
    );
    const pair = { cert: cert as Buffer, key: key as Buffer };
    expect(
      await handshake(pair, pair, ca as Buffer, 'keda-operator.keda.svc.cluster.local'),
    ).toBeUndefined();
    expect(
      await handshake(pair, pair, ca as Buffer, 'keda-metrics-apiserver.keda.svc'),
    ).toBeUndefined();
    // The checks are real: another name is refused ...
    expect(await handshake(pair, pair, ca as Buffer, 'kubernetes.default.svc')).toMatch(
      /altnames|Hostname/i,
    );
    // ... and so is a serving-only certificate (the devcluster's API server one) as a client.
    const api = await generateCerts(join(dir, 'api'));
    const [apiCa, apiCert, apiKey] = await Promise.all(
      [api.caCert, api.serverCert, api.serverKey].map((f) => readFile(f)),
    );
    const serving = { cert: apiCert as Buffer, key: apiKey as Buffer };
    expect(await handshake(serving, serving, apiCa as Buffer, 'kubernetes')).toMatch(
      /client refused: INVALID_PURPOSE/,
    );
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
