// vitest global setup of the e2e project: one kind cluster per run, shared by every case in
// its own namespace. Builds or reuses the binaries and the node image, creates the cluster
// (1 control plane + 3 workers in zones a/b/c, flannel + kube-router's firewall +
// local-path), loads our images, installs the add-ons (metrics-server for the HPA's CPU
// figures, KEDA's operator and metrics adapter for the workers' backlog) and then ours (the chart, with helm). Afterwards: logs exported
// when a test failed, the cluster deleted unless E2E_KEEP=1.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { cacheRoot } from '../../devcluster/paths.ts';
import {
  attachCluster,
  clusterExists,
  createCluster,
  deleteCluster,
  exportLogs,
  helm,
  loadImages,
  memorySampler,
  OPERATOR_NAMESPACE,
  RELEASE,
} from './support/cluster.ts';
import { buildKedaAdapter, buildKedaImage, installKeda } from './support/keda.ts';
import { buildMetricsServerImage, installMetricsServer } from './support/metrics-server.ts';
import { ensureScaleBinaries } from './support/scale-toolchain.ts';
import { debianBase, ensureNodeImage, nodeImageChoice } from './support/node-image.ts';
import { imageValues, projectImages } from './support/images.ts';
import { buildImages } from '../images/build.ts';
import { RESULTS_ENV, record, table, timed, type Timing } from './support/results.ts';
import { ensureKindBinaries } from './support/toolchain.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    kubeconfig: string;
    e2eCluster: string;
  }
}

export const CLUSTER_NAME = process.env['E2E_CLUSTER_NAME'] ?? 'scalable-e2e';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const log = (m: string) => console.log(`[e2e] ${m}`);
  const root = join(import.meta.dirname, '..', '..');
  const workDir = join(cacheRoot(), 'e2e', CLUSTER_NAME);
  mkdirSync(workDir, { recursive: true });
  const results = join(workDir, `results-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`);
  process.env[RESULTS_ENV] = results;
  const keep = process.env['E2E_KEEP'] === '1';

  const choice = nodeImageChoice();
  await timed('phase: binaries', () => ensureKindBinaries(log, choice.kind === 'local'));
  // The scale-out add-ons: `npm test` has built them with the kind binaries (npm run
  // e2e:build, in the background of its first run); a run of this project alone compiles what
  // is missing (at nice 19) while our images build. Each one's time is recorded (0: cached).
  const [, built] = await Promise.all([
    timed('phase: images', async () => buildImages()),
    timed('phase: scale add-on binaries', () => ensureScaleBinaries(log)),
  ]);
  for (const [name, s] of Object.entries(built))
    record({ name: `build: ${name}`, value: s, note: s === 0 ? 'cached' : 'compiled' });
  const base = await debianBase();
  const addonImages = await timed('phase: add-on images', () =>
    Promise.all([buildKedaImage(base), buildKedaAdapter(base), buildMetricsServerImage(base)]),
  );
  const nodeImage =
    choice.kind === 'local'
      ? await timed('phase: node image', () => ensureNodeImage(log))
      : choice.kind === 'given'
        ? choice.image
        : undefined;

  const exists = await clusterExists(CLUSTER_NAME);
  const reuse = exists && keep;
  if (exists && !reuse) await deleteCluster(CLUSTER_NAME);
  const cluster = reuse
    ? await attachCluster(CLUSTER_NAME, workDir)
    : await timed('phase: cluster create', () =>
        createCluster(CLUSTER_NAME, workDir, nodeImage, choice.kind === 'local'),
      );
  if (reuse) log(`reusing the kept cluster ${CLUSTER_NAME} (E2E_KEEP=1)`);
  const memory = memorySampler(CLUSTER_NAME);

  const images = [...projectImages(root), ...addonImages];
  try {
    await timed('phase: kind load', () => loadImages(cluster, images), `${images.length} images`);
    // KEDA before the operator, which discovers keda.sh when it starts. Each waits for its
    // own Deployment or API: side by side.
    await Promise.all([
      timed('phase: metrics-server install', () => installMetricsServer(cluster)),
      timed('phase: keda install', () => installKeda(cluster)),
    ]);
    await timed('phase: helm install', async () => {
      await helm(cluster, [
        'upgrade',
        '--install',
        RELEASE,
        join(root, 'charts', 'scalable-operator'),
        '--namespace',
        OPERATOR_NAMESPACE,
        '--create-namespace',
        ...imageValues(),
        '--wait',
        '--timeout',
        '5m',
      ]);
    });
  } catch (err) {
    // No teardown runs for a setup that threw: stop the sampler (its timer would keep vitest
    // alive), keep the evidence, and do not leave a cluster behind.
    await memory.stop();
    const dir = join(workDir, 'logs');
    rmSync(dir, { recursive: true, force: true });
    await exportLogs(cluster, dir).then(
      () => log(`setup failed: cluster logs exported to ${dir}`),
      (e: unknown) => log(`kind export logs failed: ${String(e)}`),
    );
    if (!keep) await deleteCluster(CLUSTER_NAME);
    throw err;
  }

  process.env['SCALABLE_TEST_KUBECONFIG'] = cluster.kubeconfig;
  project.provide('kubeconfig', cluster.kubeconfig);
  project.provide('e2eCluster', CLUSTER_NAME);
  log(`cluster ${CLUSTER_NAME} ready; kubeconfig ${cluster.kubeconfig}`);

  return async () => {
    const peak = await memory.stop();
    record({ name: 'cluster peak memory (docker stats, 4 nodes)', value: peak, unit: 'MiB' });
    let failed = 0;
    try {
      failed = project.vitest.state.getCountOfFailedTests();
    } catch {
      failed = 1; // unknown: keep the logs
    }
    if (failed > 0) {
      const dir = join(workDir, 'logs');
      rmSync(dir, { recursive: true, force: true });
      await exportLogs(cluster, dir).then(
        () => log(`tests failed: cluster logs exported to ${dir}`),
        (err: unknown) => log(`kind export logs failed: ${String(err)}`),
      );
    }
    if (keep) log(`E2E_KEEP=1: cluster ${CLUSTER_NAME} kept (kubeconfig ${cluster.kubeconfig})`);
    else await timed('phase: cluster delete', () => deleteCluster(CLUSTER_NAME));
    const lines = readFileSync(results, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Timing);
    log(`results (${results}):\n${table(lines)}`);
  };
}
