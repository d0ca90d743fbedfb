// The kind cluster of one e2e run: create (1 control plane + 3 workers in zones a/b/c), load
// images, install the operator chart, measure memory, export logs, delete.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { run, type RunResult } from '../../../devcluster/exec.ts';
import { binPath } from '../../../devcluster/paths.ts';
import { POD_SUBNET } from './addons.ts';
import { ensureInotifyLimits } from './host-limits.ts';
import { ETCD_TAG } from './node-image.ts';
import { kindBin } from './toolchain.ts';

export const ZONES = ['zone-a', 'zone-b', 'zone-c'] as const;
export const OPERATOR_NAMESPACE = 'scalable-system';
export const RELEASE = 'scalable-operator';

/**
 * kind's cluster config. `local` (our node image) pins etcd's tag to the etcd built with the
 * control plane. failCgroupV1=false: Kubernetes >= 1.35 kubelets refuse cgroup v1 hosts
 * otherwise (harmless on cgroup v2).
 */
export function kindConfig(nodeImage: string | undefined, local: boolean): string {
  const node = (role: string, zone?: string) => ({
    role,
    ...(nodeImage ? { image: nodeImage } : {}),
    ...(zone ? { labels: { 'topology.kubernetes.io/zone': zone } } : {}),
  });
  const patches = ['kind: KubeletConfiguration\nfailCgroupV1: false\n'];
  if (local)
    patches.push(`kind: ClusterConfiguration\netcd:\n  local:\n    imageTag: "${ETCD_TAG}"\n`);
  return yaml.dump({
    kind: 'Cluster',
    apiVersion: 'kind.x-k8s.io/v1alpha4',
    networking: { podSubnet: POD_SUBNET },
    nodes: [node('control-plane'), ...ZONES.map((z) => node('worker', z))],
    kubeadmConfigPatches: patches,
  });
}

export interface KindCluster {
  readonly name: string;
  readonly kubeconfig: string;
  readonly workDir: string;
}

const kind = (args: string[]): Promise<RunResult> => run(kindBin('kind'), args);

export function kubectl(c: KindCluster, args: string[], input?: string): Promise<RunResult> {
  return run(binPath('kubectl'), ['--kubeconfig', c.kubeconfig, ...args], { input });
}

export function helm(c: KindCluster, args: string[]): Promise<RunResult> {
  return run(binPath('helm'), ['--kubeconfig', c.kubeconfig, ...args]);
}

export async function clusterExists(name: string): Promise<boolean> {
  const { stdout } = await kind(['get', 'clusters']);
  return stdout.split('\n').includes(name);
}

export async function createCluster(
  name: string,
  workDir: string,
  nodeImage: string | undefined,
  local: boolean,
): Promise<KindCluster> {
  await ensureInotifyLimits((m) => console.log(`[e2e] ${m}`));
  await mkdir(workDir, { recursive: true });
  const config = join(workDir, 'kind.yaml');
  const kubeconfig = join(workDir, 'kubeconfig');
  await writeFile(config, kindConfig(nodeImage, local));
  await run(
    kindBin('kind'),
    [
      'create',
      'cluster',
      '--name',
      name,
      '--config',
      config,
      '--kubeconfig',
      kubeconfig,
      '--wait',
      '5m',
    ],
    { inheritStderr: true },
  );
  const cluster = { name, kubeconfig, workDir };
  // kind --wait covers the control plane; the workers join a little later.
  await kubectl(cluster, ['wait', '--for=condition=Ready', 'nodes', '--all', '--timeout=300s']);
  return cluster;
}

/** An existing cluster (E2E_KEEP=1 left it): its kubeconfig written afresh. */
export async function attachCluster(name: string, workDir: string): Promise<KindCluster> {
  await mkdir(workDir, { recursive: true });
  const kubeconfig = join(workDir, 'kubeconfig');
  const { stdout } = await kind(['get', 'kubeconfig', '--name', name]);
  await writeFile(kubeconfig, stdout, { mode: 0o600 });
  return { name, kubeconfig, workDir };
}

/** Loads images into the workers only: the control plane is tainted, no app pod runs there. */
export async function loadImages(c: KindCluster, images: readonly string[]): Promise<void> {
  const { stdout } = await kind(['get', 'nodes', '--name', c.name]);
  const workers = stdout
    .split('\n')
    .map((n) => n.trim())
    .filter((n) => n !== '' && !n.endsWith('-control-plane'));
  await run(kindBin('kind'), [
    'load',
    'docker-image',
    '--name',
    c.name,
    '--nodes',
    workers.join(','),
    ...images,
  ]);
}

export async function exportLogs(c: KindCluster, dir: string): Promise<void> {
  await kind(['export', 'logs', '--name', c.name, dir]);
}

export async function deleteCluster(name: string): Promise<void> {
  await kind(['delete', 'cluster', '--name', name]);
}

/** Node containers' memory, as docker accounts it (the nodes' cgroups), summed. */
export async function nodesMemoryMiB(name: string): Promise<number> {
  const { stdout } = await run('docker', [
    'stats',
    '--no-stream',
    '--format',
    '{{.Name}} {{.MemUsage}}',
  ]);
  let total = 0;
  for (const line of stdout.split('\n')) {
    const [container, usage] = line.split(' ', 2);
    if (!container?.startsWith(`${name}-`) || !usage) continue;
    const m = /^([\d.]+)([KMG]i?B)/.exec(usage);
    if (!m) continue;
    const factor: Record<string, number> = {
      KiB: 1 / 1024,
      MiB: 1,
      GiB: 1024,
      kB: 1 / 1000,
      MB: 1,
      GB: 1000,
    };
    total += Number(m[1]) * (factor[m[2] ?? 'MiB'] ?? 1);
  }
  return Math.round(total);
}

/** Samples the nodes' memory every `everyMs` until stopped; returns the peak. */
export function memorySampler(name: string, everyMs = 15_000): { stop: () => Promise<number> } {
  let peak = 0;
  let busy: Promise<void> = Promise.resolve();
  const sample = () => {
    busy = nodesMemoryMiB(name).then(
      (m) => void (peak = Math.max(peak, m)),
      () => undefined,
    );
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    stop: async () => {
      clearInterval(timer);
      await busy;
      sample();
      await busy;
      return peak;
    },
  };
}
