// The operator as a child process (tests and the benchmark): its port, logs, metrics, signals.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const REPO = join(import.meta.dirname, '..', '..');

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

/** `node --import tsx operator/main.ts` against kubeconfigPath, resolved once /readyz says ready. */
export async function startOperatorProcess(
  kubeconfigPath: string,
  env: Record<string, string> = {},
  /** A compiled main.js (production-like), instead of the TypeScript source through tsx. */
  compiledEntry?: string,
): Promise<OperatorProcess> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'scalable-operator-'));
  const logFile = join(dir, 'operator.log');
  const out = createWriteStream(logFile);
  const args = compiledEntry
    ? [compiledEntry]
    : ['--import', 'tsx', join(REPO, 'operator', 'main.ts')];
  const child = spawn(process.execPath, args, {
    cwd: REPO,
    env: {
      ...process.env,
      KUBECONFIG: kubeconfigPath,
      SCALABLE_HTTP_PORT: String(port),
      SCALABLE_HTTP_HOST: '127.0.0.1',
      POD_NAMESPACE: 'default',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(out, { end: false });
  child.stderr?.pipe(out, { end: false });
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code, signal) => {
      out.write(`[harness] operator exited: code ${code} signal ${signal}\n`);
      resolve(code);
    }),
  );
  const base = `http://127.0.0.1:${port}`;
  const proc: OperatorProcess = {
    pid: child.pid ?? 0,
    port,
    logFile,
    child,
    exited,
    metrics: async () => {
      // One retry: a keep-alive connection can be reset between two polls.
      try {
        return await (await fetch(`${base}/metrics`)).text();
      } catch {
        await sleep(200);
        return (await fetch(`${base}/metrics`)).text();
      }
    },
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
    if (child.exitCode !== null)
      throw new Error(`operator exited (${child.exitCode}):\n${proc.logs()}`);
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
export async function mutatingRequests(
  op: OperatorProcess,
  exceptResource?: string,
): Promise<number> {
  const text = await op.metrics();
  let total = 0;
  for (const verb of ['create', 'update', 'patch', 'apply', 'delete']) {
    total += sumMetric(text, 'scalable_api_requests_total', { verb });
    if (exceptResource)
      total -= sumMetric(text, 'scalable_api_requests_total', { verb, resource: exceptResource });
  }
  return total;
}
