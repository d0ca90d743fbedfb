// `npm run cluster:up [-- --no-optional-crds]`: starts (or reuses) the embedded control plane
// and prints the kubeconfig path.
import { ensureCluster, memoryReport, readState } from './cluster.ts';
import { optionalCrdsWanted } from './options.ts';

const start = Date.now();
try {
  const cluster = await ensureCluster({
    optionalCrds: optionalCrdsWanted(),
    log: (m) => console.log(`[cluster:up] ${m}`),
  });
  const secs = ((Date.now() - start) / 1000).toFixed(1);
  const state = await readState();
  const mib = state ? Math.round(memoryReport(state).totalRss / 2 ** 20) : 0;
  console.log(`[cluster:up] ${cluster.reused ? 'reused' : 'started'} in ${secs}s, ${mib} MiB RSS`);
  console.log(`[cluster:up] logs: ${cluster.logDir}`);
  console.log(`[cluster:up] kubeconfig: ${cluster.kubeconfigPath}`);
  console.log(`export KUBECONFIG=${cluster.kubeconfigPath}`);
} catch (err) {
  console.error(`[cluster:up] failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
