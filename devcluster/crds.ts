// The upstream CRDs (KEDA, Prometheus Operator, Gateway API, Traefik), copied out of their Go
// modules' zips into the cache and applied to or removed from a running API server.
import { setTimeout as sleep } from 'node:timers/promises';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { run } from './exec.ts';
import { withLock } from './lock.ts';
import { binPath, buildDir, crdDir } from './paths.ts';
import { downloadModule, type Log } from './toolchain.ts';
import { CRD_VERSIONS } from './versions.ts';

/** Where each project keeps its CRDs in its module: a folder of YAML files or one file. */
export const CRD_SOURCES = [
  {
    name: 'keda',
    module: 'github.com/kedacore/keda/v2',
    version: CRD_VERSIONS.keda,
    path: 'config/crd/bases',
  },
  {
    name: 'prometheus-operator',
    module: 'github.com/prometheus-operator/prometheus-operator',
    version: CRD_VERSIONS.prometheusOperator,
    path: 'example/prometheus-operator-crd',
  },
  {
    name: 'gateway-api',
    module: 'sigs.k8s.io/gateway-api',
    version: CRD_VERSIONS.gatewayApi,
    path: 'config/crd/standard',
  },
  {
    name: 'traefik',
    module: 'github.com/traefik/traefik/v3',
    version: CRD_VERSIONS.traefik,
    path: 'docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml',
  },
] as const;

export const OPTIONAL_CRDS: readonly string[] = CRD_SOURCES.map((s) => s.name);

const stampPath = () => join(crdDir(), 'crds.json');

/** Copies the pinned CRDs into crdDir() once (the modules are downloaded if needed). */
export async function ensureCrdFiles(log: Log): Promise<void> {
  if (existsSync(stampPath())) return;
  await mkdir(buildDir(), { recursive: true });
  await withLock(`${crdDir()}.lock`, async () => {
    if (existsSync(stampPath())) return;
    const tmp = `${crdDir()}.tmp`;
    await rm(tmp, { recursive: true, force: true });
    for (const src of CRD_SOURCES) {
      const info = await downloadModule(`${src.module}@${src.version}`);
      const from = join(info.Dir ?? '', src.path);
      const files = (await stat(from)).isDirectory()
        ? (await readdir(from)).filter((f) => /\.ya?ml$/.test(f)).map((f) => join(from, f))
        : [from];
      const to = join(tmp, src.name);
      await mkdir(to, { recursive: true });
      // Read and write rather than copy: module cache files are read-only.
      for (const f of files.sort()) await writeFile(join(to, basename(f)), await readFile(f));
      log(`crds: ${src.name} ${src.version} (${files.length} files)`);
    }
    await writeFile(join(tmp, 'crds.json'), JSON.stringify(CRD_VERSIONS, null, 2) + '\n');
    await rm(crdDir(), { recursive: true, force: true });
    await rename(tmp, crdDir());
  });
}

export function kubectl(kubeconfig: string, args: string[], input?: string) {
  return run(binPath('kubectl'), [`--kubeconfig=${kubeconfig}`, ...args], { input });
}

/**
 * Until every CRD (or the named ones) is Established. Polled, not `kubectl wait
 * --for=condition=Established`: that fails at once on a CRD whose status.conditions is still
 * null (a fresh CRD the API server's controller has not looked at yet).
 */
export async function waitEstablished(
  kubeconfig: string,
  names: readonly string[] = [],
  timeoutMs = 120_000,
): Promise<void> {
  type Crd = {
    metadata: { name: string };
    status?: { conditions?: { type: string; status: string }[] | null };
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { stdout } = await kubectl(kubeconfig, ['get', 'crd', ...names, '-o', 'json']);
    const parsed = JSON.parse(stdout) as { items?: Crd[] } & Partial<Crd>;
    const crds: Crd[] = parsed.items ?? [parsed as Crd];
    const pending = crds.filter(
      (c) =>
        !(c.status?.conditions ?? []).some((x) => x.type === 'Established' && x.status === 'True'),
    );
    if (pending.length === 0) return;
    if (Date.now() > deadline)
      throw new Error(
        `CRDs not Established in ${timeoutMs / 1000} s: ${pending.map((c) => c.metadata.name).join(', ')}`,
      );
    await sleep(250);
  }
}

export async function setOptionalCrds(
  kubeconfig: string,
  install: boolean,
  log: Log,
): Promise<void> {
  await ensureCrdFiles(log);
  if (install) {
    // One kubectl per project: the API server spends its time compiling each CRD's schema and
    // CEL rules, and does that faster for concurrent requests on two cores.
    await Promise.all(
      OPTIONAL_CRDS.map((d) =>
        kubectl(kubeconfig, [
          'apply',
          '--server-side',
          '--force-conflicts',
          '-f',
          join(crdDir(), d),
        ]),
      ),
    );
    await waitEstablished(kubeconfig);
    log(`upstream CRDs Established: ${OPTIONAL_CRDS.join(', ')}`);
  } else {
    const files = OPTIONAL_CRDS.flatMap((d) => ['-f', join(crdDir(), d)]);
    await kubectl(kubeconfig, ['delete', '--ignore-not-found', '--wait=true', ...files]);
    log('upstream CRDs absent (optional CRDs off)');
  }
}
