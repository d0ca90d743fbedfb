// Programmatic API of the embedded control plane, for `npm start`, benchmarks and tests.
export {
  ensureCluster,
  stopCluster,
  readState,
  isHealthy,
  memoryReport,
  otherUsers,
  type ClusterHandle,
  type ClusterState,
  type EnsureOptions,
  type MemoryReport,
} from './cluster.ts';
export {
  binPath,
  cacheRoot,
  clusterDir,
  clusterHome,
  logsRoot,
  kubeScoreBinPath,
  prometheusBinPath,
  versitygwBinPath,
  type Binary,
} from './paths.ts';
export {
  ensureBuilt,
  ensureKubeScore,
  ensurePrometheus,
  ensureVersitygw,
  isBuilt,
  isKubeScoreBuilt,
  isPrometheusBuilt,
  isVersitygwBuilt,
} from './toolchain.ts';
export { VERSIONS } from './versions.ts';
export { ZONES, STORAGE_CLASS } from './manifests.ts';
export { optionalCrdsWanted } from './options.ts';
export { kubectl } from './crds.ts';
