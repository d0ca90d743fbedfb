// The operator as a separate process against the test cluster, plus the few reads the
// operator suites assert on. Tests check the world (objects, status, leases), not calls.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeClient, isNotFound } from '../../operator/runtime/kube-client.ts';
import { installCrd, kubectl } from '../../operator/runtime/embedded.ts';
import { APP_KIND, kindOf, pathOf } from '../../operator/reconcile/kinds.ts';
import type { KindInfo } from '../../operator/reconcile/kinds.ts';
import { testKubeconfig } from '../../devcluster/testing.ts';
import { readState } from '../../devcluster/cluster.ts';
import { clusterDir } from '../../devcluster/paths.ts';
import { startProcess, stopProcess } from '../../devcluster/processes.ts';

export type Json = Record<string, unknown>;

const REPO = join(import.meta.dirname, '..', '..');

export const kubeconfig = (): string => testKubeconfig();

export { installCrd, kubectl };

export async function apiClient(): Promise<KubeClient> {
  return KubeClient.load(kubeconfig());
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface OperatorProcess {
  readonly pid: number;
  readonly port: number;
  readonly logFile: string;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  metrics(): Promise<string>;
  /** Sum of a metric's samples whose labels contain every given pair. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  probe(path: string): Promise<number>;
  logs(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startOperator(env: Record<string, string> = {}): Promise<OperatorProcess> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'scalable-operator-'));
  const logFile = join(dir, 'operator.log');
  const out = createWriteStream(logFile);
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'operator', 'main.ts')], {
    cwd: REPO,
    env: {
      ...process.env,
      KUBECONFIG: kubeconfig(),
      SCALABLE_HTTP_PORT: String(port),
      SCALABLE_HTTP_HOST: '127.0.0.1',
      POD_NAMESPACE: 'default',
      LOG_LEVEL: 'debug',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(out, { end: false });
  child.stderr?.pipe(out, { end: false });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const base = `http://127.0.0.1:${port}`;
  const proc: OperatorProcess = {
    pid: child.pid ?? 0,
    port,
    logFile,
    child,
    exited,
    metrics: async () => (await fetch(`${base}/metrics`)).text(),
    metric: async (name, labels = {}) => sumMetric(await proc.metrics(), name, labels),
    probe: async (path) => {
      try {
        return (await fetch(`${base}${path}`)).status;
      } catch {
        return 0;
      }
    },
    logs: () => readFileSync(logFile, 'utf8'),
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
  // Ready: caches synced.
  const deadline = Date.now() + 60_000;
  while ((await proc.probe('/readyz')) !== 200) {
    if (child.exitCode !== null) throw new Error(`operator exited (${child.exitCode}):\n${proc.logs()}`);
    if (Date.now() > deadline) throw new Error(`operator not ready after 60s:\n${proc.logs()}`);
    await sleep(200);
  }
  return proc;
}

export function sumMetric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const body = m[3] ?? '';
    if (Object.entries(labels).every(([k, v]) => body.includes(`${k}="${v}"`))) sum += Number(m[4]);
  }
  return sum;
}

/** Mutating requests the operator sent (apply, create, update, patch, delete), by resource. */
export async function mutatingRequests(op: OperatorProcess, exceptResource?: string): Promise<number> {
  const text = await op.metrics();
  let total = 0;
  for (const verb of ['create', 'update', 'patch', 'apply', 'delete']) {
    total += sumMetric(text, 'scalable_api_requests_total', { verb });
    if (exceptResource) total -= sumMetric(text, 'scalable_api_requests_total', { verb, resource: exceptResource });
  }
  return total;
}

export async function getObj(client: KubeClient, info: KindInfo, ns: string, name: string): Promise<Json | undefined> {
  try {
    return await client.request<Json>('GET', pathOf(info, ns, name), { verb: 'get', resource: info.plural });
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export const getApp = (client: KubeClient, ns: string, name: string) => getObj(client, APP_KIND, ns, name);

export function kindInfo(apiVersion: string, kind: string): KindInfo {
  const info = kindOf(apiVersion, kind);
  if (!info) throw new Error(`unknown kind ${apiVersion} ${kind}`);
  return info;
}

export async function createNamespace(client: KubeClient, name: string): Promise<void> {
  await client.request('POST', '/api/v1/namespaces', {
    verb: 'create',
    resource: 'namespaces',
    body: {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } },
    },
  });
}

export async function deleteNamespace(client: KubeClient, name: string): Promise<void> {
  await client
    .request('DELETE', `/api/v1/namespaces/${name}`, { verb: 'delete', resource: 'namespaces' })
    .catch(() => undefined);
}

/** Server-side apply as a user would (field manager kubectl-like, not the operator's). */
export async function applyAs(client: KubeClient, manager: string, obj: Json): Promise<Json> {
  const meta = obj['metadata'] as Json;
  const info = obj['kind'] === 'ScalableApp' ? APP_KIND : kindInfo(String(obj['apiVersion']), String(obj['kind']));
  return client.request<Json>('PATCH', pathOf(info, String(meta['namespace']), String(meta['name'])), {
    verb: 'apply',
    resource: info.plural,
    query: { fieldManager: manager, force: true },
    contentType: 'application/apply-patch+yaml',
    body: obj,
  });
}

export async function mergePatch(
  client: KubeClient,
  info: KindInfo,
  ns: string,
  name: string,
  patch: Json,
  manager = 'hand-edit',
): Promise<Json> {
  return client.request<Json>('PATCH', pathOf(info, ns, name), {
    verb: 'patch',
    resource: info.plural,
    query: { fieldManager: manager },
    contentType: 'application/merge-patch+json',
    body: patch,
  });
}

export function conditionOf(app: Json | undefined, type: string): Json | undefined {
  const conds = ((app?.['status'] as Json | undefined)?.['conditions'] ?? []) as Json[];
  return conds.find((c) => c['type'] === type);
}

export function scalableApp(ns: string, name: string, spec: Json): Json {
  return { apiVersion: 'scalable.dev/v1alpha1', kind: 'ScalableApp', metadata: { name, namespace: ns }, spec };
}

/**
 * Stops the test cluster's kube-apiserver, waits downMs, starts it again with the same
 * command line, and waits until it is ready. The devcluster state file is updated so the
 * cluster can still be stopped (and reused) afterwards.
 */
export async function restartApiServer(downMs: number): Promise<void> {
  const state = await readState();
  const proc = state?.processes.find((p) => p.name === 'kube-apiserver');
  if (!state || !proc) throw new Error('no devcluster state with a kube-apiserver');
  const args = readFileSync(`/proc/${proc.pid}/cmdline`, 'utf8').split('\0').filter(Boolean).slice(1);
  await stopProcess(proc);
  await sleep(downMs);
  const started = startProcess('kube-apiserver', proc.bin, args, join(state.logDir, 'kube-apiserver.log'));
  state.processes = state.processes.map((p) => (p.name === 'kube-apiserver' ? started : p));
  writeFileSync(join(clusterDir(), 'state.json'), JSON.stringify(state, null, 2) + '\n');
  const client = await apiClient();
  try {
    const deadline = Date.now() + 90_000;
    for (;;) {
      try {
        await client.request('GET', '/readyz', { verb: 'get', resource: 'readyz', timeoutMs: 2_000 });
        return;
      } catch {
        if (Date.now() > deadline) throw new Error('kube-apiserver not ready 90s after restart');
        await sleep(250);
      }
    }
  } finally {
    client.close();
  }
}
