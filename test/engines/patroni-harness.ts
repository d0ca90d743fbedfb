// Runs the database tier for real: the rendered objects are applied to the embedded control
// plane (kwok runs the StatefulSet pods as fakes) and containers of the postgres-patroni
// image (Patroni and Postgres as the pod runs them, containers.ts) on loopback take the
// pods' names, so Patroni labels those pods and the rendered Services follow. Patroni
// authenticates with a token of the rendered ServiceAccount, so the rendered Role is exactly
// what it gets.
import { execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { binPath, ensureCluster } from '../../devcluster/index.ts';
import { defaultPolicyNames, patroniClusterRole } from '../../operator/admission.ts';
import type { AppModel } from '../../operator/api/model.ts';
import { toModel } from '../../operator/api/model.ts';
import { validateApp } from '../../operator/api/validate.ts';
import { buildDatabase } from '../../operator/tiers/database/build.ts';
import type { K8sObject } from '../../operator/tiers/shared/chart.ts';
import {
  PYTHON,
  REWIND_PASSWORD_ENV,
  dataVersionScript,
} from '../../operator/tiers/database/statefulset.ts';
import { FENCE_FILE, fenceArgs, fenceScript } from '../../operator/tiers/database/fence.ts';
import {
  PGBACKREST_CONFIG_FILE,
  renderPgBackRestConfig,
} from '../../operator/tiers/database/backup.ts';
import { FENCE_MARGIN_SECONDS } from '../../operator/tiers/database/lease-break.ts';
import {
  PRIMARY_ROLE,
  REWIND_USER,
  ROLE_LABEL,
  SUPERUSER,
  appDatabaseName,
  podName,
  shardIndexes,
  shardName,
  tierName,
} from '../../operator/tiers/database/names.ts';
import {
  ENV,
  POOLER_AUTH_FILE,
  SOCKET_DIR,
  backupLayout,
  binDir,
  renderPatroniConfig,
  renderPoolerAuthFile,
  renderPostBootstrap,
} from '../../operator/tiers/database/patroni-config.ts';
import { eventually } from '../../devcluster/testing.ts';
import {
  TLS_FILES,
  tlsDnsNamesOf,
  tlsSecretName,
} from '../../operator/tiers/shared/tls/objects.ts';
import { IF_SERVED_ANNOTATION } from '../../operator/tiers/shared/meta.ts';
import { issueCa, issueServerCert } from '../../operator/tiers/shared/tls/x509.ts';
import type { KeyPair } from '../../operator/tiers/shared/tls/x509.ts';
import { ENGINE_IMAGES, ENGINE_UID, startContainer, stateOf } from './containers.ts';
import type { Container } from './containers.ts';
import { startStallProxy } from '../integration/stall-proxy.ts';
import type { StallProxy } from '../integration/stall-proxy.ts';

// Shared with the integration tests: poll until fn returns a value.
export { eventually };

export const PASSWORDS = {
  superuser: 'su-secret',
  replication: 'repl-secret',
  rewind: 'rewind-secret',
  restapi: 'rest-secret',
  app: 'app-secret',
  monitor: 'mon-secret',
} as const;

export interface Member {
  readonly name: string;
  readonly shard: number;
  readonly pgPort: number;
  readonly restPort: number;
  readonly dataDir: string;
  /**
   * The host directory mounted as the container's socket directory (an emptyDir in the pod):
   * the superuser may connect only there, so the tests' superuser clients do too.
   */
  readonly socketDir: string;
  /** The container's output (Patroni's and Postgres's logs), kept when a test fails. */
  readonly log: string;
  /** The member's pod: its containers (the data-version check, then Patroni). */
  container?: Container;
  /** The container's docker client: it exits when the container has ended. */
  proc?: ChildProcess;
  /** The data-version check's message when it refused to start this member. */
  refused?: string;
  /** Patroni's processes stopped by pauseMember, for resumeMember. */
  paused?: number[];
  /** Its own kubeconfig, when its API requests go through a proxy of its own. */
  kubeconfig?: string;
}

/** Whether the member's container (with Patroni in it) is running. */
export const running = (m: Member): boolean =>
  m.proc !== undefined && m.proc.exitCode === null && m.proc.signalCode === null;

/** Patroni's processes: python running the patroni script (not fence.py, which starts it). */
export const isPatroni = (argv: readonly string[]): boolean =>
  /python/.test(argv[0] ?? '') && (argv[1] ?? '').endsWith('/patroni');

export interface PodJson {
  metadata: { name: string; labels?: Record<string, string> };
  status?: { podIP?: string };
}

/** Ports freePort handed out in this process. */
const handedOut = new Set<number>();

/**
 * A loopback port free now and not handed out before by this process: the kernel may offer
 * a port it just offered again once its listener closed (seen: two members of one shard
 * given the same Postgres port, the second never started).
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const addr = s.address();
        s.close(() =>
          typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port')),
        );
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

/**
 * The engine tests' CA, standing in for the operator's (the reconciler issues in a cluster;
 * here the harness issues from the same module into the files the pods would mount).
 */
export const TEST_CA: KeyPair = await issueCa('engine-test CA', new Date());

/** The entrypoint's certificate check, every second here (30 s in a pod). */
export const TLS_RELOAD_TEST_SECONDS = 1;

/** Ports of members started with `tls: false`: their clients connect in plain. */
const plainPorts = new Set<number>();

/**
 * What a client sets to connect to a member with TLS, verifying as the sidecars do: the
 * CA, and the name `localhost` (which every server certificate carries). Undefined for a
 * member of a database with `tls: false`.
 */
export function sslFor(port: number): ConnectionOptions | undefined {
  return plainPorts.has(port) ? undefined : { ca: TEST_CA.cert, servername: 'localhost' };
}

/** `{ ssl }` for a pg client config, or nothing for a plain member. */
export const sslOf = (port: number): { ssl?: ConnectionOptions } => {
  const ssl = sslFor(port);
  return ssl ? { ssl } : {};
};

/** Socket directories of the members, by their Postgres port. */
const socketDirs = new Map<number, string>();

/**
 * Where a superuser client connects to the member listening on `port`: its socket, as
 * pg_hba admits the superuser nowhere else (node-postgres takes a directory as `host`).
 */
export function superuserClientConfig(port: number, database = 'postgres'): pg.ClientConfig {
  const host = socketDirs.get(port);
  if (!host) throw new Error(`no member listens on port ${port}`);
  return { host, port, user: 'postgres', password: PASSWORDS.superuser, database };
}

/** One short-lived superuser connection; closed whatever happens. */
export async function sql<R extends pg.QueryResultRow>(
  port: number,
  text: string,
  params: unknown[] = [],
  database = 'postgres',
) {
  const c = new pg.Client({
    ...superuserClientConfig(port, database),
    // A loaded machine: connections over TCP with TLS took over 1 s (sockets are quicker).
    connectionTimeoutMillis: 3000,
    query_timeout: 5000,
  });
  c.on('error', () => undefined);
  try {
    await c.connect();
    return (await c.query<R>(text, params)).rows;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Shard 0's primary, once one replica streams from it (a two-member shard settled). */
export function streamingPrimary(h: Harness): Promise<Member> {
  return eventually(
    'a primary with a streaming replica',
    async () => {
      const p = h.primaryOf(0);
      if (!p) return undefined;
      const rows = await sql<{ n: string }>(
        p.pgPort,
        "SELECT count(*) AS n FROM pg_stat_replication WHERE state = 'streaming'",
      );
      return rows[0]?.n === '1' ? p : undefined;
    },
    120_000,
    500,
  );
}

/** Postmasters serving `dataDir` (`postgres -D dataDir`), by their command lines. */
export function postmastersOf(dataDir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let args: string[];
    try {
      args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // exited meanwhile
    }
    const d = args.indexOf('-D');
    if (args[0]?.endsWith('/postgres') && d > 0 && args[d + 1] === dataDir)
      found.push(Number(entry));
  }
  return found;
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export function appModel(namespace: string, database: Record<string, unknown>): AppModel {
  const r = validateApp({
    apiVersion: 'scalable.dev/v1alpha1',
    kind: 'ScalableApp',
    metadata: { name: 'shop', namespace },
    spec: { web: { image: 'shop:1' }, database },
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return toModel(r.app);
}

export interface Harness {
  readonly app: AppModel;
  readonly ns: string;
  readonly dir: string;
  /** Admin kubeconfig of the embedded control plane. */
  readonly kubeconfig: string;
  readonly members: readonly Member[];
  /** The CA file clients verify against (as an app pod mounts it). */
  readonly caFile: string;
  kubectl(args: string[], input?: string): string;
  pods(): PodJson[];
  roleOf(pod: string): string | undefined;
  /** The one pod of the shard labelled primary, if exactly one is. */
  primaryOf(shard: number): Member | undefined;
  /** Pods backing a Service, by its EndpointSlices. */
  endpointsOf(service: string): string[];
  /**
   * As the pod starts: the rendered data-version check (the init container), then Patroni
   * unless the check refused (then, once the container has ended, `refused` holds its
   * message). `running(m)` is true from this call on, as for a pod that is initialising.
   */
  startMember(m: Member): void;
  /**
   * The spec changed as the operator would render it: each shard's ConfigMap files are
   * rewritten now, and members started from now on get the new container args. Returns the
   * new model (`app` stays the one the harness started with).
   */
  reconfigure(database: Record<string, unknown>): AppModel;
  /**
   * As the kubelet stops a container: SIGTERM to its main process, then SIGKILL after the
   * grace period; whatever Patroni left running dies with the container.
   */
  stopMember(m: Member, graceMs?: number): Promise<void>;
  /** Patroni's /readiness, the pod's readiness probe. */
  isReady(m: Member): Promise<boolean>;
  /** The proxy in front of the API server that this member's Patroni talks through. */
  apiProxyOf(m: Member): StallProxy | undefined;
  /**
   * The proxy in front of this member's Postgres that the other members reach it through
   * (its connect address: replication and pg_rewind), with `pgProxies`.
   */
  pgProxyOf(m: Member): StallProxy | undefined;
  /** kill -9 of every process of the member, Patroni and Postgres: a crashed node. */
  killMember(m: Member): void;
  /**
   * SIGSTOP to Patroni's processes alone (a stalled Patroni: starved of CPU, a long GC
   * pause): Postgres keeps serving, nothing renews the leader lock, the REST API does not
   * answer. Resolves with the stopped pids once the container runs (a no-op when it ended).
   */
  pauseMember(m: Member): Promise<number[]>;
  /** SIGCONT to the processes pauseMember stopped. */
  resumeMember(m: Member): void;
  /**
   * Kills every member and deletes the namespace; the member logs are kept (and where is
   * printed) when `outcome` (afterAll's suite) has a failure, or SCALABLE_KEEP_ENGINE_LOGS=1.
   */
  stop(outcome?: TaskOutcome): Promise<void>;
}

/** What of a vitest task (afterAll's suite, a test) tells whether it failed. */
export interface TaskOutcome {
  readonly name?: string;
  readonly result?: { readonly state?: string; readonly errors?: readonly unknown[] };
  readonly tasks?: readonly TaskOutcome[];
}

/** Whether the task, a hook of it, or any task inside it failed. */
export function failedIn(task: TaskOutcome): boolean {
  return (
    task.result?.state === 'fail' ||
    (task.result?.errors?.length ?? 0) > 0 ||
    (task.tasks ?? []).some(failedIn)
  );
}

export interface HarnessOptions {
  /**
   * Patroni authenticates as this ServiceAccount of the `default` namespace, bound to the
   * rendered Role, instead of the rendered ServiceAccount: the devcluster's API server audits
   * default's ServiceAccounts (devcluster/components.ts AUDIT_POLICY), so its requests can be
   * counted exactly (bench:failover's API cost).
   */
  readonly auditedIdentity?: string;
  /**
   * Each member talks to the API server through a proxy of its own (apiProxyOf), which a
   * test can stall or slow down for that member alone.
   */
  readonly apiProxies?: boolean;
  /**
   * database.backup: the S3 keys each member's env gets (the pod takes them from the
   * credentials Secret). The rendered pgbackrest.conf is written beside patroni.yml, its
   * store verified against the harness's CA file (the pod mounts database.backup.s3.ca).
   */
  readonly backupEnv?: Readonly<Record<string, string>>;
  /**
   * The other members reach each member's Postgres (its connect address: the replication
   * stream, pg_rewind) through a proxy of its own (pgProxyOf), which a test can stall to
   * hold a standby's stream back while clients, which connect directly, go on writing.
   */
  readonly pgProxies?: boolean;
  /**
   * Renders as an earlier operator did: the patroni.yml text each member starts from and the
   * objects applied (e.g. a shard bootstrapped before a dynamic-config parameter changed).
   */
  readonly rendered?: {
    readonly patroniYml?: (text: string) => string;
    readonly objects?: (objects: K8sObject[]) => K8sObject[];
  };
}

/**
 * Apply the rendered database tier in a fresh namespace and start one Patroni per pod.
 * `tlsNames`: extra names (e.g. the loopback IPs of Service stand-ins) the certificates carry.
 */
export async function startDatabase(
  prefix: string,
  database: Record<string, unknown>,
  tlsNames: readonly string[] = [],
  opts: HarnessOptions = {},
): Promise<Harness> {
  const ns = `${prefix}-${Date.now().toString(36)}`;
  const app = appModel(ns, database);
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  const kubeconfig = (await ensureCluster({ log: () => undefined })).kubeconfigPath;
  const members: Member[] = [];
  const kubectl = (args: string[], input?: string): string =>
    execFileSync(binPath('kubectl'), [`--kubeconfig=${kubeconfig}`, ...args], {
      input,
      stdio: 'pipe',
      timeout: 30_000,
    }).toString();
  const pods = (): PodJson[] =>
    (JSON.parse(kubectl(['-n', ns, 'get', 'pods', '-o', 'json'])) as { items: PodJson[] }).items;
  const perShard = (app.database?.replicasPerShard ?? 0) + 1;
  const shards = shardIndexes(app);
  const patroniKubeconfig = join(dir, 'kubeconfig');
  const tls = app.database?.tls ?? false;
  const caFile = join(dir, 'ca', TLS_FILES.ca);
  const proxies = new Map<string, StallProxy>();
  const pgProxies = new Map<string, StallProxy>();
  // The spec the members' files and container args are rendered from (reconfigure).
  let current = app;

  function startMember(m: Member): void {
    delete m.refused;
    delete m.paused;
    // Empty, as an emptyDir is for a new pod: no socket or lock file of the last container.
    rmSync(m.socketDir, { recursive: true, force: true });
    mkdirSync(m.socketDir, { recursive: true, mode: 0o2775 });
    chownSync(m.socketDir, ENGINE_UID, ENGINE_UID);
    const version = app.database?.version ?? '';
    // Exactly what the pod's env carries (statefulset.ts), with loopback addresses and the
    // harness's paths; everything else comes from the rendered patroni.yml.
    const env = {
      KUBECONFIG: m.kubeconfig ?? patroniKubeconfig,
      PATRONI_KUBERNETES_CONTEXT: 'patroni',
      [ENV.name]: m.name,
      [ENV.podIp]: '127.0.0.1',
      [ENV.postgresConnect]: `127.0.0.1:${pgProxies.get(m.name)?.port ?? m.pgPort}`,
      // With TLS, members verify each other's REST API by name: localhost is in every cert.
      [ENV.restapiConnect]: `${tls ? 'localhost' : '127.0.0.1'}:${m.restPort}`,
      PATRONI_POSTGRESQL_LISTEN: `127.0.0.1:${m.pgPort}`,
      PATRONI_RESTAPI_LISTEN: `127.0.0.1:${m.restPort}`,
      PATRONI_POSTGRESQL_DATA_DIR: m.dataDir,
      PATRONI_POSTGRESQL_PGPASS: `${m.dataDir}.pgpass`,
      [ENV.superuserPassword]: PASSWORDS.superuser,
      [ENV.replicationPassword]: PASSWORDS.replication,
      [REWIND_PASSWORD_ENV]: PASSWORDS.rewind,
      [ENV.restapiUsername]: 'patroni',
      [ENV.restapiPassword]: PASSWORDS.restapi,
      [ENV.appPassword]: PASSWORDS.app,
      [ENV.monitorPassword]: PASSWORDS.monitor,
      // pgBackRest reads the member's own data directory and port from its env (which wins
      // over the rendered file's pod paths, as PATRONI_* wins over patroni.yml).
      ...(app.database?.backup
        ? {
            ...opts.backupEnv,
            PGBACKREST_PG1_PATH: m.dataDir,
            PGBACKREST_PG1_PORT: String(m.pgPort),
          }
        : {}),
      // SCALABLE_PATRONI_LOG_LEVEL=DEBUG for a post-mortem of Patroni's decisions.
      ...(process.env['SCALABLE_PATRONI_LOG_LEVEL']
        ? { PATRONI_LOG_LEVEL: process.env['SCALABLE_PATRONI_LOG_LEVEL'] }
        : {}),
    };
    const configFile = join(dir, `shard-${m.shard}`, 'patroni.yml');
    const image = ENGINE_IMAGES.postgres;
    const container = startContainer(
      {
        image,
        name: `${ns}-${m.name}`,
        // The container's command as rendered: fence.py (pid 1) starting Patroni, fencing
        // Postgres when Patroni stops renewing its lock, and checking the TLS certificate
        // (every second here); its pipe and merged config in the container's /tmp, as in the pod.
        entrypoint: PYTHON,
        args: [
          join(dir, `shard-${m.shard}`, FENCE_FILE),
          ...fenceArgs({
            config: configFile,
            pgdata: m.dataDir,
            margin: FENCE_MARGIN_SECONDS,
            superuser: SUPERUSER,
            rewindUser: REWIND_USER,
            ...(renderPoolerAuthFile(current) === undefined
              ? {}
              : {
                  poolerSql: join(dir, `shard-${m.shard}`, POOLER_AUTH_FILE),
                  appDatabase: appDatabaseName(current),
                }),
            ...(tls
              ? {
                  cert: join(dir, `tls-${m.shard}`, TLS_FILES.cert),
                  every: TLS_RELOAD_TEST_SECONDS,
                }
              : {}),
          }),
        ],
        env,
        mounts: [dir],
        binds: [[m.socketDir, SOCKET_DIR]],
        shmSize: '256m',
        workdir: dir,
      },
      {
        log: m.log,
        // The init container: the same script, the data mounted read-only.
        init: {
          image,
          name: `${ns}-${m.name}-check`,
          entrypoint: 'sh',
          args: ['-c', dataVersionScript()],
          env: { PGDATA: m.dataDir, PG_BIN: binDir(version) },
          readOnlyMounts: [dir],
        },
        onRefused: (message) => (m.refused = message),
      },
    );
    m.container = container;
    m.proc = container.proc;
  }

  /**
   * A shard's ConfigMap files as the pod mounts them (configDir is the only change), owned
   * by the container's uid; with the pooler on, its auth SQL that fence.py runs.
   */
  function writeShardFiles(model: AppModel, shard: number, edit = (t: string) => t): void {
    const configDir = join(dir, `shard-${shard}`);
    const layout = { configDir, tlsDir: join(dir, `tls-${shard}`), caDir: join(dir, 'ca') };
    const files: Record<string, [string, number]> = {
      'patroni.yml': [edit(renderPatroniConfig(model, shard, layout)), 0o644],
      'post-bootstrap.sh': [renderPostBootstrap(model), 0o755],
      [FENCE_FILE]: [fenceScript(), 0o755],
    };
    const pooler = renderPoolerAuthFile(model);
    if (pooler !== undefined) files[POOLER_AUTH_FILE] = [pooler, 0o644];
    for (const [name, [text, mode]] of Object.entries(files)) {
      writeFileSync(join(configDir, name), text, { mode });
      chmodSync(join(configDir, name), mode);
      chownSync(join(configDir, name), ENGINE_UID, ENGINE_UID);
    }
  }

  function reconfigure(database: Record<string, unknown>): AppModel {
    current = appModel(ns, database);
    for (const shard of shards) writeShardFiles(current, shard);
    return current;
  }

  function killMember(m: Member): void {
    m.container?.kill();
    // Its postmaster is in the container; a data directory has no other.
    for (const postmaster of postmastersOf(m.dataDir)) killPid(postmaster);
  }

  /**
   * The container has ended, and with its main process every other process in it (the
   * kernel ends a PID namespace with its init). A postmaster of the member's data directory
   * still running would be one outside any container: say so, and end it.
   */
  async function endContainer(m: Member): Promise<void> {
    for (let quiet = 0; quiet < 3;) {
      const left = postmastersOf(m.dataDir);
      quiet = left.length === 0 ? quiet + 1 : 0;
      for (const postmaster of left) {
        const line = `container of ${m.name} ended: SIGKILL to the postmaster ${postmaster} left running`;
        appendFileSync(m.log, `[kubelet stand-in] ${new Date().toISOString()} ${line}\n`);
        console.warn(`[${prefix}] ${line}`);
        killPid(postmaster);
      }
      await sleep(100);
    }
  }

  const harness: Harness = {
    app,
    reconfigure,
    ns,
    dir,
    kubeconfig,
    members,
    caFile,
    kubectl,
    pods,
    roleOf: (pod) => pods().find((p) => p.metadata.name === pod)?.metadata.labels?.[ROLE_LABEL],
    primaryOf(shard) {
      const names = new Set(members.filter((m) => m.shard === shard).map((m) => m.name));
      const leaders = pods().filter(
        (p) => names.has(p.metadata.name) && p.metadata.labels?.[ROLE_LABEL] === PRIMARY_ROLE,
      );
      return leaders.length === 1
        ? members.find((m) => m.name === leaders[0]?.metadata.name)
        : undefined;
    },
    endpointsOf(service) {
      const slices = JSON.parse(
        kubectl([
          '-n',
          ns,
          'get',
          'endpointslices',
          '-l',
          `kubernetes.io/service-name=${service}`,
          '-o',
          'json',
        ]),
      ) as { items: Array<{ endpoints?: Array<{ targetRef?: { name: string } }> }> };
      return slices.items
        .flatMap((s) => (s.endpoints ?? []).flatMap((e) => (e.targetRef ? [e.targetRef.name] : [])))
        .sort();
    },
    startMember,
    async stopMember(m, graceMs = 60_000) {
      const container = m.container;
      if (!container || !running(m)) return;
      // The runtime signals the main process once it runs (not an init container).
      if ((await container.started()) !== undefined) container.signal('SIGTERM');
      // The grace timer ends with the container: a late kill would hit the member's next one.
      const grace = new AbortController();
      const late = sleep(graceMs, undefined, { signal: grace.signal }).then(
        () => container.kill(),
        () => undefined,
      );
      await Promise.race([container.exited, late]);
      grace.abort();
      await container.exited;
      await endContainer(m);
    },
    async isReady(m) {
      if (!tls) {
        try {
          const res = await fetch(`http://127.0.0.1:${m.restPort}/readiness`, {
            signal: AbortSignal.timeout(1000),
          });
          return res.status === 200;
        } catch {
          return false;
        }
      }
      // As the kubelet's HTTPS probe: encrypted, the certificate not checked.
      return new Promise<boolean>((resolve) => {
        const req = httpsRequest(
          { host: '127.0.0.1', port: m.restPort, path: '/readiness', rejectUnauthorized: false },
          (res) => {
            res.resume();
            resolve(res.statusCode === 200);
          },
        );
        req.setTimeout(1000, () => req.destroy());
        req.on('error', () => resolve(false));
        req.end();
      });
    },
    killMember,
    apiProxyOf: (m) => proxies.get(m.name),
    pgProxyOf: (m) => pgProxies.get(m.name),
    async pauseMember(m) {
      const container = m.container;
      if (!container || (await container.started()) === undefined) return [];
      // Patroni in a pod without TLS is pid 1 and forks its worker (it acts as init): both.
      const stopped = await eventually(
        `${m.name}'s Patroni processes`,
        async () => {
          const pids = container.signalWhere(isPatroni, 'SIGSTOP');
          return pids.length > 0 || !container.running ? pids : undefined;
        },
        30_000,
        100,
      );
      m.paused = [...(m.paused ?? []), ...stopped];
      // A signal is delivered asynchronously: resolve once each one has stopped (or ended).
      await eventually(
        `${m.name}'s Patroni stopped`,
        async () =>
          stopped.every((p) => [undefined, 'T'].includes(stateOf(p))) ? true : undefined,
        10_000,
        20,
      );
      return stopped;
    },
    resumeMember(m) {
      for (const pid of m.paused ?? []) {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {
          // ended meanwhile (a kill or a stop)
        }
      }
      delete m.paused;
    },
    async stop(outcome) {
      for (const m of members) killMember(m);
      // Each container has ended (and its docker client with it) before its files go.
      await Promise.race([Promise.all(members.map((m) => m.container?.exited)), sleep(30_000)]);
      await Promise.all([...proxies.values(), ...pgProxies.values()].map((p) => p.close()));
      try {
        kubectl(['delete', 'namespace', ns, '--wait=false']);
        if (opts.auditedIdentity)
          kubectl(['-n', 'default', 'delete', 'serviceaccount', opts.auditedIdentity]);
      } catch {
        // the cluster may be gone already
      }
      // A failure keeps the member logs (Patroni, Postgres) for a post-mortem: in CI too.
      if (outcome && failedIn(outcome))
        console.error(`[${prefix}] a test failed: member logs kept in ${dir}`);
      else if (process.env['SCALABLE_KEEP_ENGINE_LOGS'])
        console.log(`[${prefix}] logs kept in ${dir}`);
      else rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    kubectl(['create', 'namespace', ns]);
    kubectl(
      ['apply', '--server-side', '-f', '-'],
      // Without cert-manager, as the operator applies them: its Certificates and Issuers are
      // skipped (the harness issues into the Secrets' files itself, below).
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          // The chart's ClusterRole, which the rendered RoleBinding names (installCrd's too).
          patroniClusterRole(defaultPolicyNames()),
          ...(opts.rendered?.objects ?? ((o: K8sObject[]) => o))(
            buildDatabase(app).filter(
              (o) => o.metadata.annotations?.[IF_SERVED_ANNOTATION] !== 'true',
            ),
          ),
        ],
      }),
    );
    await eventually(
      'the StatefulSet pods (kwok)',
      async () =>
        pods().filter((p) => p.status?.podIP).length === shards.length * perShard
          ? true
          : undefined,
      60_000,
    );

    // A kubeconfig for Patroni holding a token of the rendered ServiceAccount only (or of an
    // audited stand-in bound to the same ClusterRole: the same rights). The admission policy
    // that narrows them (operator/admission.ts) is not installed here: every member shares
    // one token, not bound to its pod (test/integration/admission-policies.test.ts has it).
    const audited = opts.auditedIdentity;
    if (audited) {
      kubectl(['-n', 'default', 'create', 'serviceaccount', audited]);
      kubectl([
        '-n',
        ns,
        'create',
        'rolebinding',
        `${tierName(app)}-audited`,
        `--clusterrole=${app.rbac.patroniClusterRole}`,
        `--serviceaccount=default:${audited}`,
      ]);
    }
    const token = (
      audited
        ? kubectl(['-n', 'default', 'create', 'token', audited, '--duration=1h'])
        : kubectl(['-n', ns, 'create', 'token', tierName(app), '--duration=1h'])
    ).trim();
    const admin = JSON.parse(kubectl(['config', 'view', '--raw', '-o', 'json'])) as {
      clusters: Array<{ cluster: { server: string; 'certificate-authority-data': string } }>;
    };
    const cluster = admin.clusters[0]?.cluster;
    if (!cluster) throw new Error('no cluster in the kubeconfig');
    writeFileSync(
      patroniKubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'dev', cluster }],
        users: [{ name: 'patroni', user: { token } }],
        contexts: [
          { name: 'patroni', context: { cluster: 'dev', user: 'patroni', namespace: ns } },
        ],
        'current-context': 'patroni',
      }),
    );
    mkdirSync(join(dir, 'data'), { mode: 0o700 });
    const owned = ['', 'kubeconfig', 'data'];
    // Each shard's ConfigMap files, as the pod mounts them (configDir is the only change).
    // The CA as app pods and members mount it, and per shard the key pair issued for the
    // names the rendered Secret declares (as the reconciler issues it), 0600 for Postgres.
    mkdirSync(join(dir, 'ca'));
    writeFileSync(caFile, TEST_CA.cert);
    owned.push('ca', 'ca/ca.crt');
    const rendered = buildDatabase(app);
    for (const shard of shards) {
      const configDir = join(dir, `shard-${shard}`);
      const tlsDir = join(dir, `tls-${shard}`);
      mkdirSync(configDir);
      if (tls) {
        const declared = rendered.find(
          (o) => o.kind === 'Secret' && o.metadata.name === tlsSecretName(shardName(app, shard)),
        );
        if (!declared) throw new Error(`no TLS Secret rendered for shard ${shard}`);
        const pair = await issueServerCert(
          TEST_CA,
          [...tlsDnsNamesOf(declared), '127.0.0.1', ...tlsNames],
          new Date(),
        );
        mkdirSync(tlsDir);
        writeFileSync(join(tlsDir, TLS_FILES.cert), pair.cert);
        writeFileSync(join(tlsDir, TLS_FILES.key), pair.key, { mode: 0o600 });
        owned.push(
          `tls-${shard}`,
          `tls-${shard}/${TLS_FILES.cert}`,
          `tls-${shard}/${TLS_FILES.key}`,
        );
      }
      writeShardFiles(app, shard, opts.rendered?.patroniYml);
      if (app.database?.backup) {
        const layout = { ...backupLayout(), configDir, caFile };
        writeFileSync(
          join(configDir, PGBACKREST_CONFIG_FILE),
          renderPgBackRestConfig(app, shard, layout),
        );
        owned.push(`shard-${shard}/${PGBACKREST_CONFIG_FILE}`);
      }
      owned.push(`shard-${shard}`);
      for (let i = 0; i < perShard; i++) {
        members.push({
          name: podName(app, shard, i),
          shard,
          pgPort: await freePort(),
          restPort: await freePort(),
          dataDir: join(dir, 'data', `s${shard}m${i}`),
          socketDir: join(dir, 'socket', `s${shard}m${i}`),
          log: join(dir, `s${shard}m${i}.log`),
        });
      }
    }
    if (opts.apiProxies) {
      const server = new URL(cluster.server);
      for (const m of members) {
        const proxy = await startStallProxy({ host: server.hostname, port: Number(server.port) });
        proxies.set(m.name, proxy);
        const file = join(dir, `kubeconfig-${m.name}`);
        const own = JSON.parse(readFileSync(patroniKubeconfig, 'utf8')) as {
          clusters: Array<{ cluster: { server: string } }>;
        };
        for (const c of own.clusters) c.cluster.server = `https://127.0.0.1:${proxy.port}`;
        writeFileSync(file, JSON.stringify(own));
        chownSync(file, ENGINE_UID, ENGINE_UID);
        m.kubeconfig = file;
      }
    }
    if (opts.pgProxies)
      for (const m of members)
        pgProxies.set(m.name, await startStallProxy({ host: '127.0.0.1', port: m.pgPort }));
    for (const f of owned) chownSync(join(dir, f), ENGINE_UID, ENGINE_UID);
    if (!tls) for (const m of members) plainPorts.add(m.pgPort);
    for (const m of members) socketDirs.set(m.pgPort, m.socketDir);
    for (const m of members) startMember(m);
  } catch (e) {
    await harness.stop({ name: 'startDatabase', result: { state: 'fail' } });
    throw e;
  }
  return harness;
}
