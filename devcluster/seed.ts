// An etcd data directory that already holds the upstream CRDs. Creating 27 large CRDs costs the
// API server ~15 s of schema and CEL compilation; loading them from storage at start costs ~1 s.
// Made once per set of CRD versions and copied into each new cluster.
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { certPaths, generateCerts, readClientTls } from './certs.ts';
import { apiserverArgs, etcdArgs, type Layout, type Ports } from './components.ts';
import { ensureCrdFiles, setOptionalCrds } from './crds.ts';
import { probe, waitFor } from './health.ts';
import { renderKubeconfig } from './kubeconfig.ts';
import { withLock } from './lock.ts';
import { binPath, crdDir, stagesPath } from './paths.ts';
import { freePorts } from './ports.ts';
import { startProcess, stopProcess, type Started } from './processes.ts';
import type { Log } from './toolchain.ts';

export function seedDir(): string {
  return join(crdDir(), 'etcd-seed');
}

export function hasSeed(): boolean {
  return existsSync(join(seedDir(), 'member'));
}

/** Makes the seed if missing: a throwaway etcd + kube-apiserver, the CRDs, a clean stop. */
export async function ensureSeed(log: Log): Promise<void> {
  if (hasSeed()) return;
  await ensureCrdFiles(log);
  await withLock(join(crdDir(), 'seed.lock'), async () => {
    if (hasSeed()) return;
    const start = Date.now();
    log('seeding etcd with the upstream CRDs (once per build)');
    const dir = join(crdDir(), 'seed.tmp');
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const [etcdClient = 0, etcdPeer = 0, apiserver = 0] = await freePorts(3);
    const ports: Ports = { etcdClient, etcdPeer, apiserver, controllerManager: 0, scheduler: 0 };
    const layout: Layout = {
      certs: certPaths(dir),
      etcdData: join(dir, 'etcd'),
      kubeconfig: join(dir, 'kubeconfig'),
      kwokStages: stagesPath(),
    };
    const started: Started[] = [];
    try {
      started.push(
        startProcess('etcd', binPath('etcd'), etcdArgs(ports, layout), join(dir, 'etcd.log')),
      );
      await generateCerts(dir);
      const tls = await readClientTls(layout.certs);
      const server = `https://127.0.0.1:${apiserver}`;
      await writeFile(layout.kubeconfig, renderKubeconfig(server, tls));
      started.push(
        startProcess(
          'kube-apiserver',
          binPath('kube-apiserver'),
          apiserverArgs(ports, layout),
          join(dir, 'kube-apiserver.log'),
        ),
      );
      await waitFor(
        'seed kube-apiserver',
        async () => (await probe(`${server}/readyz`, tls)) === 200,
        120_000,
        () => `See ${dir}`,
      );
      await setOptionalCrds(layout.kubeconfig, true, log);
      // Stop in order; etcd's clean shutdown leaves a consistent data directory.
      for (const p of [...started].reverse()) await stopProcess(p, 30_000);
      await rename(layout.etcdData, seedDir());
      await rm(dir, { recursive: true, force: true });
      log(`etcd seed ready in ${((Date.now() - start) / 1000).toFixed(1)}s`);
    } catch (err) {
      for (const p of [...started].reverse()) await stopProcess(p).catch(() => undefined);
      throw err;
    }
  });
}
