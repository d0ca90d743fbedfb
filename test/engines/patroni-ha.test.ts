// Real Patroni (Debian package) running the configuration the builder renders, with the
// embedded control plane's API server as its DCS. The rendered database objects are
// applied as they are: the StatefulSet's pods exist in the API (kwok runs them as fakes),
// and three real Patroni + Postgres processes on loopback take their names, so Patroni
// labels those pods and the rendered Services follow the labels. Patroni authenticates
// with a token of the rendered ServiceAccount, so the rendered Role is what it gets.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import {
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binPath, ensureCluster } from '../../devcluster/index.ts';
import { toModel } from '../../operator/api/model.ts';
import { validateApp } from '../../operator/api/validate.ts';
import { buildDatabase } from '../../operator/tiers/database/index.ts';
import {
  PRIMARY_ROLE,
  REPLICA_ROLE,
  ROLE_LABEL,
  appDatabaseName,
  tierName,
} from '../../operator/tiers/database/names.ts';
import {
  ENV,
  renderPatroniConfig,
  renderPostBootstrap,
} from '../../operator/tiers/database/patroni-config.ts';
import { bucketOf } from '../../operator/sdk/index.ts';

const PG_BIN = `/usr/lib/postgresql/${readdirSync('/usr/lib/postgresql').sort().at(-1)}/bin`;
const POSTGRES_UID = Number(execFileSync('id', ['-u', 'postgres']).toString());
const POSTGRES_GID = Number(execFileSync('id', ['-g', 'postgres']).toString());
const PASSWORDS = {
  superuser: 'su-secret',
  replication: 'repl-secret',
  restapi: 'rest-secret',
  app: 'app-secret',
  monitor: 'mon-secret',
};
const MEMBERS = 3;
/** Debian's patroni by default; SCALABLE_PATRONI_BIN runs another (e.g. the image's 4.x from a venv). */
const PATRONI = process.env['SCALABLE_PATRONI_BIN'] ?? 'patroni';

interface Member {
  readonly name: string;
  readonly pgPort: number;
  readonly restPort: number;
  readonly dataDir: string;
  readonly log: string;
  proc?: ChildProcess;
}

interface PodJson {
  metadata: { name: string; labels?: Record<string, string> };
  status?: { podIP?: string };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() =>
        typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port')),
      );
    });
  });
}

async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`,
      );
    await sleep(everyMs);
  }
}

/** One short-lived superuser connection; closed whatever happens. */
async function sql<R extends pg.QueryResultRow>(
  port: number,
  text: string,
  params: unknown[] = [],
  database = 'postgres',
) {
  const c = new pg.Client({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password: PASSWORDS.superuser,
    database,
    connectionTimeoutMillis: 1000,
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

describe('Patroni HA: one shard, primary + 2 replicas, synchronous, Kubernetes API as DCS', () => {
  const ns = `pg-ha-${Date.now().toString(36)}`;
  const dir = mkdtempSync(join(tmpdir(), 'patroni-ha-'));
  const members: Member[] = [];
  let kubeconfig = '';
  let patroniKubeconfig = '';
  const numbers: Record<string, number | string> = {};

  const kubectl = (args: string[], input?: string): string =>
    execFileSync(binPath('kubectl'), [`--kubeconfig=${kubeconfig}`, ...args], {
      input,
      stdio: 'pipe',
      timeout: 30_000,
    }).toString();
  const pods = (): PodJson[] =>
    (JSON.parse(kubectl(['-n', ns, 'get', 'pods', '-o', 'json'])) as { items: PodJson[] }).items;
  const roleOf = (name: string) =>
    pods().find((p) => p.metadata.name === name)?.metadata.labels?.[ROLE_LABEL];
  const memberNamed = (name: string) => members.find((m) => m.name === name);

  const validated = validateApp({
    apiVersion: 'scalable.dev/v1alpha1',
    kind: 'ScalableApp',
    metadata: { name: 'shop', namespace: ns },
    spec: {
      web: { image: 'shop:1' },
      database: { replicasPerShard: MEMBERS - 1, synchronous: true },
    },
  });
  if (!validated.ok) throw new Error(JSON.stringify(validated.errors));
  const app = toModel(validated.app);

  function startMember(m: Member): void {
    const out = openSync(m.log, 'a');
    // Exactly what the pod's env carries (statefulset.ts), with loopback addresses and
    // this host's paths; everything else comes from the rendered patroni.yml.
    const env = {
      PATH: '/usr/bin:/bin',
      HOME: dir,
      KUBECONFIG: patroniKubeconfig,
      PATRONI_KUBERNETES_CONTEXT: 'patroni',
      [ENV.name]: m.name,
      [ENV.podIp]: '127.0.0.1',
      [ENV.postgresConnect]: `127.0.0.1:${m.pgPort}`,
      [ENV.restapiConnect]: `127.0.0.1:${m.restPort}`,
      PATRONI_POSTGRESQL_LISTEN: `127.0.0.1:${m.pgPort}`,
      PATRONI_RESTAPI_LISTEN: `127.0.0.1:${m.restPort}`,
      PATRONI_POSTGRESQL_DATA_DIR: m.dataDir,
      PATRONI_POSTGRESQL_BIN_DIR: PG_BIN,
      PATRONI_POSTGRESQL_PGPASS: `${m.dataDir}.pgpass`,
      [ENV.superuserPassword]: PASSWORDS.superuser,
      [ENV.replicationPassword]: PASSWORDS.replication,
      [ENV.restapiUsername]: 'patroni',
      [ENV.restapiPassword]: PASSWORDS.restapi,
      [ENV.appPassword]: PASSWORDS.app,
      [ENV.monitorPassword]: PASSWORDS.monitor,
    };
    m.proc = spawn(PATRONI, [join(dir, 'patroni.yml')], {
      cwd: dir,
      env,
      uid: POSTGRES_UID,
      gid: POSTGRES_GID,
      stdio: ['ignore', out, out],
    });
    closeSync(out);
  }

  /** kill -9 of Patroni and of its postmaster: a crashed node, no clean hand-over. */
  function killMember(m: Member): void {
    const pidFile = join(m.dataDir, 'postmaster.pid');
    const postmaster = existsSync(pidFile)
      ? Number(readFileSync(pidFile, 'utf8').split('\n')[0])
      : undefined;
    m.proc?.kill('SIGKILL');
    if (postmaster) {
      try {
        process.kill(postmaster, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  async function primaryName(): Promise<string | undefined> {
    const leaders = pods().filter((p) => p.metadata.labels?.[ROLE_LABEL] === PRIMARY_ROLE);
    return leaders.length === 1 ? leaders[0]?.metadata.name : undefined;
  }

  beforeAll(async () => {
    const cluster = await ensureCluster({ log: () => undefined });
    kubeconfig = cluster.kubeconfigPath;
    kubectl(['create', 'namespace', ns]);
    const objects = buildDatabase(app);
    kubectl(
      ['apply', '--server-side', '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }),
    );
    await eventually(
      'the StatefulSet pods (kwok)',
      async () => (pods().filter((p) => p.status?.podIP).length === MEMBERS ? true : undefined),
      60_000,
    );

    // A kubeconfig for Patroni holding a token of the rendered ServiceAccount only.
    const token = kubectl(['-n', ns, 'create', 'token', tierName(app), '--duration=1h']).trim();
    const admin = JSON.parse(kubectl(['config', 'view', '--raw', '-o', 'json'])) as {
      clusters: Array<{ cluster: { server: string; 'certificate-authority-data': string } }>;
    };
    const cluster0 = admin.clusters[0]?.cluster;
    if (!cluster0) throw new Error('no cluster in the kubeconfig');
    patroniKubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      patroniKubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'dev', cluster: cluster0 }],
        users: [{ name: 'patroni', user: { token } }],
        contexts: [
          { name: 'patroni', context: { cluster: 'dev', user: 'patroni', namespace: ns } },
        ],
        'current-context': 'patroni',
      }),
    );

    // The ConfigMap's two files, as the pod mounts them (configDir is the only change).
    writeFileSync(join(dir, 'patroni.yml'), renderPatroniConfig(app, 0, { configDir: dir }));
    writeFileSync(join(dir, 'post-bootstrap.sh'), renderPostBootstrap(app), { mode: 0o755 });
    mkdirSync(join(dir, 'data'), { mode: 0o700 });
    for (const f of ['', 'kubeconfig', 'patroni.yml', 'post-bootstrap.sh', 'data'])
      chownSync(join(dir, f), POSTGRES_UID, POSTGRES_GID);

    for (let i = 0; i < MEMBERS; i++) {
      members.push({
        name: `shop-db-0-${i}`,
        pgPort: await freePort(),
        restPort: await freePort(),
        dataDir: join(dir, 'data', `m${i}`),
        log: join(dir, `m${i}.log`),
      });
    }
    for (const m of members) startMember(m);
  });

  afterAll(async () => {
    for (const m of members) killMember(m);
    await sleep(500);
    try {
      kubectl(['delete', 'namespace', ns, '--wait=false']);
    } catch {
      // the cluster may be gone already
    }
    console.log(`[patroni-ha] measured: ${JSON.stringify(numbers)}`);
    // SCALABLE_KEEP_ENGINE_LOGS=1 keeps the member logs for a post-mortem.
    if (process.env['SCALABLE_KEEP_ENGINE_LOGS']) console.log(`[patroni-ha] logs kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  });

  it('bootstraps one primary and two streaming replicas and labels their pods', async () => {
    const t0 = Date.now();
    const primary = await eventually(
      'a primary and 2 replicas labelled',
      async () => {
        const roles = pods().map((p) => p.metadata.labels?.[ROLE_LABEL]);
        const ok =
          roles.filter((r) => r === PRIMARY_ROLE).length === 1 &&
          roles.filter((r) => r === REPLICA_ROLE).length === 2;
        return ok ? primaryName() : undefined;
      },
      120_000,
      500,
    );
    numbers['bootstrapSeconds'] = (Date.now() - t0) / 1000;
    const p = memberNamed(primary);
    if (!p) throw new Error(`unknown primary ${primary}`);
    const streaming = await eventually(
      '2 replicas streaming, one synchronous',
      async () => {
        const rows = await sql<{ application_name: string; sync_state: string }>(
          p.pgPort,
          "SELECT application_name, sync_state FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1",
        );
        return rows.length === 2 && rows.some((r) => r.sync_state === 'sync') ? rows : undefined;
      },
      60_000,
      500,
    );
    expect(streaming.map((r) => r.application_name).sort()).toEqual(
      members
        .filter((m) => m !== p)
        .map((m) => m.name)
        .sort(),
    );

    // post_bootstrap ran: the app role logs in to its database, which has the bucket function.
    const c = new pg.Client({
      host: '127.0.0.1',
      port: p.pgPort,
      user: appDatabaseName(app),
      password: PASSWORDS.app,
      database: appDatabaseName(app),
    });
    await c.connect();
    try {
      const { rows } = await c.query<{ b: number }>("SELECT scalable_bucket('customer-42') AS b");
      expect(rows[0]?.b).toBe(bucketOf('customer-42'));
    } finally {
      await c.end();
    }
  });

  it('routes the primary Service to the primary pod and the -ro Service to the replicas', async () => {
    const primary = await primaryName();
    const ipsOf = (service: string) => {
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
      return slices.items.flatMap((s) => (s.endpoints ?? []).map((e) => e.targetRef?.name)).sort();
    };
    await eventually(
      'EndpointSlices following the role labels',
      async () => {
        const ro = members
          .map((m) => m.name)
          .filter((n) => n !== primary)
          .sort();
        return JSON.stringify(ipsOf('shop-db-0')) === JSON.stringify([primary]) &&
          JSON.stringify(ipsOf('shop-db-0-ro')) === JSON.stringify(ro)
          ? true
          : undefined;
      },
      30_000,
      500,
    );
  });

  it('replicates a row written on the primary to both replicas', async () => {
    const primary = memberNamed((await primaryName()) ?? '');
    if (!primary) throw new Error('no primary');
    const replicas = members.filter((m) => m !== primary);
    await sql(
      primary.pgPort,
      'CREATE TABLE IF NOT EXISTS t (id bigint PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())',
    );
    // Lag as an app sees it: commit on the primary -> row visible on a replica, over
    // kept-open connections (a new connection per poll would measure scram, not replication).
    const open = async (m: Member) => {
      const c = new pg.Client({
        host: '127.0.0.1',
        port: m.pgPort,
        user: 'postgres',
        password: PASSWORDS.superuser,
      });
      await c.connect();
      return c;
    };
    const writer = await open(primary);
    const readers = await Promise.all(replicas.map(open));
    const lags: number[] = [];
    try {
      for (let i = 1; i <= 50; i++) {
        await writer.query('INSERT INTO t (id) VALUES ($1)', [-i]);
        const committed = performance.now();
        await Promise.all(
          readers.map(async (r) => {
            const deadline = committed + 10_000;
            while ((await r.query('SELECT 1 FROM t WHERE id = $1', [-i])).rowCount === 0) {
              if (performance.now() > deadline) throw new Error(`row ${-i} never replicated`);
            }
            lags.push(performance.now() - committed);
          }),
        );
      }
      const replay = await writer.query<{ ms: number | null }>(
        'SELECT max(extract(epoch FROM replay_lag) * 1000)::float8 AS ms FROM pg_stat_replication',
      );
      // NULL once a replica has been idle and caught up: then there is no lag to report.
      numbers['pgReplayLagMs'] = Number((replay.rows[0]?.ms ?? 0).toFixed(2));
    } finally {
      await Promise.all([writer, ...readers].map((c) => c.end()));
    }
    lags.sort((a, b) => a - b);
    const ms = (v: number | undefined) => Number((v ?? -1).toFixed(2));
    numbers['replicaVisibilityMsMedian'] = ms(lags[Math.floor(lags.length / 2)]);
    numbers['replicaVisibilityMsP95'] = ms(lags[Math.floor(lags.length * 0.95)]);
    numbers['replicaVisibilityMsMax'] = ms(lags.at(-1));
    for (const r of replicas) {
      const rows = await sql<{ n: string }>(r.pgPort, 'SELECT count(*) AS n FROM t');
      expect(Number(rows[0]?.n)).toBe(50);
      await expect(sql(r.pgPort, 'INSERT INTO t (id) VALUES (0)')).rejects.toThrow(/read-only/);
    }
  });

  it('fails over when the primary is killed: a replica is promoted, labels move, no acknowledged write is lost', async () => {
    const oldName = await primaryName();
    const old = memberNamed(oldName ?? '');
    if (!old) throw new Error('no primary');
    const survivors = members.filter((m) => m !== old);

    // Keep writing one row per commit; every id whose INSERT returned is acknowledged.
    const writer = new pg.Client({
      host: '127.0.0.1',
      port: old.pgPort,
      user: 'postgres',
      password: PASSWORDS.superuser,
      database: 'postgres',
    });
    writer.on('error', () => undefined);
    await writer.connect();
    const acked: number[] = [];
    let maxLagBytes = 0;
    let maxReplayLagMs = 0;
    const burstStart = performance.now();
    for (let id = 1; id <= 1000; id++) {
      await writer.query('INSERT INTO t (id) VALUES ($1)', [id]);
      acked.push(id);
      if (id % 100 === 0) {
        const r = await writer.query<{ lag: string | null; ms: number | null }>(
          'SELECT max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)) AS lag, ' +
            'max(extract(epoch FROM replay_lag) * 1000)::float8 AS ms FROM pg_stat_replication',
        );
        maxLagBytes = Math.max(maxLagBytes, Number(r.rows[0]?.lag ?? 0));
        maxReplayLagMs = Math.max(maxReplayLagMs, r.rows[0]?.ms ?? 0);
      }
    }
    numbers['syncCommitsPerSecond'] = Math.round(1000 / ((performance.now() - burstStart) / 1000));
    numbers['maxReplayLagBytesDuringWrites'] = maxLagBytes;
    numbers['maxReplayLagMsDuringWrites'] = Number(maxReplayLagMs.toFixed(2));
    // In flight while the primary dies: never acknowledged, so allowed to be lost.
    const inflight = writer.query('INSERT INTO t (id) VALUES (1001)').then(
      () => acked.push(1001),
      () => undefined,
    );

    const killedAt = Date.now();
    killMember(old);
    await inflight;
    await writer.end().catch(() => undefined);

    // Failover time: kill -> first successful write on the new primary.
    let probe = 100_000;
    const promoted = await eventually(
      'a write accepted by a survivor',
      async () => {
        for (const m of survivors) {
          try {
            // A fresh id per attempt: a timed-out attempt may still have committed.
            await sql(m.pgPort, 'INSERT INTO t (id) VALUES ($1)', [probe++]);
            return m;
          } catch {
            // still a replica, or not reachable
          }
        }
        return undefined;
      },
      120_000,
      100,
    );
    numbers['failoverSeconds'] = (Date.now() - killedAt) / 1000;

    const count = await sql<{ n: string; missing: string }>(
      promoted.pgPort,
      'SELECT count(*) AS n, count(*) FILTER (WHERE id = ANY($1::bigint[])) AS missing FROM t WHERE id > 0 AND id < 100000',
      [acked],
    );
    expect(Number(count[0]?.missing)).toBe(acked.length);
    numbers['ackedWrites'] = acked.length;
    numbers['rowsAfterFailover'] = Number(count[0]?.n);

    await eventually(
      'the role label on the promoted pod',
      async () => (roleOf(promoted.name) === PRIMARY_ROLE ? true : undefined),
      30_000,
      250,
    );

    // The kubelet would restart the crashed container: the old primary rejoins as a
    // replica (pg_rewind) and relabels its pod, so only the new primary backs the Service.
    startMember(old);
    await eventually(
      'the old primary back as a replica',
      async () => (roleOf(old.name) === REPLICA_ROLE ? true : undefined),
      90_000,
      500,
    );
    expect(await primaryName()).toBe(promoted.name);
    await eventually(
      'the primary Service on the new primary',
      async () => {
        const slices = JSON.parse(
          kubectl([
            '-n',
            ns,
            'get',
            'endpointslices',
            '-l',
            'kubernetes.io/service-name=shop-db-0',
            '-o',
            'json',
          ]),
        ) as { items: Array<{ endpoints?: Array<{ targetRef?: { name: string } }> }> };
        const names = slices.items.flatMap((s) =>
          (s.endpoints ?? []).map((e) => e.targetRef?.name),
        );
        return names.length === 1 && names[0] === promoted.name ? true : undefined;
      },
      30_000,
      500,
    );
    const onOld = await eventually(
      'acknowledged rows on the rejoined node',
      async () => {
        const r = await sql<{ n: string }>(
          old.pgPort,
          'SELECT count(*) AS n FROM t WHERE id = ANY($1::bigint[])',
          [acked],
        );
        return Number(r[0]?.n) === acked.length ? r : undefined;
      },
      30_000,
      500,
    );
    expect(onOld).toBeDefined();
  }, 300_000);
});
