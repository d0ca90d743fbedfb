// What the resharding engine tests share: Postgres 17 primaries from our image with a
// shard's settings (UTF8, wal_level logical, the app role, the replication role, the bucket
// function), app databases on them, random keys that trap a row filter, the schema copy
// (pg_dump of the source piped into one psql transaction on the target, in a container of
// the same image: what the operator's Job will run), and ShardSql connections for the runner.
import { spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { chownSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { eventually } from '../../devcluster/testing.ts';
import { bucketFunctionSql, makeShardMap } from '../../sdk/src/contract/index.ts';
import type { Assignment } from '../../operator/tiers/database/shard-authority.ts';
import type { SchemaCopyRequest, ShardSql } from '../../operator/tiers/database/resharding-run.ts';
import type { PodExec } from '../../operator/ports/pod-exec.ts';
import {
  execShardSql,
  schemaCopyCommand,
  sourceConninfo,
} from '../../operator/tiers/database/shard-sql-exec.ts';
import { pgShardSql } from '../../operator/tiers/database/shard-sql-pg.ts';
import type { PgShardSql } from '../../operator/tiers/database/shard-sql-pg.ts';
import { ENGINE_IMAGES, ENGINE_UID, PG_BIN, runOnceAsync, startContainer } from './containers.ts';
import type { Container } from './containers.ts';
import { freePort } from './patroni-harness.ts';
import { ENV, SOCKET_DIR } from '../../operator/tiers/database/patroni-config.ts';

export const SUPER_PASSWORD = randomBytes(12).toString('hex');
export const REPL_PASSWORD = randomBytes(12).toString('hex');
/** The app's role, owner of every app database (a shard's post_bootstrap creates it). */
export const APP_ROLE = 'shop';
export const REPLICATION_ROLE = 'replicator';
export const KEY = 'customer_id';

export interface Server {
  readonly name: string;
  readonly port: number;
  readonly container: Container;
  /** The superuser, in the app database `shop`. */
  readonly client: pg.Client;
}

/** A superuser connection once the server answers (it may still be starting). */
export async function connect(
  server: Pick<Server, 'name' | 'port' | 'container'>,
  database: string,
): Promise<pg.Client> {
  return eventually(
    `postgres ${server.name} answers`,
    async () => {
      if (!server.container.running)
        throw new Error(`postgres ${server.name} exited:\n${server.container.output}`);
      const c = new pg.Client({
        host: '127.0.0.1',
        port: server.port,
        user: 'postgres',
        password: SUPER_PASSWORD,
        database,
      });
      try {
        await c.connect();
        return c;
      } catch {
        await c.end().catch(() => undefined);
        return undefined;
      }
    },
    90_000,
    200,
  );
}

/** A fresh data directory under `dir` and a server on a free loopback port. */
export async function startPostgres(dir: string, name: string): Promise<Server> {
  const data = join(dir, name);
  const pwfile = join(dir, `${name}.pw`);
  writeFileSync(pwfile, SUPER_PASSWORD + '\n');
  chownSync(pwfile, ENGINE_UID, ENGINE_UID);
  const port = await freePort();
  // The shard's settings that matter here: UTF8 (the bucket's bytes), wal_level logical.
  // As in a pod: the superuser logs in over the socket in /var/run/postgresql with the
  // password its env holds (the operator's SQL over exec, shard-sql-exec.ts, goes that way).
  const container = startContainer({
    image: ENGINE_IMAGES.postgres,
    name: `reshard-${name}`,
    entrypoint: 'sh',
    args: [
      '-c',
      `${PG_BIN}/initdb -D ${data} -E UTF8 --locale=C.UTF-8 --auth-local=scram-sha-256 --auth-host=scram-sha-256 --pwfile=${pwfile} -U postgres >/dev/null && exec ${PG_BIN}/postgres -D ${data} -p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${SOCKET_DIR} -c wal_level=logical -c max_wal_senders=20 -c max_replication_slots=20`,
    ],
    mounts: [dir],
    tmpfs: [SOCKET_DIR],
    env: {
      [ENV.superuserPassword]: SUPER_PASSWORD,
      [ENV.replicationPassword]: REPL_PASSWORD,
    },
  });
  // What post_bootstrap does on a shard: the app's role and database, the bucket function.
  const admin = await connect({ name, port, container }, 'postgres');
  await admin.query(`CREATE ROLE ${APP_ROLE} LOGIN PASSWORD '${SUPER_PASSWORD}'`);
  await admin.query(
    `CREATE ROLE ${REPLICATION_ROLE} LOGIN REPLICATION PASSWORD '${REPL_PASSWORD}'`,
  );
  await admin.end();
  const server = { name, port, container };
  return { ...server, client: await createAppDatabase(server, APP_ROLE) };
}

/** Another app database on the server (one per test case), with the bucket function. */
export async function createAppDatabase(
  server: Pick<Server, 'name' | 'port' | 'container'>,
  database: string,
): Promise<pg.Client> {
  const admin = await connect(server, 'postgres');
  await admin.query(`CREATE DATABASE ${database} OWNER ${APP_ROLE}`);
  await admin.end();
  const client = await connect(server, database);
  await client.query(bucketFunctionSql());
  return client;
}

/** The runner's connection to a server's app database, as the superuser. */
export const shardSql = (server: Server, database: string): PgShardSql =>
  pgShardSql({
    host: '127.0.0.1',
    port: server.port,
    user: 'postgres',
    password: SUPER_PASSWORD,
    database,
  });

/** What the target's subscription connects with. */
export const replicationConninfo = (server: Server, database: string): string =>
  `host=127.0.0.1 port=${server.port} dbname=${database} user=${REPLICATION_ROLE} password=${REPL_PASSWORD}`;

/**
 * The schema copy: the request's `before`, pg_dump's output and its `after`, restored by
 * `psql --single-transaction` (a target gets all of it or nothing); throws with psql's output.
 */
export async function copySchema(
  source: Server,
  target: Server,
  database: string,
  request: Pick<SchemaCopyRequest, 'dumpArgs' | 'before' | 'after'>,
): Promise<void> {
  const terminated = (sql: readonly string[]) => sql.map((s) => `${s};\n`).join('');
  const run = await runOnceAsync({
    image: ENGINE_IMAGES.postgres,
    name: 'reshard-schema',
    entrypoint: 'sh',
    args: [
      '-c',
      [
        'set -e',
        `printf '%s' "$BEFORE" > /tmp/schema.sql`,
        `PGPORT=$SOURCE_PORT ${PG_BIN}/pg_dump "$@" >> /tmp/schema.sql`,
        `printf '%s' "$AFTER" >> /tmp/schema.sql`,
        `PGPORT=$TARGET_PORT ${PG_BIN}/psql -X -q --single-transaction -v ON_ERROR_STOP=1 -d "$DATABASE" -f /tmp/schema.sql`,
      ].join('\n'),
      'sh',
      ...request.dumpArgs,
    ],
    env: {
      PGHOST: '127.0.0.1',
      PGUSER: 'postgres',
      PGPASSWORD: SUPER_PASSWORD,
      SOURCE_PORT: String(source.port),
      TARGET_PORT: String(target.port),
      DATABASE: database,
      BEFORE: terminated(request.before),
      AFTER: terminated(request.after),
    },
  });
  if (run.status !== 0)
    throw new Error(
      `schema copy ${source.name} -> ${target.name} exited ${run.status}:\n${run.stdout}`,
    );
}

/** Random text keys: ASCII, backslashes, quotes, Latin, CJK, emoji (the filter's traps). */
export function randomKey(): string {
  const ranges: Array<[number, number]> = [
    [0x20, 0x7e],
    [0x5c, 0x5c],
    [0xa0, 0x24f],
    [0x4e00, 0x9fff],
    [0x1f300, 0x1faff],
  ];
  let s = '';
  for (let i = randomInt(1, 20); i > 0; i--) {
    const [lo, hi] = ranges[randomInt(0, ranges.length)]!;
    s += String.fromCodePoint(randomInt(lo, hi + 1));
  }
  return s;
}

/**
 * The operator's transport to a shard (pods/exec into its Postgres container) with `docker
 * exec` into the server's container in place of the API server: the same argv, the same env.
 */
export const dockerExec: PodExec = (req) =>
  new Promise((resolve, reject) => {
    const child = spawn('docker', ['exec', req.pod, ...req.command], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ stdout, stderr, exitCode: code ?? -1 }));
  });

/** The operator's ShardSql (SQL over exec, as the superuser on the socket) for a server. */
export const execSql = (server: Server, database: string): ShardSql =>
  execShardSql(
    dockerExec,
    async () => ({ namespace: '', pod: server.container.name }),
    database,
    server.port,
  );

/** The operator's schema copy (pg_dump as the replication role, in the target's container). */
export async function execCopySchema(
  source: Server,
  target: Server,
  database: string,
  request: SchemaCopyRequest,
): Promise<void> {
  const r = await dockerExec({
    namespace: '',
    pod: target.container.name,
    container: 'postgres',
    command: schemaCopyCommand(
      { host: '127.0.0.1', port: source.port, localPort: target.port, database },
      request,
    ),
  });
  if (r.exitCode !== 0) throw new Error(`schema copy failed (exit ${r.exitCode}): ${r.stderr}`);
}

/** The operator's subscription connection string for a server (placeholder password). */
export const execConninfo = (server: Server, database: string): string =>
  sourceConninfo({ host: '127.0.0.1', port: server.port, database });

/** The shard map text apps read for shards served on loopback, with `a`'s ranges. */
export const loopbackMapText = (
  servers: readonly Pick<Server, 'port'>[],
  a: Assignment,
  database: string,
): string =>
  JSON.stringify({
    ...makeShardMap({
      version: a.version,
      shards: servers.map((s, index) => ({
        index,
        primary: '127.0.0.1',
        replicas: '127.0.0.1',
        port: s.port,
      })),
      database,
      shardKey: KEY,
    }),
    ranges: a.ranges,
  });
