// Starting, reusing and stopping the embedded control plane. State lives in clusterDir();
// logs in a fresh folder under logsRoot() that outlives the cluster.
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { certPaths, generateCerts, readClientTls } from './certs.ts';
import {
  AUDIT_POLICY,
  apiserverArgs,
  controllerManagerArgs,
  etcdArgs,
  kwokArgs,
  schedulerArgs,
  type Layout,
  type Ports,
} from './components.ts';
import { kubectl, setOptionalCrds, waitEstablished } from './crds.ts';
import { probe, waitFor } from './health.ts';
import { renderKubeconfig } from './kubeconfig.ts';
import { ensureSeed, hasSeed, seedDir } from './seed.ts';
import { bootstrapManifest } from './manifests.ts';
import { binPath, clusterDir, clusterHome, logsRoot, stagesPath, type Binary } from './paths.ts';
import { withLock } from './lock.ts';
import { freePorts } from './ports.ts';
import {
  isRunning,
  peakRssBytes,
  rssBytes,
  startProcess,
  stopProcess,
  type Started,
} from './processes.ts';
import { ensureBuilt, type Log } from './toolchain.ts';
import { buildKey, crdKey } from './versions.ts';

export interface ClusterState {
  buildKey: string;
  /** Which set of upstream CRDs is installed (when optionalCrds). */
  crdKey?: string;
  server: string;
  kubeconfigPath: string;
  logDir: string;
  ports: Ports;
  processes: Started[];
  optionalCrds: boolean;
  startedAt: string;
}

export interface EnsureOptions {
  /** Install the KEDA, Prometheus Operator and Gateway API CRDs (default true). */
  optionalCrds?: boolean;
  log?: Log;
}

export interface ClusterHandle {
  kubeconfigPath: string;
  server: string;
  logDir: string;
  /** True when an already running cluster was reused rather than started. */
  reused: boolean;
  /**
   * Stops every component and removes the state (logs are kept), unless another live process
   * has reused the cluster meanwhile: then it is left running for them.
   */
  stop: () => Promise<void>;
}

const KEEP_LOG_DIRS = 10;

const statePath = () => join(clusterDir(), 'state.json');

export async function readState(): Promise<ClusterState | undefined> {
  if (!existsSync(statePath())) return undefined;
  try {
    return JSON.parse(await readFile(statePath(), 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

async function writeState(state: ClusterState): Promise<void> {
  await writeFile(statePath(), JSON.stringify(state, null, 2) + '\n');
}

/** Running and answering: every recorded process alive and the API server ready. */
export async function isHealthy(state: ClusterState): Promise<boolean> {
  if (state.buildKey !== buildKey()) return false;
  if (!state.processes.every((p) => isRunning(p.pid, p.bin))) return false;
  const tls = await readClientTls(certPaths(clusterDir())).catch(() => undefined);
  return tls !== undefined && (await probe(`${state.server}/readyz`, tls)) === 200;
}

// Processes that reused the cluster leave their pid here, so that the one that started it does
// not stop it under them (a test run beside `npm start`, or two sessions on one machine).
const usersDir = () => join(clusterDir(), 'users');

async function registerUser(): Promise<void> {
  await mkdir(usersDir(), { recursive: true });
  await writeFile(join(usersDir(), String(process.pid)), '');
}

/** Other live processes that reused the running cluster. */
export async function otherUsers(): Promise<number[]> {
  const pids = await readdir(usersDir()).catch(() => [] as string[]);
  return pids.map(Number).filter((pid) => {
    if (!Number.isInteger(pid) || pid === process.pid) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
}

function handle(state: ClusterState, reused: boolean, log: Log): ClusterHandle {
  return {
    kubeconfigPath: state.kubeconfigPath,
    server: state.server,
    logDir: state.logDir,
    reused,
    stop: async () => {
      const others = await otherUsers();
      if (others.length > 0)
        log(`leaving the cluster running: still used by pid ${others.join(', ')}`);
      else await stopCluster();
    },
  };
}

async function newLogDir(): Promise<string> {
  await mkdir(logsRoot(), { recursive: true });
  const old = (await readdir(logsRoot())).sort();
  for (const d of old.slice(0, Math.max(0, old.length - KEEP_LOG_DIRS + 1)))
    await rm(join(logsRoot(), d), { recursive: true, force: true });
  const dir = join(logsRoot(), new Date().toISOString().replace(/[:.]/g, '-'));
  await mkdir(dir, { recursive: true });
  return dir;
}

const seeLog = (logFile: string) => () => `See ${logFile}`;

/** Starts a cluster, or reuses the one already running when it is healthy. */
export async function ensureCluster(opts: EnsureOptions = {}): Promise<ClusterHandle> {
  const log = opts.log ?? ((m: string) => console.log(`[devcluster] ${m}`));
  const optionalCrds = opts.optionalCrds ?? true;
  await ensureBuilt(log);
  if (optionalCrds) await ensureSeed(log);
  await mkdir(clusterHome(), { recursive: true });
  return withLock(lockPath(), () => ensureUnlocked(optionalCrds, log));
}

const lockPath = () => join(clusterHome(), 'cluster.lock');

async function ensureUnlocked(optionalCrds: boolean, log: Log): Promise<ClusterHandle> {
  const existing = await readState();
  if (existing && (await isHealthy(existing))) {
    log(`reusing the running cluster at ${existing.server}`);
    // Bring the running cluster's upstream CRDs to what is asked (and pinned now).
    const stale = optionalCrds && existing.crdKey !== crdKey();
    if (existing.optionalCrds !== optionalCrds || stale) {
      await setOptionalCrds(existing.kubeconfigPath, optionalCrds, log);
      await writeState({ ...existing, optionalCrds, crdKey: crdKey() });
    }
    await registerUser();
    return handle({ ...existing, optionalCrds }, true, log);
  }
  if (existing) {
    log('found a stale or unhealthy cluster: stopping it');
    await stopUnlocked();
  }
  return startCluster(optionalCrds, log);
}

async function startCluster(optionalCrds: boolean, log: Log): Promise<ClusterHandle> {
  const start = Date.now();
  const dir = clusterDir();
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const logDir = await newLogDir();
  const [etcdClient, etcdPeer, apiserver, controllerManager, scheduler] = await freePorts(5);
  const ports: Ports = {
    etcdClient: etcdClient ?? 0,
    etcdPeer: etcdPeer ?? 0,
    apiserver: apiserver ?? 0,
    controllerManager: controllerManager ?? 0,
    scheduler: scheduler ?? 0,
  };
  const auditPolicy = join(dir, 'audit-policy.yaml');
  const layout: Layout = {
    certs: certPaths(dir),
    etcdData: join(dir, 'etcd'),
    kubeconfig: join(dir, 'kubeconfig'),
    kwokStages: stagesPath(),
    audit: { policy: auditPolicy, log: join(logDir, 'kube-apiserver-audit.log') },
  };
  await writeFile(auditPolicy, AUDIT_POLICY);
  const server = `https://127.0.0.1:${ports.apiserver}`;
  const state: ClusterState = {
    buildKey: buildKey(),
    crdKey: crdKey(),
    server,
    kubeconfigPath: layout.kubeconfig,
    logDir,
    ports,
    processes: [],
    optionalCrds,
    startedAt: new Date().toISOString(),
  };
  const launch = async (name: Binary, args: string[]) => {
    state.processes.push(startProcess(name, binPath(name), args, join(logDir, `${name}.log`)));
    await writeState(state); // recorded at once, so cluster:down can clean up a failed start
  };
  const since = () => `${((Date.now() - start) / 1000).toFixed(1)}s`;

  try {
    // The upstream CRDs come preloaded in etcd's data (see seed.ts) rather than applied.
    if (optionalCrds && hasSeed()) await cp(seedDir(), layout.etcdData, { recursive: true });
    // etcd needs no certificate: start it while the PKI is generated.
    await launch('etcd', etcdArgs(ports, layout));
    await generateCerts(dir);
    const tls = await readClientTls(layout.certs);
    await writeFile(layout.kubeconfig, renderKubeconfig(server, tls), { mode: 0o600 });
    await waitFor(
      'etcd',
      async () => (await probe(`http://127.0.0.1:${ports.etcdClient}/health`)) === 200,
      30_000,
      seeLog(join(logDir, 'etcd.log')),
    );
    log(`etcd ready (${since()})`);

    await launch('kube-apiserver', apiserverArgs(ports, layout));
    await waitFor(
      'kube-apiserver /readyz',
      async () => (await probe(`${server}/readyz`, tls)) === 200,
      90_000,
      seeLog(join(logDir, 'kube-apiserver.log')),
    );
    log(`kube-apiserver ready at ${server} (${since()})`);

    await launch('kube-controller-manager', controllerManagerArgs(ports, layout));
    await launch('kube-scheduler', schedulerArgs(ports, layout));
    await launch('kwok', kwokArgs(layout));
    const timed = async (what: string, p: Promise<unknown>) => {
      await p;
      log(`${what} (${since()})`);
    };
    await Promise.all([
      timed(
        '3 kwok nodes Ready, default StorageClass',
        kubectl(layout.kubeconfig, ['apply', '--server-side', '-f', '-'], bootstrapManifest()).then(
          () =>
            kubectl(layout.kubeconfig, [
              'wait',
              '--for=condition=Ready',
              'node',
              '--all',
              '--timeout=60s',
            ]),
        ),
      ),
      optionalCrds
        ? timed(
            'upstream CRDs Established (from the etcd seed)',
            waitEstablished(layout.kubeconfig),
          )
        : Promise.resolve(),
      timed(
        'kube-controller-manager healthy',
        waitFor(
          'kube-controller-manager /healthz',
          async () => (await probe(`https://127.0.0.1:${ports.controllerManager}/healthz`)) === 200,
          60_000,
          seeLog(join(logDir, 'kube-controller-manager.log')),
        ),
      ),
      // The service-account controller is among the last to start; until it has made the
      // default ServiceAccount, pods are refused by the ServiceAccount admission plugin.
      timed(
        'controllers running (default ServiceAccount exists)',
        waitFor(
          'the default ServiceAccount',
          async () =>
            (await probe(`${server}/api/v1/namespaces/default/serviceaccounts/default`, tls)) ===
            200,
          60_000,
          seeLog(join(logDir, 'kube-controller-manager.log')),
        ),
      ),
      timed(
        'kube-scheduler healthy',
        waitFor(
          'kube-scheduler /healthz',
          async () => (await probe(`https://127.0.0.1:${ports.scheduler}/healthz`)) === 200,
          60_000,
          seeLog(join(logDir, 'kube-scheduler.log')),
        ),
      ),
    ]);
    log(`ready (${since()})`);
    return handle(state, false, log);
  } catch (err) {
    log(`start failed; component logs are in ${logDir}`);
    await stopUnlocked().catch(() => undefined);
    throw err;
  }
}

/** Stops the recorded processes, newest first, and removes the state. */
export async function stopCluster(): Promise<void> {
  await mkdir(clusterHome(), { recursive: true });
  await withLock(lockPath(), stopUnlocked);
}

async function stopUnlocked(): Promise<void> {
  const state = await readState();
  if (state) for (const p of [...state.processes].reverse()) await stopProcess(p);
  await rm(clusterDir(), { recursive: true, force: true });
}

export interface MemoryReport {
  rss: Record<string, number>;
  peak: Record<string, number>;
  totalRss: number;
  totalPeak: number;
}

/** Resident memory of every component now and at its peak (VmHWM), in bytes. */
export function memoryReport(state: ClusterState): MemoryReport {
  const rss = Object.fromEntries(state.processes.map((p) => [p.name, rssBytes(p.pid)]));
  const peak = Object.fromEntries(state.processes.map((p) => [p.name, peakRssBytes(p.pid)]));
  const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
  return { rss, peak, totalRss: sum(rss), totalPeak: sum(peak) };
}
