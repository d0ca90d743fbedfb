// `npm run bench:pooler`: what the pooler (issue 31) buys an app. One Patroni primary on the
// embedded control plane (our image) and, in front of it, one PgBouncer pod as the pooler
// tier renders it (our image: transaction mode, TLS on both sides, SCRAM through auth_query),
// on loopback. The same short write transaction runs in a loop on every client connection:
//   direct   defaultPoolSize (50) client connections straight to Postgres: the baseline;
//   direct, as many clients as pooled: how many Postgres admits (max_connections 200, its
//            reserved slots and the members' own connections), the rest refused;
//   pooled   BENCH_POOLER_CLIENTS (2,000) TLS client connections through PgBouncer, which
//            may open defaultPoolSize (50) server connections: throughput, latency, and the
//            most server connections Postgres saw for the app role (sampled).
// Printed as a table and written to BENCHMARKS.md (section "pooler").
import { cpus, loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { writeBenchSection } from './benchmarks-file.ts';
import { appDatabaseName } from '../operator/tiers/database/names.ts';
import {
  ENGINE_IMAGES,
  ENGINE_IMAGE_NAMES,
  engineVersions,
  runOnce,
} from '../test/engines/containers.ts';
import {
  PASSWORDS,
  TEST_CA,
  eventually,
  sql,
  sslOf,
  startDatabase,
} from '../test/engines/patroni-harness.ts';
import type { Harness, Member } from '../test/engines/patroni-harness.ts';
import { startPooler } from '../test/engines/pooler-harness.ts';
import { buildImages } from '../test/images/build.ts';

const CLIENTS = Number(process.env['BENCH_POOLER_CLIENTS'] ?? 2000);
const POOL = Number(process.env['BENCH_POOLER_POOL'] ?? 50);
const SECONDS = Number(process.env['BENCH_POOLER_SECONDS'] ?? 30);
/** Connections opened at once: TLS handshakes of 2,000 clients at a time stall a 2-core host. */
const CONNECT_BATCH = 50;
const TABLE = 'bench_pooler';
const TX = `INSERT INTO ${TABLE} (client, at) VALUES ($1, clock_timestamp())`;
const DATABASE = {
  replicasPerShard: 0,
  pooler: { defaultPoolSize: POOL, maxClientConnections: CLIENTS + 100 },
};
const log = (m: string) => console.log(`[bench:pooler] ${m}`);
/** What the table shows, whatever the figures of a run. */
const NOTE =
  "Direct, Postgres admits what max_connections leaves (the rest refused: an app of many pods that each open a pool fails this way); pooled, every client connection is served over default_pool_size server connections, and a transaction's latency is mostly its wait in PgBouncer's queue (2,000 clients over 50 connections). The pooled throughput is this machine's: the client process (2,000 TLS connections), PgBouncer (one thread) and Postgres share its 2 cores; which of them bounds it was not measured.";

interface Target {
  readonly host: string;
  readonly port: number;
  readonly ssl: pg.ClientConfig['ssl'];
}

interface Run {
  readonly name: string;
  readonly clients: number;
  readonly connected: number;
  /** Refusals at connect, by message (numbers stripped). */
  readonly refused: Record<string, number>;
  readonly transactions: number;
  readonly failed: number;
  readonly perSecond: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** The most backends of the app role Postgres held at once during the window. */
  readonly serverConnections: number;
}

const quantile = (sorted: readonly number[], q: number): number =>
  sorted.length ? (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN) : NaN;

const strip = (m: string) => m.replace(/\d+/g, 'N').slice(0, 120);

async function connectAll(
  h: Harness,
  target: Target,
  n: number,
): Promise<{ clients: pg.Client[]; refused: Record<string, number> }> {
  const db = appDatabaseName(h.app);
  const clients: pg.Client[] = [];
  const refused: Record<string, number> = {};
  for (let i = 0; i < n; i += CONNECT_BATCH) {
    const batch = Array.from({ length: Math.min(CONNECT_BATCH, n - i) }, async () => {
      const c = new pg.Client({
        host: target.host,
        port: target.port,
        user: db,
        password: PASSWORDS.app,
        database: db,
        ssl: target.ssl,
        connectionTimeoutMillis: 30_000,
      });
      c.on('error', () => undefined);
      try {
        await c.connect();
        clients.push(c);
      } catch (e) {
        const k = strip((e as Error).message);
        refused[k] = (refused[k] ?? 0) + 1;
        await c.end().catch(() => undefined);
      }
    });
    await Promise.all(batch);
  }
  return { clients, refused };
}

/** Backends of the app role, sampled every 200 ms until stopped; returns the most seen. */
function sampleBackends(h: Harness, m: Member): { stop: () => Promise<number> } {
  let on = true;
  let most = 0;
  const loop = (async () => {
    while (on) {
      const rows = await sql<{ n: number }>(
        m.pgPort,
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1 AND backend_type = 'client backend'",
        [appDatabaseName(h.app)],
      ).catch(() => []);
      most = Math.max(most, rows[0]?.n ?? 0);
      await sleep(200);
    }
  })();
  return {
    stop: async () => {
      on = false;
      await loop;
      return most;
    },
  };
}

async function measure(
  name: string,
  h: Harness,
  primary: Member,
  target: Target,
  n: number,
): Promise<Run> {
  log(`${name}: opening ${n} client connections`);
  const { clients, refused } = await connectAll(h, target, n);
  log(`${name}: ${clients.length} connected; ${SECONDS} s of transactions`);
  const latencies: number[] = [];
  let failed = 0;
  const sampler = sampleBackends(h, primary);
  const until = Date.now() + SECONDS * 1000;
  const start = Date.now();
  await Promise.all(
    clients.map(async (c, i) => {
      while (Date.now() < until) {
        const t0 = performance.now();
        try {
          await c.query(TX, [i]);
          latencies.push(performance.now() - t0);
        } catch {
          failed++;
          await sleep(100);
        }
      }
    }),
  );
  const elapsed = (Date.now() - start) / 1000;
  const serverConnections = await sampler.stop();
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    name,
    clients: n,
    connected: clients.length,
    refused,
    transactions: latencies.length,
    failed,
    perSecond: latencies.length / elapsed,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    max: sorted.at(-1) ?? NaN,
    serverConnections,
  };
}

async function main(): Promise<void> {
  buildImages(ENGINE_IMAGE_NAMES);
  const h = await startDatabase('bench-pool', DATABASE);
  const pooler = await startPooler(h, h.app, { ip: '127.0.2.40', rwIp: '127.0.2.41' });
  try {
    const primary = await eventually('a primary', async () => h.primaryOf(0), 180_000, 500);
    const db = appDatabaseName(h.app);
    await eventually(
      'the bench table',
      async () =>
        sql(
          primary.pgPort,
          `CREATE TABLE IF NOT EXISTS ${TABLE} (id bigserial PRIMARY KEY, client int, at timestamptz);
           ALTER TABLE ${TABLE} OWNER TO "${db}";`,
          [],
          db,
        ).then(
          () => true,
          () => undefined,
        ),
      60_000,
      500,
    );
    const direct: Target = {
      host: '127.0.0.1',
      port: primary.pgPort,
      ssl: sslOf(primary.pgPort).ssl ?? false,
    };
    // Direct first: PgBouncer keeps its server connections open once made
    // (server_idle_timeout), and they would count as backends of the direct runs.
    const runs = [
      await measure(`direct (${POOL} clients)`, h, primary, direct, POOL),
      await measure(`direct (${CLIENTS} clients)`, h, primary, direct, CLIENTS),
    ];
    const viaPooler: Target = { host: pooler.ip, port: pooler.port, ssl: { ca: TEST_CA.cert } };
    // PgBouncer is up once it admits the app role (its auth_query works).
    await eventually(
      'the app role admitted through PgBouncer',
      async () => {
        const { clients } = await connectAll(h, viaPooler, 1);
        await Promise.all(clients.map((c) => c.end()));
        return clients.length ? true : undefined;
      },
      120_000,
      1000,
    );
    runs.push(
      await measure(`pooled (${CLIENTS} clients, pool ${POOL})`, h, primary, viaPooler, CLIENTS),
    );
    report(runs);
  } finally {
    await pooler.close();
    await h.stop();
  }
}

function report(runs: readonly Run[]): void {
  const ms = (x: number) => x.toFixed(1);
  const refusedCell = (r: Run) =>
    Object.entries(r.refused)
      .map(([m, n]) => `${n}: ${m}`)
      .join('; ') || '0';
  const table = [
    '| run | client connections opened | refused at connect | transactions/s | p50 ms | p99 ms | max ms | failed | most Postgres backends of the app role |',
    '|---|---|---|---|---|---|---|---|---|',
    ...runs.map(
      (r) =>
        `| ${r.name} | ${r.connected} of ${r.clients} | ${refusedCell(r)} | ${r.perSecond.toFixed(0)} | ${ms(r.p50)} | ${ms(r.p99)} | ${ms(r.max)} | ${r.failed} | ${r.serverConnections} |`,
    ),
  ].join('\n');
  console.log(table);
  const v = engineVersions();
  const pgbouncer =
    /PgBouncer\s+(\S+)/.exec(
      runOnce({
        image: ENGINE_IMAGES.pgbouncer,
        name: 'engine-version',
        entrypoint: 'pgbouncer',
        args: ['--version'],
      }).stdout,
    )?.[1] ?? '?';
  const section = [
    '<!-- bench:pooler -->',
    '## Connection pooling (`npm run bench:pooler`)',
    '',
    `One Patroni primary (Postgres ${v.postgres}, max_connections 200) and one PgBouncer pod (PgBouncer ${pgbouncer}; transaction mode, TLS on both sides, default_pool_size ${POOL}) as the pooler tier renders them, on loopback; every client connection (TLS, the app role) runs \`${TX.replace(/\s+/g, ' ')}\` in a loop for ${SECONDS} s. Clients, PgBouncer and Postgres share the machine's ${cpus().length} cores (load ${loadavg()[0]?.toFixed(1)} at the end); measured ${new Date().toISOString().slice(0, 10)}.`,
    '',
    table,
    '',
    NOTE,
    '<!-- /bench:pooler -->',
  ].join('\n');
  log(`written to ${writeBenchSection('pooler', section)}`);
}

await main();
