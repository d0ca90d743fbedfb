// Runs the real redis-server / redis-sentinel (Debian packages) on loopback from the
// ConfigMap data the builders render: start-redis.sh / start-sentinel.sh and redis.conf /
// sentinel.conf exactly as rendered, except for what loopback needs (see loopbackConf).
// With TLS (the default) the pods' mounted key pair and CA are files under the harness's
// temp dir: a CA and a server certificate for localhost and 127.0.0.1 issued by the
// operator's own x509 module, as the reconciler issues them.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import type { K8sObject } from '../../operator/tiers/shared/chart.ts';
import { CA_DIR, SERVER_TLS_DIR, TLS_FILES } from '../../operator/tiers/shared/tls/objects.ts';
import { issueCa, issueServerCert } from '../../operator/tiers/shared/tls/x509.ts';
import type { KeyPair } from '../../operator/tiers/shared/tls/x509.ts';

export const PASSWORD = 'engine-test-password-3f9a1c';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

/**
 * The only edits to the rendered config: bind to loopback instead of every interface, a
 * random port instead of 6379/26379 (several instances share one host; with TLS the
 * tls-port, `port 0` stays), a temp dir instead of /data, and the harness's TLS files
 * instead of the pod's mounts. Everything else is the ConfigMap's text.
 */
export function loopbackConf(text: string, port: number, dir: string, tlsRoot = ''): string {
  return text
    .replace(/^bind .*$/m, 'bind 127.0.0.1')
    .replace(
      /^(tls-)?port [1-9][0-9]*$/m,
      (_m, tls: string | undefined) => `${tls ?? ''}port ${port}`,
    )
    .replace(/^dir .*$/m, `dir ${dir}`)
    .replaceAll(SERVER_TLS_DIR, join(tlsRoot, 'tls'))
    .replaceAll(CA_DIR, join(tlsRoot, 'ca'));
}

/** Whether rendered config data serves TLS (redis.conf or sentinel.conf has tls-port). */
export const servesTls = (data: Record<string, string>): boolean =>
  Object.entries(data).some(([k, v]) => k.endsWith('.conf') && /^tls-port /m.test(v));

/** Ports the harness started with TLS: client() speaks TLS to them. */
const tlsPorts = new Set<number>();
let tlsCa = '';

/** What a client verifies the harness's servers with: the CA, the name connected to. */
export function tlsOptions(): ConnectionOptions {
  if (!tlsCa) throw new Error('the harness has no CA yet (init first)');
  return { ca: tlsCa, rejectUnauthorized: true };
}

export const configMapData = (objects: readonly K8sObject[], name: string) => {
  const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === name);
  if (!cm) throw new Error(`no ConfigMap ${name}`);
  return cm['data'] as Record<string, string>;
};

/** Plain env of a container in a rendered workload (values only, refs skipped). */
export function envOf(objects: readonly K8sObject[], kind: string, name: string, container = 0) {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name}`);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const env = (o as any).spec.template.spec.containers[container].env as Array<{
    name: string;
    value?: string;
    valueFrom?: { secretKeyRef?: { name: string; key: string } };
  }>;
  return env;
}

export interface Instance {
  readonly name: string;
  readonly port: number;
  readonly dataDir: string;
  proc: ChildProcess;
  log: string;
}

export class Harness {
  private readonly procs = new Set<ChildProcess>();
  private root = '';
  /** The CA the servers' certificates are signed by (PEM), and its file. */
  ca: KeyPair | undefined;
  caFile = '';

  async init(): Promise<void> {
    this.root = await mkdtemp(join(tmpdir(), 'scalable-redis-'));
    this.ca = await issueCa('engine-test CA', new Date());
    tlsCa = this.ca.cert;
    this.caFile = join(this.root, 'ca', TLS_FILES.ca);
    await mkdir(join(this.root, 'ca'), { recursive: true });
    await writeFile(this.caFile, this.ca.cert);
    await this.issueServerCert();
  }

  /**
   * (Re)issues the servers' key pair into the mounted directory as the kubelet swaps a
   * renewed Secret in: a new directory, then a rename over the old one (atomic). Returns
   * the new certificate.
   */
  async issueServerCert(names: readonly string[] = ['localhost', '127.0.0.1']): Promise<string> {
    if (!this.ca) throw new Error('init first');
    const pair = await issueServerCert(this.ca, names, new Date());
    const next = join(this.root, `tls-${Date.now()}`);
    await mkdir(next);
    await writeFile(join(next, TLS_FILES.cert), pair.cert);
    await writeFile(join(next, TLS_FILES.key), pair.key, { mode: 0o600 });
    await writeFile(join(next, TLS_FILES.ca), this.ca.cert);
    await rm(join(this.root, 'tls'), { recursive: true, force: true });
    await rename(next, join(this.root, 'tls'));
    return pair.cert;
  }

  /** A conf dir holding the ConfigMap data, with loopback edits to the *.conf files. */
  async confDir(name: string, data: Record<string, string>, port: number, dataDir: string) {
    const dir = join(this.root, name, 'conf');
    await mkdir(dir, { recursive: true });
    for (const [key, text] of Object.entries(data)) {
      await writeFile(
        join(dir, key),
        key.endsWith('.conf') ? loopbackConf(text, port, dataDir, this.root) : text,
      );
    }
    return dir;
  }

  /** The pod's TLS_CA_FILE, as the rendered containers get it, when the config serves TLS. */
  private tlsEnv(data: Record<string, string>): Record<string, string> {
    return servesTls(data) ? { TLS_CA_FILE: this.caFile } : {};
  }

  /**
   * Run a start script from the ConfigMap with the env the pod gets (password, dirs and
   * Sentinel discovery with loopback addresses); resolves once the instance answers PING.
   */
  async start(
    name: string,
    script: 'start-redis.sh' | 'start-sentinel.sh',
    data: Record<string, string>,
    env: Record<string, string> = {},
    opts: { port?: number; dataDir?: string } = {},
  ): Promise<Instance> {
    const port = opts.port ?? (await freePort());
    const dataDir = opts.dataDir ?? join(this.root, name, 'data');
    await mkdir(dataDir, { recursive: true });
    const confDir = await this.confDir(name, data, port, dataDir);
    if (servesTls(data)) tlsPorts.add(port);
    const proc = spawn('sh', [join(confDir, script)], {
      env: {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        REDIS_PASSWORD: PASSWORD,
        CONF_DIR: confDir,
        DATA_DIR: dataDir,
        ...this.tlsEnv(data),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: a kill reaches what the script started (Sentinel under TLS
      // runs as its child; the certificate-reload loop beside Redis).
      detached: true,
    });
    const inst: Instance = { name, port, dataDir, proc, log: '' };
    proc.stdout?.on('data', (d: Buffer) => (inst.log += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (inst.log += d.toString()));
    this.procs.add(proc);
    proc.on('exit', () => this.procs.delete(proc));
    await waitFor(`${name} to answer PING`, 90_000, async () => {
      if (proc.exitCode !== null) throw new Error(`${name} exited:\n${inst.log}`);
      return (await ping(port)) === 'PONG';
    });
    return inst;
  }

  /** Run a script from the ConfigMap to completion (e.g. the preStop hook), with the pod's env. */
  async run(
    name: string,
    script: string,
    data: Record<string, string>,
    env: Record<string, string>,
  ): Promise<{ code: number | null; out: string }> {
    const confDir = await this.confDir(`${name}-${script}`, data, 0, this.root);
    const proc = spawn('sh', [join(confDir, script)], {
      env: {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        REDIS_PASSWORD: PASSWORD,
        ...this.tlsEnv(data),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.procs.add(proc);
    let out = '';
    proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve));
    this.procs.delete(proc);
    return { code, out };
  }

  /** SIGKILL: the crash a node loss or OOM kill looks like. */
  async kill(inst: Instance, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (inst.proc.exitCode !== null || inst.proc.signalCode !== null) return;
    const exited = new Promise((r) => inst.proc.once('exit', r));
    killGroup(inst.proc, signal);
    await exited;
  }

  async cleanup(): Promise<void> {
    for (const p of this.procs) killGroup(p, 'SIGKILL');
    this.procs.clear();
    if (this.root) await rm(this.root, { recursive: true, force: true });
  }
}

/** The signal to the process's whole group (spawned detached), or the process alone. */
function killGroup(proc: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (proc.pid !== undefined) process.kill(-proc.pid, signal);
    else proc.kill(signal);
  } catch {
    proc.kill(signal);
  }
}

/** One authenticated round trip, or undefined when nothing answers yet. */
async function ping(port: number): Promise<string | undefined> {
  const c = client(port, { retryStrategy: () => null, connectTimeout: 500 });
  try {
    return await c.ping();
  } catch {
    return undefined;
  } finally {
    c.disconnect();
  }
}

export function client(port: number, extra: RedisOptions = {}): Redis {
  const c = new Redis({
    host: '127.0.0.1',
    port,
    password: PASSWORD,
    maxRetriesPerRequest: 1,
    ...(tlsPorts.has(port) ? { tls: tlsOptions() } : {}),
    ...extra,
  });
  // Reconnect attempts after a test kills its server are expected; commands still reject.
  c.on('error', () => undefined);
  return c;
}

export async function waitFor(
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
  everyMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (e) {
      last = e;
      if (String(e).includes('exited:')) throw e;
    }
    await sleep(everyMs);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`,
  );
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** INFO <section> as a map. */
export async function info(c: Redis, section: string): Promise<Record<string, string>> {
  const text = await c.info(section);
  return Object.fromEntries(
    text
      .split(/\r?\n/)
      .filter((l) => l.includes(':') && !l.startsWith('#'))
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]),
  );
}
