// The pgbouncer image as the pooler pod runs it (uid 999, read-only root filesystem, no
// capabilities) on the files the pooler tier renders, in front of a real Postgres from the
// postgres-patroni image: TLS both sides, SCRAM pass-through with the app role's secret
// fetched by auth_query (no password file anywhere), transaction pooling with node-postgres'
// prepared statements, plain connections refused, and the exporter's metrics.
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PoolerModel } from '../../operator/api/model.ts';
import {
  POOLER_ADMIN_USER,
  POOLER_AUTH_ROLE,
  POOLER_EXPORTER_PORT,
  POOLER_HBA,
  POOLER_INI,
  POOLER_SOCKET_DIR,
  poolerAuthSql,
  poolerPgHba,
  renderPgbouncerHba,
  renderPgbouncerIni,
} from '../../operator/tiers/pooler/config.ts';
import { issueCa, issueClientCert, issueServerCert } from '../../operator/tiers/shared/tls/x509.ts';
import { alertGroups } from '../../operator/tiers/monitoring/alerts.ts';
import { modelOf } from '../../operator/tiers/shared/test-helpers.ts';
import { docker, eventuallyOk, image, ipOf, runPod, volumeDir } from './docker.ts';

const UID = 999;
const PG_PORT = 5433;
const started: string[] = [];
const name = (what: string) => {
  const n = `scalable-smoke-${what}-${randomBytes(3).toString('hex')}`;
  started.push(n);
  return n;
};
afterAll(async () => {
  if (started.length > 0) await docker(['rm', '-f', ...started]);
});

/** Files as a Secret volume gives them: root-owned, group 999 (fsGroup), 0640. */
function secretDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'scalable-pooler-'));
  chmodSync(dir, 0o755);
  for (const [f, text] of Object.entries(files)) {
    writeFileSync(join(dir, f), text, { mode: 0o640 });
    chownSync(join(dir, f), 0, UID);
  }
  return dir;
}
function configDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'scalable-pooler-cfg-'));
  chmodSync(dir, 0o755);
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text, { mode: 0o644 });
  return dir;
}

const pooler: PoolerModel = {
  mode: 'transaction',
  replicas: 2,
  // Two server connections for many clients: the pooling is what is tested.
  defaultPoolSize: 2,
  minPoolSize: 0,
  reservePoolSize: 0,
  maxClientConnections: 100,
  resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '128Mi' } },
};

describe('pgbouncer image in front of Postgres', () => {
  const appPassword = randomBytes(12).toString('hex');
  const superPassword = randomBytes(12).toString('hex');
  let pgName = '';
  let poolerIp = '';
  let caCert = '';
  let exporter = '';

  const client = (over: Partial<pg.ClientConfig> = {}) =>
    new pg.Client({
      host: poolerIp,
      port: 5432,
      user: 'shop',
      password: appPassword,
      database: 'shop',
      ssl: { ca: caCert, servername: 'localhost' },
      connectionTimeoutMillis: 10_000,
      ...over,
    });
  const psql = (sql: string, db = 'postgres') =>
    docker([
      'exec',
      '-e',
      `PGPASSWORD=${superPassword}`,
      pgName,
      'psql',
      '-X',
      '-v',
      'ON_ERROR_STOP=1',
      '-h',
      '127.0.0.1',
      '-p',
      String(PG_PORT),
      '-U',
      'postgres',
      '-d',
      db,
      '-Atc',
      sql,
    ]);

  beforeAll(async () => {
    const now = new Date();
    const ca = await issueCa('pooler test CA', now);
    caCert = ca.cert;
    const pgPair = await issueServerCert(ca, ['localhost', '127.0.0.1'], now);
    const poolerPair = await issueServerCert(ca, ['localhost'], now);
    const poolerClient = await issueClientCert(ca, POOLER_AUTH_ROLE, now);

    // Postgres as the database pod runs it, TLS on, pg_hba: the pooler's role by certificate
    // (the lines the database tier adds), everyone else SCRAM over TLS.
    pgName = name('pgb-pg');
    const pgTls = secretDir({ 'tls.crt': pgPair.cert, 'tls.key': pgPair.key, 'ca.crt': ca.cert });
    const hba = configDir({
      'pg_hba.conf': [
        'local all all trust',
        ...poolerPgHba('hostssl'),
        'hostssl all all 0.0.0.0/0 scram-sha-256',
        '',
      ].join('\n'),
    });
    const script = [
      'set -e',
      `printf '%s\\n' "$PGPW" >/tmp/pw`,
      'initdb -D /var/lib/postgresql/data/pgdata -U postgres --pwfile=/tmp/pw --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null',
      [
        'exec postgres -D /var/lib/postgresql/data/pgdata',
        `-c port=${PG_PORT} -c listen_addresses=127.0.0.1`,
        '-c unix_socket_directories=/var/run/postgresql',
        '-c hba_file=/etc/pghba/pg_hba.conf -c ssl=on',
        '-c ssl_cert_file=/etc/scalable/tls/tls.crt -c ssl_key_file=/etc/scalable/tls/tls.key',
        '-c ssl_ca_file=/etc/scalable/tls/ca.crt -c password_encryption=scram-sha-256',
      ].join(' '),
    ].join('\n');
    const pgRun = await runPod({
      image: image('postgres-patroni'),
      uid: UID,
      name: pgName,
      flags: ['--shm-size', '64m'],
      volumes: {
        [volumeDir(UID)]: '/var/lib/postgresql/data',
        [pgTls]: '/etc/scalable/tls:ro',
        [hba]: '/etc/pghba:ro',
      },
      tmpfs: ['/tmp', `/var/run/postgresql:uid=${UID},gid=${UID}`],
      env: { PGPW: superPassword },
      entrypoint: 'sh',
      args: ['-c', script],
    });
    expect(pgRun.code, pgRun.stderr).toBe(0);
    await eventuallyOk('Postgres', async () =>
      (await psql('select 1')).code === 0 ? 1 : undefined,
    );
    // The app role and database as post-bootstrap makes them, then the pooler's auth SQL.
    const pw = appPassword;
    expect((await psql(`CREATE ROLE shop LOGIN PASSWORD '${pw}'`)).stderr).toBe('');
    expect((await psql('CREATE DATABASE shop OWNER shop')).code).toBe(0);
    const auth = await psql(poolerAuthSql('shop'), 'shop');
    expect(auth.code, auth.stderr).toBe(0);

    // PgBouncer in the Postgres container's network (so `localhost` is Postgres, as the -rw
    // name is in a cluster), on the rendered files.
    const layout = {
      serverHost: 'localhost',
      serverPort: PG_PORT,
      listenPort: 5432,
      clientCert: '/etc/scalable/tls/tls.crt',
      clientKey: '/etc/scalable/tls/tls.key',
      serverCert: '/etc/scalable/client/tls.crt',
      serverKey: '/etc/scalable/client/tls.key',
      ca: '/etc/scalable/ca/ca.crt',
    };
    const cfg = configDir({
      [POOLER_INI]: renderPgbouncerIni(pooler, 'shop', layout),
      [POOLER_HBA]: renderPgbouncerHba(),
    });
    const socket = volumeDir(UID);
    const bouncer = name('pgb');
    const run = await runPod({
      image: image('pgbouncer'),
      uid: UID,
      name: bouncer,
      network: `container:${pgName}`,
      volumes: {
        [cfg]: '/etc/pgbouncer:ro',
        [secretDir({ 'tls.crt': poolerPair.cert, 'tls.key': poolerPair.key })]:
          '/etc/scalable/tls:ro',
        [secretDir({ 'tls.crt': poolerClient.cert, 'tls.key': poolerClient.key })]:
          '/etc/scalable/client:ro',
        [secretDir({ 'ca.crt': ca.cert })]: '/etc/scalable/ca:ro',
        [socket]: POOLER_SOCKET_DIR,
      },
    });
    expect(run.code, run.stderr).toBe(0);
    poolerIp = await ipOf(pgName);
    await eventuallyOk(
      'PgBouncer answering',
      async () => {
        const c = client();
        try {
          await c.connect();
          return (await c.query('select 1 as one')).rows[0].one as number;
        } catch {
          return undefined;
        } finally {
          await c.end().catch(() => undefined);
        }
      },
      90_000,
    ).catch(async (err: unknown) => {
      const logs = await docker(['logs', bouncer]);
      throw new Error(`${String(err)}\n${logs.stdout}${logs.stderr}`);
    });

    exporter = name('pgb-exp');
    const ex = await runPod({
      image: image('pgbouncer'),
      uid: UID,
      name: exporter,
      network: `container:${pgName}`,
      volumes: { [socket]: POOLER_SOCKET_DIR },
      entrypoint: '/usr/bin/prometheus-pgbouncer-exporter',
      args: [
        `--pgBouncer.connectionString=host=${POOLER_SOCKET_DIR} port=5432 user=${POOLER_ADMIN_USER} dbname=pgbouncer sslmode=disable`,
        `--pgBouncer.pid-file=${POOLER_SOCKET_DIR}/pgbouncer.pid`,
        `--web.listen-address=:${POOLER_EXPORTER_PORT}`,
      ],
    });
    expect(ex.code, ex.stderr).toBe(0);
  }, 240_000);

  it('serves 20 clients over its 2 server connections in transaction mode, prepared statements included, as the app role over TLS to Postgres', async () => {
    const clients = Array.from({ length: 20 }, () => client());
    await Promise.all(clients.map((c) => c.connect()));
    try {
      // Named statements (node-postgres' protocol-level Parse/Bind), each run several times
      // per client: PgBouncer re-prepares them on whichever server connection it picks.
      const results = await Promise.all(
        clients.map(async (c, i) => {
          const out: string[] = [];
          for (let k = 0; k < 5; k++) {
            const r = await c.query({
              name: 'who',
              text: 'select current_user as u, inet_server_port() as port, $1::int + $2::int as n',
              values: [i, k],
            });
            out.push(`${r.rows[0].u}:${r.rows[0].port}:${r.rows[0].n}`);
          }
          return out;
        }),
      );
      expect(results[7]).toEqual([0, 1, 2, 3, 4].map((k) => `shop:${PG_PORT}:${7 + k}`));
      expect(results.flat()).toHaveLength(100);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
    // On Postgres: the app role's backends came from PgBouncer, no more than its pool, over
    // TLS; the auth role logged in with its certificate.
    const shop = await psql(
      "select count(*), bool_and(s.ssl) from pg_stat_activity a join pg_stat_ssl s using (pid) where a.usename = 'shop'",
    );
    const [count, ssl] = shop.stdout.trim().split('|');
    expect(Number(count)).toBeGreaterThan(0);
    expect(Number(count)).toBeLessThanOrEqual(pooler.defaultPoolSize);
    expect(ssl).toBe('t');
    const auth = await psql(
      `select s.ssl, s.client_dn from pg_stat_activity a join pg_stat_ssl s using (pid) where a.usename = '${POOLER_AUTH_ROLE}'`,
    );
    expect(auth.stdout.trim().split('\n')).toContain(`t|/CN=${POOLER_AUTH_ROLE}`);
  });

  it('refuses plain TCP, a wrong password, and a client that does not trust its CA', async () => {
    const plain = client({ ssl: false });
    await expect(plain.connect()).rejects.toThrow(/SSL required|no pg_hba|hba/i);
    const wrong = client({ password: 'not-the-password' });
    await expect(wrong.connect()).rejects.toThrow(/SASL authentication failed/);
    const stranger = client({ ssl: { ca: (await issueCa('other CA', new Date())).cert } });
    await expect(stranger.connect()).rejects.toThrow(/certificate/);
  });

  it('gives the auth role nothing but the app role’s secret', async () => {
    const other = await psql(
      `set role "${POOLER_AUTH_ROLE}"; select count(*) from scalable_pooler.lookup('postgres')`,
      'shop',
    );
    expect(other.stdout.trim()).toBe('SET\n0');
    const own = await psql(
      `set role "${POOLER_AUTH_ROLE}"; select passwd like 'SCRAM-SHA-256$%' from scalable_pooler.lookup('shop')`,
      'shop',
    );
    expect(own.stdout.trim()).toBe('SET\nt');
    const table = await psql(`set role "${POOLER_AUTH_ROLE}"; select count(*) from pg_authid`);
    expect(table.code).not.toBe(0);
    expect(table.stderr).toMatch(/permission denied/);
  });

  it('the exporter reads the admin console over the Unix socket and serves its metrics', async () => {
    const text = await eventuallyOk('pgbouncer_up 1', async () => {
      const res = await fetch(`http://${poolerIp}:${POOLER_EXPORTER_PORT}/metrics`).catch(
        () => undefined,
      );
      const t = res?.ok ? await res.text() : undefined;
      return t && /^pgbouncer_up 1$/m.test(t) ? t : undefined;
    }).catch(async (err: unknown) => {
      const logs = await docker(['logs', exporter]);
      throw new Error(`${String(err)}\n${logs.stdout}${logs.stderr}`);
    });
    expect(text).toMatch(/^pgbouncer_pools_server_active_connections\{.*database="shop"/m);
    // Every pgbouncer_* series the pooler's alerts read is one this exporter serves, with
    // the labels they select on.
    const rules = alertGroups(modelOf({ database: { pooler: {} }, monitoring: {} }))
      .flatMap((g) => g.rules)
      .filter((r) => r.labels['scalable_tier'] === 'pooler');
    const used = [...new Set(rules.flatMap((r) => r.expr.match(/pgbouncer_\w+/g) ?? []))];
    expect(used.length).toBeGreaterThan(3);
    for (const metric of used) expect(text, metric).toMatch(new RegExp(`^${metric}[{ ]`, 'm'));
    expect(text).toMatch(/^pgbouncer_pools_client_maxwait_seconds\{database="shop",user="shop"\}/m);
    expect(text).toMatch(/^pgbouncer_databases_pool_size\{.*name="shop"/m);
  });
});
