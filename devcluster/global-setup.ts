// vitest global setup of the integration project: one control plane per run, reused when one
// is already running (e.g. from `npm run cluster:up`), stopped afterwards only if started here.
//
// Tests get the kubeconfig path two ways: `inject('kubeconfig')` from vitest, and the
// environment variable SCALABLE_TEST_KUBECONFIG (set here before the workers start).
// `inject('devclusterLogDir')` / SCALABLE_TEST_LOG_DIR hold the component log folder.
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { ensureCluster, memoryReport, readState } from './cluster.ts';
import { optionalCrdsWanted } from './options.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    kubeconfig: string;
    devclusterServer: string;
    devclusterLogDir: string;
  }
}

export const KUBECONFIG_ENV = 'SCALABLE_TEST_KUBECONFIG';
export const LOG_DIR_ENV = 'SCALABLE_TEST_LOG_DIR';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const log = (m: string) => console.log(`[devcluster] ${m}`);
  const cluster = await ensureCluster({ optionalCrds: optionalCrdsWanted([]), log });
  process.env[KUBECONFIG_ENV] = cluster.kubeconfigPath;
  process.env[LOG_DIR_ENV] = cluster.logDir;
  project.provide('kubeconfig', cluster.kubeconfigPath);
  project.provide('devclusterServer', cluster.server);
  project.provide('devclusterLogDir', cluster.logDir);
  log(`kubeconfig ${cluster.kubeconfigPath}; component logs in ${cluster.logDir}`);

  return async () => {
    let failed = 0;
    try {
      failed = project.vitest.state.getCountOfFailedTests();
    } catch {
      failed = 0; // the state API is experimental; the per-test hook prints the folder too
    }
    if (failed > 0) log(`tests failed: control-plane logs are in ${cluster.logDir}`);
    const state = await readState();
    if (state) {
      const mib = (b: number) => `${Math.round(b / 2 ** 20)} MiB`;
      const mem = memoryReport(state);
      log(`control plane memory: ${mib(mem.totalRss)} now, peaks summed ${mib(mem.totalPeak)}`);
    }
    if (cluster.reused) log('leaving the reused cluster running');
    else await cluster.stop();
  };
}
