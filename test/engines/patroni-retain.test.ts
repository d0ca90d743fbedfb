// deletionPolicy Retain, the engine half: the app is deleted (its pods stop; volumes, Patroni's
// state ConfigMaps and the password Secrets stay, as test/integration/operator-data.test.ts
// shows against the real API server), then re-created with the same spec. Real Patroni starts
// on the retained data directories and DCS state: same data, and the app's password, which the
// retained Secret still holds, logs in.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appDatabaseName } from '../../operator/tiers/database/names.ts';
import { PASSWORDS, eventually, running, startDatabase, sslOf } from './patroni-harness.ts';
import type { Harness } from './patroni-harness.ts';

let h: Harness;

beforeAll(async () => {
  h = await startDatabase('retain', { replicasPerShard: 1, storage: { size: '1Gi' } });
});

afterAll(async ({}, suite) => {
  await h?.stop(suite);
});

async function asApp<T>(port: number, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const db = appDatabaseName(h.app);
  const c = new pg.Client({
    host: '127.0.0.1',
    port,
    ...sslOf(port),
    user: db,
    password: PASSWORDS.app,
    database: db,
    connectionTimeoutMillis: 2000,
  });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

describe('Retain: an app deleted and re-created reopens its data', () => {
  it('comes back on the retained data directories with the same rows and password', async () => {
    const first = await eventually('a primary', async () => h.primaryOf(0), 120_000);
    await asApp(first.pgPort, async (c) => {
      await c.query('CREATE TABLE kept (id int PRIMARY KEY, v text)');
      await c.query("INSERT INTO kept SELECT i, 'row ' || i FROM generate_series(1, 500) i");
    });
    const dataDirs = h.members.map((m) => m.dataDir);

    // The app is deleted: every pod stops (as the kubelet stops them); nothing else is touched.
    await Promise.all(h.members.map((m) => h.stopMember(m)));
    expect(h.members.some(running)).toBe(false);

    // Re-created with the same spec: the same StatefulSets start the same members.
    for (const m of h.members) h.startMember(m);
    expect(h.members.map((m) => m.dataDir)).toEqual(dataDirs);
    const again = await eventually(
      'a primary on the retained data',
      async () => {
        const p = h.primaryOf(0);
        return p && (await h.isReady(p)) ? p : undefined;
      },
      120_000,
    );
    const rows = await eventually('the app logs in with its old password', () =>
      asApp(again.pgPort, async (c) => (await c.query('SELECT count(*)::int AS n FROM kept')).rows),
    );
    expect(rows[0]?.n).toBe(500);
  });
});
