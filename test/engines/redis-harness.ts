// Runs redis-server / redis-sentinel from the project's redis image (containers.ts) on
// loopback from the ConfigMap data the builders render: start-redis.sh / start-sentinel.sh
// and redis.conf / sentinel.conf exactly as rendered, except for what loopback needs (see
// loopbackConf). With TLS (the default) the pods' mounted key pair and CA are files under
// the harness's temp dir: a CA and a server certificate for localhost and 127.0.0.1 issued
// by the operator's own x509 module, as the reconciler issues them.
import type { ChildProcess } from 'node:child_process';
import { chown, mkdtemp, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import type { K8sObject } from '../../operator/tiers/shared/chart.ts';
import { ACL_USERS } from '../../operator/engines/redis/config.ts';
import type { AclRole } from '../../operator/engines/redis/config.ts';
import { CA_DIR, SERVER_TLS_DIR, TLS_FILES } from '../../operator/tiers/shared/tls/objects.ts';
import { issueCa, issueServerCert } from '../../operator/tiers/shared/tls/x509.ts';
import type { KeyPair } from '../../operator/tiers/shared/tls/x509.ts';
import { ENGINE_IMAGES, ENGINE_UID, runOnceAsync, startContainer } from './containers.ts';
import type { Container } from './containers.ts';

/** A password per ACL role, as the reconciler generates them into the tier's -users Secret. */
export const PASSWORDS: Readonly<Record<AclRole, string>> = {
  admin: 'engine-admin-password-3f9a1c',
  replication: 'engine-replication-password-8d2e',
  sentinel: 'engine-sentinel-password-51c7',
  app: 'engine-app-password-a94b',
  exporter: 'engine-exporter-password-0e6f',
};
/** The admin's: what the harness's own client (and the pods' scripts) authenticate with. */
export const PASSWORD = PASSWORDS.admin;
/** The legacy single password of a tier made before ACL users (its -auth Secret). */
export const LEGACY_PASSWORD = 'engine-legacy-password-77b1';

const ROLES = Object.keys(ACL_USERS) as AclRole[];
/** The tier's -users Secret: key -> value (sdk-harness podEnv resolves secretKeyRefs with it). */
export const USERS_SECRET: Readonly<Record<string, string>> = Object.fromEntries(
  ROLES.map((r) => [ACL_USERS[r].key, PASSWORDS[r]]),
);
/** The roles' passwords under the env names the pods' containers get them by. */
export const ROLE_ENV: Readonly<Record<string, string>> = Object.fromEntries(
  ROLES.map((r) => [ACL_USERS[r].env, PASSWORDS[r]]),
);

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
    valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } };
  }>;
  return env;
}

export interface Instance {
  readonly name: string;
  readonly port: number;
  readonly dataDir: string;
  /** The pod's container (redis image): its main process is the start script's exec. */
  readonly container: Container;
  /** The container's docker client: it exits when the container has ended. */
  proc: ChildProcess;
  log: string;
}

/** Files the harness writes, owned by the pods' uid as the kubelet's fsGroup makes them. */
const own = (path: string) => chown(path, ENGINE_UID, ENGINE_UID);

export class Harness {
  private readonly containers = new Set<Container>();
  private root = '';
  /** The CA the servers' certificates are signed by (PEM), and its file. */
  ca: KeyPair | undefined;
  caFile = '';

  async init(): Promise<void> {
    this.root = await mkdtemp(join(tmpdir(), 'scalable-redis-'));
    await own(this.root);
    this.ca = await issueCa('engine-test CA', new Date());
    tlsCa = this.ca.cert;
    this.caFile = join(this.root, 'ca', TLS_FILES.ca);
    await mkdir(join(this.root, 'ca'), { recursive: true });
    await writeFile(this.caFile, this.ca.cert);
    await Promise.all([own(join(this.root, 'ca')), own(this.caFile)]);
    await this.issueServerCert();
  }

  /**
   * (Re)issues the servers' key pair into the mounted directory as the kubelet swaps a
   * renewed Secret in: a new directory, then a rename over the old one (atomic). Returns
   * the new certificate (from `signer`, the harness's CA unless given).
   */
  async issueServerCert(
    names: readonly string[] = ['localhost', '127.0.0.1'],
    signer: KeyPair | undefined = this.ca,
  ): Promise<string> {
    if (!this.ca || !signer) throw new Error('init first');
    const pair = await issueServerCert(signer, names, new Date());
    const next = join(this.root, `tls-${Date.now()}`);
    await mkdir(next);
    await writeFile(join(next, TLS_FILES.cert), pair.cert);
    await writeFile(join(next, TLS_FILES.key), pair.key, { mode: 0o600 });
    await writeFile(join(next, TLS_FILES.ca), this.ca.cert);
    for (const f of ['', TLS_FILES.cert, TLS_FILES.key, TLS_FILES.ca]) await own(join(next, f));
    await rm(join(this.root, 'tls'), { recursive: true, force: true });
    await rename(next, join(this.root, 'tls'));
    return pair.cert;
  }

  /** A conf dir holding the ConfigMap data, with loopback edits to the *.conf files. */
  async confDir(name: string, data: Record<string, string>, port: number, dataDir: string) {
    const dir = join(this.root, name, 'conf');
    await mkdir(dir, { recursive: true });
    await Promise.all([own(join(this.root, name)), own(dir)]);
    for (const [key, text] of Object.entries(data)) {
      await writeFile(
        join(dir, key),
        key.endsWith('.conf') ? loopbackConf(text, port, dataDir, this.root) : text,
      );
      await own(join(dir, key));
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
    opts: { port?: number; dataDir?: string; auth?: RedisOptions } = {},
  ): Promise<Instance> {
    const port = opts.port ?? (await freePort());
    const dataDir = opts.dataDir ?? join(this.root, name, 'data');
    await mkdir(dataDir, { recursive: true });
    await own(dataDir);
    const confDir = await this.confDir(name, data, port, dataDir);
    if (servesTls(data)) tlsPorts.add(port);
    // The pod's command (sh start-*.sh from the ConfigMap) and env (the password from the
    // Secret, the dirs, Sentinel discovery with loopback addresses).
    const container = startContainer({
      image: ENGINE_IMAGES.redis,
      name: `redis-${name}`,
      entrypoint: 'sh',
      args: [join(confDir, script)],
      env: {
        ...ROLE_ENV,
        CONF_DIR: confDir,
        DATA_DIR: dataDir,
        ...this.tlsEnv(data),
        ...env,
      },
      mounts: [this.root],
    });
    const inst: Instance = {
      name,
      port,
      dataDir,
      container,
      proc: container.proc,
      get log() {
        return container.output;
      },
    };
    this.containers.add(container);
    void container.exited.then(() => this.containers.delete(container));
    await waitFor(`${name} to answer PING`, 90_000, async () => {
      if (!container.running) throw new Error(`${name} exited:\n${inst.log}`);
      return (await ping(port, opts.auth)) === 'PONG';
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
    // The kubelet runs a hook inside the pod's container; a fresh container of the same
    // image, on the same network, is the same to the script.
    const r = await runOnceAsync({
      image: ENGINE_IMAGES.redis,
      name: `redis-${name}-${script}`,
      entrypoint: 'sh',
      args: [join(confDir, script)],
      env: { ...ROLE_ENV, ...this.tlsEnv(data), ...env },
      mounts: [this.root],
    });
    return { code: r.status, out: r.stdout };
  }

  /**
   * A signal to the container's main process, as the runtime sends it, and wait until the
   * container has ended (the rest of it ends with its main process). SIGKILL (the default)
   * kills every process in it at once: the crash a node loss or OOM kill looks like.
   */
  async kill(inst: Instance, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const c = inst.container;
    if (!c.running) return;
    if (signal === 'SIGKILL') c.kill();
    else if ((await c.started()) !== undefined) c.signal(signal);
    await c.exited;
  }

  async cleanup(): Promise<void> {
    const all = [...this.containers];
    for (const c of all) c.kill();
    await Promise.all(all.map((c) => c.exited));
    this.containers.clear();
    if (this.root) await rm(this.root, { recursive: true, force: true });
  }
}

/** One authenticated round trip, or undefined when nothing answers yet. */
async function ping(port: number, auth: RedisOptions = {}): Promise<string | undefined> {
  const c = client(port, { retryStrategy: () => null, connectTimeout: 500, ...auth });
  try {
    return await c.ping();
  } catch {
    return undefined;
  } finally {
    c.disconnect();
  }
}

/** A client as the admin user (the pods' scripts' user); `extra` may log in as another. */
export function client(port: number, extra: RedisOptions = {}): Redis {
  const c = new Redis({
    host: '127.0.0.1',
    port,
    username: ACL_USERS.admin.user,
    password: PASSWORD,
    maxRetriesPerRequest: 1,
    ...(tlsPorts.has(port) ? { tls: tlsOptions() } : {}),
    ...extra,
  });
  // Reconnect attempts after a test kills its server are expected; commands still reject.
  c.on('error', () => undefined);
  return c;
}

/** The app's client: the app user, over TLS, the master found through these Sentinels. */
export function sentinelAppClient(
  sentinels: ReadonlyArray<{ host: string; port: number }>,
  name: string,
): Redis {
  const tls = tlsOptions();
  const c = new Redis({
    sentinels: [...sentinels],
    name,
    username: 'app',
    password: PASSWORDS.app,
    sentinelUsername: 'app',
    sentinelPassword: PASSWORDS.app,
    tls,
    sentinelTLS: tls,
    enableTLSForSentinelMode: true,
  });
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
