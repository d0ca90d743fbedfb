// The rendered post-bootstrap script against a real Postgres, for apps whose names are SQL
// keywords (issue 36: `CREATE ROLE user` is a syntax error, so such an app's first primary
// never finished bootstrapping). The app then connects with the role, password and database
// it is handed (DATABASE_USER / DATABASE_NAME) and finds the bucket function.
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../devcluster/testing.ts';
import { toModel } from '../../operator/api/model.ts';
import { validateApp } from '../../operator/api/validate.ts';
import { appDatabaseName } from '../../operator/tiers/database/names.ts';
import { ENV, renderPostBootstrap } from '../../operator/tiers/database/patroni-config.ts';
import { ENGINE_IMAGES, ENGINE_UID, PG_BIN, runOnce, startContainer } from './containers.ts';
import type { Container } from './containers.ts';

// The image's programs first on PATH, as in the postgres-patroni image's own environment.
const PATH = `${PG_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() =>
        typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port')),
      );
    });
  });
}

const modelNamed = (name: string) => {
  const r = validateApp({
    apiVersion: 'scalable.dev/v1alpha1',
    kind: 'ScalableApp',
    metadata: { name, namespace: 'prod' },
    spec: { web: { image: 'x:1' }, database: {} },
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return toModel(r.app);
};

describe('post-bootstrap for apps named like SQL keywords', () => {
  let dir = '';
  let port = 0;
  let server: Container | undefined;

  beforeAll(async () => {
    // Postgres from the project's image, on the host's network, its data under the test's
    // directory (mounted at its own path, owned by the pod's uid).
    dir = mkdtempSync(join(tmpdir(), 'pg-bootstrap-'));
    chownSync(dir, ENGINE_UID, ENGINE_UID);
    const data = join(dir, 'data');
    // The superuser over the socket (as Patroni runs the script), apps by password over TCP.
    const init = runOnce({
      image: ENGINE_IMAGES.postgres,
      name: 'pg-bootstrap-initdb',
      entrypoint: `${PG_BIN}/initdb`,
      args: ['-D', data, '--auth-local=trust', '--auth-host=scram-sha-256', '-U', 'postgres'],
      mounts: [dir],
    });
    if (init.status !== 0) throw new Error(`initdb: ${init.stderr}`);
    port = await freePort();
    server = startContainer({
      image: ENGINE_IMAGES.postgres,
      name: 'pg-bootstrap',
      entrypoint: `${PG_BIN}/postgres`,
      args: [
        '-D',
        data,
        '-p',
        String(port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        `unix_socket_directories=${dir}`,
      ],
      mounts: [dir],
    });
    await eventually(
      'Postgres accepting connections',
      async () => {
        const r = server?.exec([`${PG_BIN}/pg_isready`, '-h', dir, '-p', String(port)]);
        if (!server?.running) throw new Error(`postgres ended: ${server?.output ?? ''}`);
        return r?.status === 0 ? true : undefined;
      },
      120_000,
    );
  }, 240_000);

  afterAll(async () => {
    await server?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(['user', 'order', 'select-from', 'table'])(
    'app %s: its role and database exist and it can connect',
    async (name) => {
      const app = modelNamed(name);
      const db = appDatabaseName(app);
      const script = join(dir, `post-bootstrap-${db}.sh`);
      writeFileSync(script, renderPostBootstrap(app), { mode: 0o755 });
      // As Patroni runs it: the superuser's connection string as $1, passwords in the env. The
      // monitor role exists from the first app on: drop it so each run creates it as the first.
      const drop = server?.exec([
        `${PG_BIN}/psql`,
        '-h',
        dir,
        '-p',
        String(port),
        '-U',
        'postgres',
        '-c',
        'DROP ROLE IF EXISTS monitor',
      ]);
      expect(drop?.status, drop?.stderr).toBe(0);
      const run = server?.exec(
        ['sh', script, `host=${dir} port=${port} user=postgres dbname=postgres`],
        { PATH, [ENV.appPassword]: `pw-${db}`, [ENV.monitorPassword]: 'mon' },
      );
      expect(run?.status, run?.stderr).toBe(0);
      const client = new pg.Client({
        host: '127.0.0.1',
        port,
        user: db,
        password: `pw-${db}`,
        database: db,
      });
      await client.connect();
      try {
        const r = await client.query(
          'SELECT current_user AS u, current_database() AS d, scalable_bucket($1::text) AS b',
          ['k'],
        );
        expect(r.rows[0]).toMatchObject({ u: db, d: db });
        expect(typeof r.rows[0].b).toBe('number');
      } finally {
        await client.end();
      }
    },
  );
});
