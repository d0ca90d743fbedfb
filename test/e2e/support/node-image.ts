// The kind node image: assembled locally by test/e2e/node-image/build.sh (no registry needed)
// and cached under a content key, or the stock kindest/node on machines with a registry.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../../../devcluster/exec.ts';
import { withLock } from '../../../devcluster/lock.ts';
import { binPath } from '../../../devcluster/paths.ts';
import { downloadModule } from '../../../devcluster/toolchain.ts';
import { BINARY_VERSIONS } from '../../../devcluster/versions.ts';
import { ADDON_IMAGES, flannelManifest, kubeRouterManifest, storageManifest } from './addons.ts';
import { BUILD_LOCK_MS, kindBin, kindDir } from './toolchain.ts';
import { KIND_VERSIONS as V } from './versions.ts';

const here = dirname(fileURLToPath(import.meta.url));
const buildScript = join(here, '..', 'node-image', 'build.sh');
const oomScript = join(here, '..', 'node-image', 'restrict-oom-score-adj.sh');

/** etcd's image tag in the node: the devcluster's etcd, named the way kubeadm names its tags. */
export const ETCD_TAG = `${BINARY_VERSIONS.etcd.replace(/^v/, '')}-0`;
export const HELPER_TAG = 'trixie';

/**
 * E2E_NODE_IMAGE=stock uses kind's own default node image (kindest/node, pulled from Docker
 * Hub); any other non-empty value names a node image to use as is; unset builds ours.
 */
export type NodeImageChoice =
  { kind: 'local' } | { kind: 'stock' } | { kind: 'given'; image: string };

export function nodeImageChoice(env: NodeJS.ProcessEnv = process.env): NodeImageChoice {
  const v = env['E2E_NODE_IMAGE']?.trim();
  if (!v) return { kind: 'local' };
  if (v === 'stock') return { kind: 'stock' };
  return { kind: 'given', image: v };
}

async function moduleFile(spec: string, file: string): Promise<string> {
  const info = await downloadModule(spec);
  return readFile(join(info.Dir ?? '', file), 'utf8');
}

interface Manifests {
  cni: string;
  storage: string;
}

async function renderManifests(): Promise<Manifests> {
  const [flannel, kubeRouter, storage] = await Promise.all([
    moduleFile(`github.com/flannel-io/flannel@${V.flannel}`, 'Documentation/kube-flannel.yml'),
    moduleFile(
      `github.com/cloudnativelabs/kube-router/v2@${V.kubeRouter}`,
      'daemonset/kubeadm-kuberouter.yaml',
    ),
    moduleFile(`sigs.k8s.io/kind@${V.kind}`, 'pkg/build/nodeimage/const_storage.go'),
  ]);
  return {
    cni:
      flannelManifest(flannel, V.flannel) + '---\n' + kubeRouterManifest(kubeRouter, V.kubeRouter),
    storage: storageManifest(storage, V.localPath, HELPER_TAG),
  };
}

/** The trixie base scripts/images.sh uses (built there when no registry is reachable). */
export async function debianBase(): Promise<string> {
  const candidates = [
    process.env['SCALABLE_IMAGE_BASE'],
    'debian:trixie-slim',
    'scalable-local/debian:trixie',
  ];
  for (const c of candidates) {
    if (!c) continue;
    const ok = await run('docker', ['image', 'inspect', '--format', '{{.Id}}', c]).then(
      (r) => r.stdout.trim(),
      () => '',
    );
    if (ok) return c;
  }
  throw new Error(
    'no Debian trixie base image: run `npm run images` first (it builds one offline)',
  );
}

/** Builds the node image unless one with the same content key exists; returns its tag. */
export async function ensureNodeImage(log: (m: string) => void): Promise<string> {
  await mkdir(kindDir(), { recursive: true });
  // Two runs building the same tag at once would both pay for it; the second waits and finds it.
  return withLock(join(kindDir(), 'node-image.lock'), () => nodeImage(log), BUILD_LOCK_MS);
}

async function nodeImage(log: (m: string) => void): Promise<string> {
  const base = await debianBase();
  const baseId = (
    await run('docker', ['image', 'inspect', '--format', '{{.Id}}', base])
  ).stdout.trim();
  const manifests = await renderManifests();
  const key = createHash('sha256')
    .update(
      JSON.stringify({
        V,
        BINARY_VERSIONS,
        baseId,
        manifests,
        build: await readFile(buildScript, 'utf8'),
        oom: await readFile(oomScript, 'utf8'),
      }),
    )
    .digest('hex')
    .slice(0, 12);
  const tag = `scalable-e2e/kind-node:${BINARY_VERSIONS.kubernetes}-${key}`;
  const exists = await run('docker', ['image', 'inspect', tag]).then(
    () => true,
    () => false,
  );
  if (exists) {
    log(`node image ${tag}: cached`);
    return tag;
  }
  const dir = await mkdtemp(join(tmpdir(), 'kind-manifests-'));
  try {
    await writeFile(join(dir, 'default-cni.yaml'), manifests.cni);
    await writeFile(join(dir, 'default-storage.yaml'), manifests.storage);
    const kind = await downloadModule(`sigs.k8s.io/kind@${V.kind}`);
    log(`node image ${tag}: building`);
    await run('bash', [buildScript], {
      inheritStderr: true,
      env: {
        ...process.env,
        BASE: base,
        KIND_BIN: dirname(kindBin('kind')),
        K8S_BIN: dirname(binPath('kubectl')),
        KIND_FILES: join(kind.Dir ?? '', 'images/base/files'),
        MANIFESTS: dir,
        OUT: tag,
        K8S_VERSION: BINARY_VERSIONS.kubernetes,
        ETCD_TAG,
        COREDNS_VERSION: V.coredns,
        PAUSE_VERSION: V.pause,
        FLANNEL_IMAGE: `${ADDON_IMAGES.flannel}:${V.flannel}`,
        KUBE_ROUTER_IMAGE: `${ADDON_IMAGES.kubeRouter}:${V.kubeRouter}`,
        LOCAL_PATH_IMAGE: `${ADDON_IMAGES.localPath}:${V.localPath}`,
        HELPER_IMAGE: `${ADDON_IMAGES.helper}:${HELPER_TAG}`,
      },
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  await pruneNodeImages(tag, log);
  return tag;
}

/**
 * Removes the node images of earlier content keys (about 1 GB each): a change of version or
 * manifest would otherwise leave one behind per build. One still used by a kept cluster's
 * containers is refused by Docker and stays.
 */
export async function pruneNodeImages(keep: string, log: (m: string) => void): Promise<void> {
  const repo = keep.slice(0, keep.lastIndexOf(':'));
  const { stdout } = await run('docker', [
    'image',
    'ls',
    repo,
    '--format',
    '{{.Repository}}:{{.Tag}}',
  ]);
  for (const old of stdout.split('\n').map((l) => l.trim())) {
    if (old === '' || old === keep) continue;
    await run('docker', ['image', 'rm', old]).then(
      () => log(`node image ${old}: removed (superseded by ${keep})`),
      () => log(`node image ${old}: kept (still in use)`),
    );
  }
}
