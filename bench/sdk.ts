// `npm run bench:sdk`: what the SDK costs on the hot path, against the same work done
// without it, in one run on one server so machine noise hits both sides alike.
// - Routed point query: sdk.db.read(key, ...) (hash -> bucket -> shard -> replica pool)
//   against the same query on a plain pg Pool to the same Postgres; calls alternate
//   (which side goes first flips every iteration), one at a time.
// - Cache-aside hit: sdk.cache.getOrSet on a cached key against a plain ioredis GET.
// Prints a table and writes its section of BENCHMARKS.md (other sections are kept).
import { writeBenchSection } from './benchmarks-file.ts';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import pg from 'pg';
import { connect, makeShardMap } from '../sdk/src/index.ts';
import { buildImages } from '../test/images/build.ts';
import {
  ENGINE_IMAGES,
  ENGINE_IMAGE_NAMES,
  ENGINE_UID,
  engineVersions,
  startContainer,
} from '../test/engines/containers.ts';
import type { Container } from '../test/engines/containers.ts';

const N = Number(process.env['BENCH_SDK_N'] ?? 20_000);
const WARMUP = 2_000;
const ROWS = 10_000;
const log = (m: string) => console.error(`[bench:sdk] ${m}`);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

const us = (ms: number) => `${(ms * 1000).toFixed(0)} µs`;
const pct = (a: number, b: number) => `${(((a - b) / b) * 100).toFixed(1)} %`;

/** Alternating paired timings of two async calls; returns sorted latencies (ms) of each. */
async function paired(
  a: (i: number) => Promise<unknown>,
  b: (i: number) => Promise<unknown>,
): Promise<[number[], number[]]> {
  const ta: number[] = [];
  const tb: number[] = [];
  const time = async (f: (i: number) => Promise<unknown>, i: number, out: number[] | undefined) => {
    const t0 = performance.now();
    await f(i);
    out?.push(performance.now() - t0);
  };
  for (let i = 0; i < WARMUP + N; i++) {
    const keep = i >= WARMUP;
    if (i % 2 === 0) {
      await time(a, i, keep ? ta : undefined);
      await time(b, i, keep ? tb : undefined);
    } else {
      await time(b, i, keep ? tb : undefined);
      await time(a, i, keep ? ta : undefined);
    }
  }
  return [ta.sort((x, y) => x - y), tb.sort((x, y) => x - y)];
}

/** A client once the server accepts connections (initdb runs first). */
async function connected(conn: pg.ClientConfig, server: Container): Promise<pg.Client> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const c = new pg.Client(conn);
    try {
      await c.connect();
      return c;
    } catch (e) {
      await c.end().catch(() => undefined);
      if (!server.running) throw new Error(`postgres exited:\n${server.output}`);
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function main(): Promise<void> {
  buildImages(ENGINE_IMAGE_NAMES);
  const versions = engineVersions();
  const dir = mkdtempSync(join(tmpdir(), 'bench-sdk-'));
  chownSync(dir, ENGINE_UID, ENGINE_UID);
  const data = join(dir, 'data');
  const pgPort = await freePort();
  const redisPort = await freePort();
  // The project's images, on loopback (host network), as the engine tests run them.
  const redis = startContainer({
    image: ENGINE_IMAGES.redis,
    name: 'bench-sdk-redis',
    entrypoint: 'redis-server',
    args: ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
  });
  const postgres = startContainer({
    image: ENGINE_IMAGES.postgres,
    name: 'bench-sdk-postgres',
    entrypoint: 'sh',
    args: [
      '-c',
      `initdb -D ${data} -A trust -U postgres >/dev/null && exec postgres -D ${data} -p ${pgPort} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${dir}`,
    ],
    mounts: [dir],
  });
  const servers: Container[] = [redis, postgres];
  try {
    log('starting Postgres and Redis on loopback');
    const conn = { host: '127.0.0.1', port: pgPort, user: 'postgres', database: 'postgres' };
    const setup = await connected(conn, postgres);
    await setup.query('CREATE TABLE kv (k text PRIMARY KEY, v int NOT NULL)');
    await setup.query(
      `INSERT INTO kv SELECT 'user-' || i, i FROM generate_series(0, ${ROWS - 1}) AS i`,
    );
    await setup.query('ANALYZE kv');
    await setup.end();

    // One shard whose primary and replica Services both name this server.
    const map = makeShardMap({
      version: 1,
      database: 'postgres',
      shards: [{ index: 0, primary: '127.0.0.1', replicas: '127.0.0.1', port: pgPort }],
    });
    writeFileSync(join(dir, 'shard-map.json'), JSON.stringify(map));
    const sdk = await connect({
      env: {
        DATABASE_SHARD_MAP: join(dir, 'shard-map.json'),
        DATABASE_NAME: 'postgres',
        DATABASE_USER: 'postgres',
        DATABASE_POOL_MAX: '4',
        REDIS_URL: `redis://127.0.0.1:${redisPort}/0`,
        CACHE_TTL_SECONDS: '3600',
      },
    });
    const { db, cache } = sdk;
    if (!db || !cache) throw new Error('the bench env describes a database and a cache');
    const plain = new pg.Pool({ ...conn, max: 4 });
    const raw = new Redis(`redis://127.0.0.1:${redisPort}/0`);
    const key = (i: number) => `user-${(i * 7919) % ROWS}`;
    const SQL = 'SELECT v FROM kv WHERE k = $1';

    log(`routed point query vs plain pg Pool: ${WARMUP} warm-up + ${N} pairs`);
    const [routed, direct] = await paired(
      (i) => db.read(key(i), SQL, [key(i)]),
      (i) => plain.query(SQL, [key(i)]),
    );

    log('cache-aside hits vs plain GET');
    for (let i = 0; i < ROWS; i += 1) await cache.set(`v:${i}`, i);
    const [hit, get] = await paired(
      (i) => cache.getOrSet(`v:${(i * 7919) % ROWS}`, () => Promise.reject(new Error('miss'))),
      (i) => raw.get(`v:${(i * 7919) % ROWS}`),
    );

    // Routing alone (hash + range lookup), no I/O.
    const t0 = performance.now();
    const R = 200_000;
    for (let i = 0; i < R; i++) db.route(key(i));
    const routeNs = ((performance.now() - t0) * 1e6) / R;

    await sdk.close();
    await plain.end();
    raw.disconnect();

    const p = (s: number[], q: number) => quantile(s, q);
    const overhead50 = (p(routed, 0.5) - p(direct, 0.5)) / p(direct, 0.5);
    const overhead99 = (p(routed, 0.99) - p(direct, 0.99)) / p(direct, 0.99);
    const rows = [
      [
        'routed point query, p50',
        `${us(p(routed, 0.5))} vs ${us(p(direct, 0.5))} plain`,
        pct(p(routed, 0.5), p(direct, 0.5)),
        '<= 3 %',
        overhead50 <= 0.03 ? 'yes' : 'no',
      ],
      [
        'routed point query, p99',
        `${us(p(routed, 0.99))} vs ${us(p(direct, 0.99))} plain`,
        pct(p(routed, 0.99), p(direct, 0.99)),
        '<= 3 %',
        overhead99 <= 0.03 ? 'yes' : 'no',
      ],
      [
        'cache-aside hit (getOrSet), p50 / p99',
        `${us(p(hit, 0.5))} / ${us(p(hit, 0.99))} vs GET ${us(p(get, 0.5))} / ${us(p(get, 0.99))}`,
        `${pct(p(hit, 0.5), p(get, 0.5))} / ${pct(p(hit, 0.99), p(get, 0.99))}`,
        '',
        '',
      ],
      ['routing alone (sha256 + range search)', `${routeNs.toFixed(0)} ns per key`, '', '', ''],
    ];
    const table = [
      '| measure | SDK vs plain | overhead | goal | met |',
      '|---|---|---|---|---|',
      ...rows.map((r) => `| ${r.join(' | ')} |`),
    ].join('\n');
    console.log(`\n${table}\n`);

    const machine = `${cpus()[0]?.model ?? 'unknown CPU'} x ${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Linux ${release()}, Node ${process.version}`;
    const section = [
      '<!-- bench:sdk -->',
      '## SDK (`npm run bench:sdk`)',
      '',
      `Run ${new Date().toISOString()} on ${machine}; Postgres ${versions.postgres} and Redis ${versions.redis} (the project's images) on loopback, same machine.`,
      `${N} pairs after ${WARMUP} warm-up pairs, one call at a time, the two sides alternating (which goes first flips each pair); a table of ${ROWS} rows, keys spread over it.`,
      '',
      table,
      '',
      "- Routed: `sdk.db.read(key, 'SELECT v FROM kv WHERE k = $1', [key])` through a one-shard map whose replica Service is the same server; plain: `pool.query` of the same statement on a pg Pool of the same size.",
      '- Hit: `sdk.cache.getOrSet(key, loader)` on a cached key (GET + JSON.parse, single-flight bookkeeping); plain: ioredis `get` of the same key.',
      '<!-- /bench:sdk -->',
    ].join('\n');
    log(`wrote ${writeBenchSection('sdk', section)}`);
  } finally {
    await Promise.all(servers.map((c) => c.remove()));
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
