// The kind e2e cluster's binaries, built from the Go module proxy with the devcluster's build
// machinery (wrapper modules, shared Go build cache) into their own cache folder, once:
// the node's Kubernetes binaries go beside the control plane's (one version, one build).
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../../devcluster/exec.ts';
import { renderGoMod } from '../../../devcluster/gomod.ts';
import { withLock } from '../../../devcluster/lock.ts';
import { binPath, cacheRoot } from '../../../devcluster/paths.ts';
import {
  buildTarget,
  downloadModule,
  ensureBuilt,
  GO_DIRECTIVE,
  kubernetesNodeTarget,
  type Log,
  type Target,
} from '../../../devcluster/toolchain.ts';
import { KIND_VERSIONS as V, kindKey } from './versions.ts';

export const kindDir = (): string => join(cacheRoot(), kindKey());
export const kindBin = (name: string): string => join(kindDir(), 'bin', name);

const wrapper = (name: string) => async () =>
  renderGoMod({ module: `e2e.local/${name}`, go: GO_DIRECTIVE, require: {} });
const noFlags = async (): Promise<string[]> => [];

/** CoreDNS with only the plugins kubeadm's Corefile names (the full build compiles every cloud SDK). */
const COREDNS_PLUGINS = [
  'errors',
  'health',
  'ready',
  'kubernetes',
  'metrics',
  'forward',
  'cache',
  'loop',
  'reload',
  'loadbalance',
  'log',
];

function corednsMain(): string {
  const imports = COREDNS_PLUGINS.map((p) => `\t_ "github.com/coredns/coredns/plugin/${p}"`);
  return [
    "// Generated: CoreDNS with the plugins of kubeadm's Corefile only.",
    'package main',
    '',
    'import (',
    '\t"github.com/coredns/coredns/coremain"',
    ...imports,
    ')',
    '',
    'func main() { coremain.Run() }',
    '',
  ].join('\n');
}

/** flannel backends left out: their cloud SDKs are missing from the proxy or unneeded. */
const FLANNEL_DROPPED = ['alloc', 'extension', 'ipsec', 'tencentvpc', 'udp', 'wireguard'];

async function flannelMain(): Promise<string> {
  const info = await downloadModule(`github.com/flannel-io/flannel@${V.flannel}`);
  const text = await readFile(join(info.Dir ?? '', 'main.go'), 'utf8');
  const dropped = new RegExp(
    `^\\s*_ "github.com/flannel-io/flannel/pkg/backend/(${FLANNEL_DROPPED.join('|')})"\\s*$`,
    'gm',
  );
  return text.replace(dropped, '');
}

function targets(): Target[] {
  return [
    {
      name: 'kind',
      version: V.kind,
      packages: { kind: 'sigs.k8s.io/kind' },
      goMod: wrapper('kind'),
      ldflags: noFlags,
    },
    {
      name: 'containerd',
      version: V.containerd,
      packages: {
        containerd: 'github.com/containerd/containerd/v2/cmd/containerd',
        ctr: 'github.com/containerd/containerd/v2/cmd/ctr',
        'containerd-shim-runc-v2':
          'github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2',
      },
      // kind's base image leaves out the same snapshotters.
      tags: 'no_aufs,no_zfs,no_btrfs,no_devmapper',
      goMod: wrapper('containerd'),
      ldflags: async () => [
        `-X github.com/containerd/containerd/v2/version.Version=${V.containerd}`,
      ],
    },
    {
      name: 'crictl',
      version: V.crictl,
      packages: { crictl: 'sigs.k8s.io/cri-tools/cmd/crictl' },
      goMod: wrapper('crictl'),
      ldflags: async () => [`-X sigs.k8s.io/cri-tools/pkg/version.Version=${V.crictl}`],
    },
    {
      name: 'coredns',
      version: V.coredns,
      packages: { coredns: '.' },
      goMod: wrapper('coredns'),
      sources: async () => ({
        files: { 'main.go': corednsMain() },
        get: [`github.com/coredns/coredns@${V.coredns}`],
      }),
      ldflags: noFlags,
    },
    {
      name: 'flannel',
      version: V.flannel,
      packages: { flanneld: '.' },
      goMod: wrapper('flannel'),
      sources: async () => ({
        files: { 'main.go': await flannelMain() },
        get: [`github.com/flannel-io/flannel@${V.flannel}`],
      }),
      ldflags: async () => [`-X github.com/flannel-io/flannel/pkg/version.Version=${V.flannel}`],
    },
    {
      name: 'cni-plugins',
      version: V.cniPlugins,
      packages: { flannel: 'github.com/containernetworking/plugins/plugins/meta/flannel' },
      goMod: wrapper('cni-plugins'),
      ldflags: noFlags,
    },
    {
      name: 'kube-router',
      version: V.kubeRouter,
      packages: { 'kube-router': 'github.com/cloudnativelabs/kube-router/v2/cmd/kube-router' },
      goMod: wrapper('kube-router'),
      ldflags: async () => [
        `-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=${V.kubeRouter}`,
      ],
    },
    {
      name: 'local-path-provisioner',
      version: V.localPath,
      packages: { 'local-path-provisioner': 'github.com/rancher/local-path-provisioner' },
      goMod: wrapper('local-path-provisioner'),
      ldflags: async () => [`-X main.VERSION=${V.localPath}`],
    },
  ];
}

export const KIND_BINARIES = [
  'kind',
  'containerd',
  'ctr',
  'containerd-shim-runc-v2',
  'crictl',
  'coredns',
  'flanneld',
  'flannel',
  'kube-router',
  'local-path-provisioner',
  'pause',
] as const;

/** pause from the Kubernetes module's C source, static, as upstream builds it. */
async function buildPause(log: Log): Promise<void> {
  if (existsSync(kindBin('pause'))) return;
  const k8s = await downloadModule(`k8s.io/kubernetes@${binaryVersion()}`);
  const tmp = kindBin('pause.tmp');
  await run('gcc', [
    '-Os',
    '-Wall',
    '-Werror',
    '-static',
    `-DVERSION=v${V.pause}`,
    '-o',
    tmp,
    join(k8s.Dir ?? '', 'build/pause/linux/pause.c'),
  ]);
  await run('strip', [tmp]);
  await rename(tmp, kindBin('pause'));
  log(`pause ${V.pause}: built`);
}

function binaryVersion(): string {
  return kubernetesNodeTarget().version;
}

/**
 * Everything the kind cluster needs: with `nodeImage` false (a stock or given node image) only
 * kind itself besides the devcluster's kubectl and helm.
 */
export async function ensureKindBinaries(log: Log, nodeImage = true): Promise<void> {
  await ensureBuilt(log);
  await mkdir(join(kindDir(), 'bin'), { recursive: true });
  // One build at a time per cache: `npm test`'s background e2e:build and a separate e2e run
  // once compiled flannel into the same folder at once.
  await withLock(
    join(kindDir(), 'build.lock'),
    () => buildKindBinaries(log, nodeImage),
    BUILD_LOCK_MS,
  );
}

/** The longest a build waits for another one's lock: a cold build of everything. */
export const BUILD_LOCK_MS = 3 * 3600_000;

async function buildKindBinaries(log: Log, nodeImage: boolean): Promise<void> {
  const place = { root: kindDir(), out: kindBin };
  if (!nodeImage) {
    const [kind] = targets();
    if (kind) await buildTarget(kind, log, place);
    return;
  }
  await buildTarget(kubernetesNodeTarget(), log);
  for (const t of targets()) await buildTarget(t, log, place);
  await buildPause(log);
}

export const NODE_BINARIES = ['kubelet', 'kubeadm', 'kube-proxy'] as const;
export const nodeBin = (name: (typeof NODE_BINARIES)[number] | 'kubectl'): string =>
  binPath(name as Parameters<typeof binPath>[0]);
