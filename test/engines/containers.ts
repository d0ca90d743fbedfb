// The engine tests run the engines we ship: every Patroni, Postgres, Redis, Sentinel and
// exporter they start is a container of the project's own image (images/*, built by the
// engines project's global setup), started as the pod starts it:
// - `--network host`: loopback ports stand in for pod IPs, as with host processes;
// - the test's directory is mounted at its own path, so every path in the rendered configs
//   (after the harness's loopback edits) and in a process's command line is the same inside
//   and out: the host's /proc view (postmastersOf) still finds a member's postmaster;
// - the pod's securityContext: uid 999, read-only root filesystem, no capabilities, no new
//   privileges; its emptyDirs as tmpfs.
// A container's processes are host processes: the harness signals them by pid (kill -9 of
// all of them is a crash, SIGSTOP of Patroni alone a stall), and when the main process
// ends the kernel ends the rest of its PID namespace, as in a pod.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { getPriority, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { clusterHome } from '../../devcluster/paths.ts';
import { POSTGRES_UID } from '../../operator/tiers/database/statefulset.ts';
import { REDIS_UID } from '../../operator/engines/redis/pod.ts';

const ROOT = join(import.meta.dirname, '..', '..');

/** As `npm run images` tags them: SCALABLE_IMAGE_PREFIX, the chart's appVersion. */
const PREFIX = process.env['SCALABLE_IMAGE_PREFIX'] || 'ghcr.io/scalable-dev';
const TAG = /^appVersion:\s*["']?([^"'\s]+)/m.exec(
  readFileSync(join(ROOT, 'charts/scalable-operator/Chart.yaml'), 'utf8'),
)?.[1];
/** The Postgres major the postgres-patroni image carries (its Dockerfile's PG_MAJOR). */
export const PG_MAJOR =
  /^ARG PG_MAJOR=(\d+)$/m.exec(
    readFileSync(join(ROOT, 'images/postgres-patroni/Dockerfile'), 'utf8'),
  )?.[1] ?? '';
if (!TAG || !PG_MAJOR) throw new Error('no appVersion in the chart or PG_MAJOR in the Dockerfile');

/** The images the engine tests run, as the operator names them (operator/api/images.ts). */
export const ENGINE_IMAGES = {
  postgres: `${PREFIX}/postgres-patroni:${PG_MAJOR}-${TAG}`,
  redis: `${PREFIX}/redis:${TAG}`,
  redisExporter: `${PREFIX}/redis-exporter:${TAG}`,
  postgresExporter: `${PREFIX}/postgres-exporter:${TAG}`,
  pgbouncer: `${PREFIX}/pgbouncer:${TAG}`,
} as const;
/** Their images/ directories: what the engines project's global setup builds. */
export const ENGINE_IMAGE_NAMES = [
  'postgres-patroni',
  'redis',
  'redis-exporter',
  'postgres-exporter',
  'pgbouncer',
] as const;

/** The uid and gid every engine image runs as: the pods' runAsUser and fsGroup. */
export const ENGINE_UID = POSTGRES_UID;
if (REDIS_UID !== ENGINE_UID) throw new Error('the Redis and Postgres pods run as different uids');

/** Where the Postgres binaries are in the image. */
export const PG_BIN = `/usr/lib/postgresql/${PG_MAJOR}/bin`;

/** Every container the tests start carries these labels, for the global teardown's sweep. */
export const OWNER_LABEL = 'scalable.dev/engine-test';
export const PID_LABEL = 'scalable.dev/engine-test-pid';

export interface ContainerSpec {
  readonly image: string;
  /** A name prefix; a counter and the process id make each container's name unique. */
  readonly name: string;
  /** Replaces the image's entrypoint (a pod's `command`). */
  readonly entrypoint?: string;
  /** The command, or the entrypoint's arguments (a pod's `args`). */
  readonly args?: readonly string[];
  /** The container's env; values reach docker through its env, never its command line. */
  readonly env?: Readonly<Record<string, string>>;
  /** Host directories mounted read-write at their own path. */
  readonly mounts?: readonly string[];
  /** Host paths mounted read-only at their own path. */
  readonly readOnlyMounts?: readonly string[];
  /** Host directories mounted read-write at another path (`[host, inContainer]`). */
  readonly binds?: ReadonlyArray<readonly [string, string]>;
  /** Empty writable directories (a pod's emptyDirs); /tmp always is one. */
  readonly tmpfs?: readonly string[];
  /** /dev/shm's size (the database pod mounts a 256Mi memory emptyDir there). */
  readonly shmSize?: string;
  readonly workdir?: string;
  /** Names the container resolves (its /etc/hosts): a Service's DNS name -> its stand-in. */
  readonly hosts?: Readonly<Record<string, string>>;
}

let started = 0;

function uniqueName(prefix: string): string {
  started++;
  return `${prefix}-${process.pid}-${started}`.replace(/[^a-zA-Z0-9_.-]/g, '-');
}

/** `docker run` arguments for the spec: the restricted pod's settings, host network. */
function runArgs(spec: ContainerSpec, name: string, extra: readonly string[] = []): string[] {
  const a = [
    'run',
    '--rm',
    '--pull=never',
    '--name',
    name,
    '--network=host',
    `--user=${ENGINE_UID}:${ENGINE_UID}`,
    '--read-only',
    '--cap-drop=ALL',
    '--security-opt=no-new-privileges',
    `--label=${OWNER_LABEL}=${clusterHome()}`,
    `--label=${PID_LABEL}=${process.pid}`,
    '--tmpfs=/tmp:mode=1777',
    ...extra,
  ];
  // Owned by the pod's uid as fsGroup makes an emptyDir (docker keeps the image dir's mode).
  for (const t of spec.tmpfs ?? []) a.push(`--tmpfs=${t}:uid=${ENGINE_UID},gid=${ENGINE_UID}`);
  for (const m of spec.mounts ?? []) a.push('-v', `${m}:${m}`);
  for (const m of spec.readOnlyMounts ?? []) a.push('-v', `${m}:${m}:ro`);
  for (const [host, path] of spec.binds ?? []) a.push('-v', `${host}:${path}`);
  for (const k of Object.keys(spec.env ?? {})) a.push('-e', k);
  for (const [host, ip] of Object.entries(spec.hosts ?? {})) a.push(`--add-host=${host}:${ip}`);
  if (spec.shmSize) a.push(`--shm-size=${spec.shmSize}`);
  if (spec.workdir) a.push('-w', spec.workdir);
  if (spec.entrypoint !== undefined) a.push(`--entrypoint=${spec.entrypoint}`);
  a.push(spec.image, ...(spec.args ?? []));
  return a;
}

/** docker's own env plus the containers' (docker passes `-e NAME` on from it). */
function dockerEnv(...specs: ContainerSpec[]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const s of specs)
    for (const [k, v] of Object.entries(s.env ?? {})) {
      const prev = specs.find((o) => o !== s && o.env?.[k] !== undefined)?.env?.[k];
      if (prev !== undefined && prev !== v) throw new Error(`${k} differs between containers`);
      env[k] = v;
    }
  return env;
}

const q = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

/** The init container's exit status when it refused (exit 1 of its script). */
const INIT_REFUSED = 97;

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Host pids in the container with this id, by their cgroup (the runtime puts it there). */
function pidsOf(id: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    if (readText(`/proc/${entry}/cgroup`)?.includes(id)) found.push(Number(entry));
  }
  return found;
}

/** The pid as the container sees it (the last NSpid field): 1 is its main process. */
function innerPid(pid: number): number | undefined {
  const line = /^NSpid:\s+(.*)$/m.exec(readText(`/proc/${pid}/status`) ?? '')?.[1];
  const last = line?.trim().split(/\s+/).at(-1);
  return last === undefined ? undefined : Number(last);
}

/** A process's state letter (/proc/<pid>/stat: R, S, D, T when stopped...), if it runs. */
export function stateOf(pid: number): string | undefined {
  return /^\d+ \(.*\) (\S)/s.exec(readText(`/proc/${pid}/stat`) ?? '')?.[1];
}

/** A process's argv, or undefined once it has exited. */
export function argvOf(pid: number): string[] | undefined {
  return readText(`/proc/${pid}/cmdline`)
    ?.split('\0')
    .filter((a) => a !== '');
}

function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false; // exited meanwhile
  }
}

export interface StartOptions {
  /** Appends stdout and stderr to this file; without it they are kept in `output`. */
  readonly log?: string;
  /**
   * An init container run to completion first (a pod's initContainers): when it exits 1
   * the main container does not start and `refused` holds its stderr.
   */
  readonly init?: ContainerSpec;
  /** Called (synchronously, as the container ends) with the init container's refusal. */
  readonly onRefused?: (message: string) => void;
}

/** One running container (its docker client, attached: it ends when the container does). */
export class Container {
  readonly name: string;
  /** The docker client (after the init container, if any): exits when the container has. */
  readonly proc: ChildProcess;
  /** Resolves with the container's exit status once it has ended. */
  readonly exited: Promise<number | null>;
  /** stdout and stderr, when no log file was given. */
  output = '';
  private readonly tmp: string;
  private id: string | undefined;

  constructor(spec: ContainerSpec, opts: StartOptions = {}) {
    this.name = uniqueName(spec.name);
    this.tmp = mkdtempSync(join(tmpdir(), 'scalable-ctr-'));
    const cid = join(this.tmp, 'cid');
    const main = `exec docker ${runArgs(spec, this.name, [`--cidfile=${cid}`, '--sig-proxy=false'])
      .map(q)
      .join(' ')}`;
    const refusal = join(this.tmp, 'init.err');
    const script = opts.init
      ? [
          `docker ${runArgs(opts.init, `${this.name}-init`).map(q).join(' ')} 2>${q(refusal)}`,
          'rc=$?',
          `cat ${q(refusal)} >&2`,
          `[ "$rc" = 0 ] || { [ "$rc" = 1 ] && exit ${INIT_REFUSED}; exit "$rc"; }`,
          main,
        ].join('\n')
      : main;
    const out = opts.log ? openSync(opts.log, 'a') : undefined;
    this.proc = spawn('sh', ['-c', script], {
      env: dockerEnv(spec, ...(opts.init ? [opts.init] : [])),
      stdio: ['ignore', out ?? 'pipe', out ?? 'pipe'],
    });
    if (out !== undefined) closeSync(out);
    this.proc.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.proc.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.inheritNiceness();
    this.exited = new Promise((resolve) =>
      this.proc.once('exit', (code) => {
        // In the same tick as exitCode is set: whoever sees it ended sees why.
        if (code === INIT_REFUSED) opts.onRefused?.(readText(refusal)?.trim() ?? '');
        rmSync(this.tmp, { recursive: true, force: true });
        resolve(code);
      }),
    );
  }

  /**
   * The test's niceness for the container's processes, as a child process inherits it (the
   * runtime starts them at 0): `nice -n 5 npx vitest` stays polite to the rest of the machine,
   * and the engines do not outrun the test's own clients on a busy one. Processes forked
   * later (Patroni's postmaster, Postgres backends) inherit it from their parent.
   */
  private inheritNiceness(): void {
    const nice = getPriority();
    if (nice <= 0) return;
    const renice = () => {
      for (const pid of this.pids()) {
        try {
          if (getPriority(pid) < nice) setPriority(pid, nice);
        } catch {
          // ended meanwhile
        }
      }
    };
    // Once its main process runs, and again after its first children have started.
    void this.started()
      .then(renice)
      .then(() => sleep(2000))
      .then(renice)
      .catch(() => undefined);
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Host pids of its processes: none before it has started or after it has ended. */
  pids(): number[] {
    this.id ??= readText(join(this.tmp, 'cid'))?.trim() || undefined;
    return this.id && this.running ? pidsOf(this.id) : [];
  }

  /** Host pid of its main process (pid 1 inside). */
  mainPid(): number | undefined {
    return this.pids().find((p) => innerPid(p) === 1);
  }

  /** Waits until its main process runs its command; undefined when it ended first. */
  async started(timeoutMs = 60_000): Promise<number | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.running) {
      const pid = this.mainPid();
      // The runtime's `runc init` becomes the command by exec, under the same pid.
      const argv = pid === undefined ? undefined : argvOf(pid);
      if (pid !== undefined && argv !== undefined && !/runc/.test(argv[0] ?? '')) return pid;
      if (Date.now() > deadline) throw new Error(`${this.name} did not start in ${timeoutMs} ms`);
      await sleep(50);
    }
    return undefined;
  }

  /** A signal to its main process, as the runtime sends SIGTERM on a stop. */
  signal(sig: NodeJS.Signals): boolean {
    const pid = this.mainPid();
    if (pid !== undefined) return signal(pid, sig);
    if (!this.running) return false;
    // Not started yet: through the daemon, which waits for it.
    return spawnSync('docker', ['kill', `--signal=${sig}`, this.name]).status === 0;
  }

  /** SIGKILL to every process in it at once: a crash. */
  kill(): void {
    const pids = this.pids();
    for (const p of pids) signal(p, 'SIGKILL');
    if (pids.length === 0 && this.running) {
      // Not started (its init container, or docker still creating it): nothing may start.
      this.proc.kill('SIGKILL');
      spawnSync('docker', ['rm', '--force', this.name, `${this.name}-init`], { stdio: 'ignore' });
    }
  }

  /** The same signal to its processes whose argv `match`es (SIGSTOP of one program). */
  signalWhere(match: (argv: readonly string[]) => boolean, sig: NodeJS.Signals): number[] {
    const hit = this.pids().filter((p) => {
      const argv = argvOf(p);
      return argv !== undefined && match(argv);
    });
    for (const p of hit) signal(p, sig);
    return hit;
  }

  /** `docker exec` (a kubelet exec probe): env given by name, values through docker's env. */
  exec(args: readonly string[], env: Readonly<Record<string, string>> = {}) {
    return spawnSync(
      'docker',
      ['exec', ...Object.keys(env).flatMap((k) => ['-e', k]), this.name, ...args],
      { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 },
    );
  }

  /** Ends it (if it runs) and waits until it has. */
  async remove(): Promise<void> {
    this.kill();
    await this.exited;
  }
}

/** Starts a container; its docker client runs until the container has ended. */
export function startContainer(spec: ContainerSpec, opts: StartOptions = {}): Container {
  return new Container(spec, opts);
}

export interface RunResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A command in a fresh container, to completion (initdb, an init container's check). */
export function runOnce(spec: ContainerSpec, timeoutMs = 120_000): RunResult {
  const r = spawnSync('docker', runArgs(spec, uniqueName(spec.name)), {
    env: dockerEnv(spec),
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** runOnce without blocking the event loop (a hook whose duration is measured). */
export async function runOnceAsync(spec: ContainerSpec, timeoutMs = 120_000): Promise<RunResult> {
  const c = new Container(spec);
  const timer = setTimeout(() => c.kill(), timeoutMs);
  const status = await c.exited;
  clearTimeout(timer);
  return { status, stdout: c.output, stderr: '' };
}

/** What every engine test container is, for the teardown: this home's, by creator pid. */
export function sweepContainers(onlyDead = true): string[] {
  const r = spawnSync(
    'docker',
    [
      'ps',
      '--all',
      '--filter',
      `label=${OWNER_LABEL}=${clusterHome()}`,
      '--format',
      `{{.Names}}\t{{.Label "${PID_LABEL}"}}`,
    ],
    { encoding: 'utf8' },
  );
  const names = (r.stdout ?? '')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('\t') as [string, string])
    .filter(([, pid]) => !onlyDead || !alive(Number(pid)))
    .map(([n]) => n);
  if (names.length > 0) spawnSync('docker', ['rm', '--force', ...names]);
  return names;
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The engine versions in the images (for benchmarks: which versions a figure is of). */
export function engineVersions(): { patroni: string; postgres: string; redis: string } {
  const run = (image: string, args: string[]) =>
    runOnce({
      image,
      name: 'engine-version',
      entrypoint: args[0] ?? '',
      args: args.slice(1),
    }).stdout.trim();
  return {
    patroni: run(ENGINE_IMAGES.postgres, ['patroni', '--version']).replace(/^patroni /, ''),
    postgres:
      /PostgreSQL\)\s+(\S+)/.exec(run(ENGINE_IMAGES.postgres, ['postgres', '-V']))?.[1] ?? '?',
    redis: /v=(\S+)/.exec(run(ENGINE_IMAGES.redis, ['redis-server', '--version']))?.[1] ?? '?',
  };
}
