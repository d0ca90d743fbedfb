// The pooler turned on for a database bootstrapped without it (issue 31): post_bootstrap
// made no auth role then, so PgBouncer (our image, the rendered pgbouncer.ini and hba, the
// certificates it names) can authenticate nobody. The spec gains database.pooler, the
// shard's files and the container's args are rendered again as the operator renders them,
// and the pod restarts (the pod template changed): fence.py, when its member leads again,
// makes the role, the schema and the lookup function in the app's database. The app role
// then logs in through PgBouncer with SCRAM over TLS, and the app's rows are as they were;
// a second leadership runs the same SQL again without harm. PgBouncer reaches the primary
// through a stand-in for the shard's -rw Service that follows the primary label.
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appDatabaseName } from '../../operator/tiers/database/names.ts';
import { POOLER_AUTH_ROLE, POOLER_SCHEMA } from '../../operator/tiers/pooler/config.ts';
import { PASSWORDS, TEST_CA, appModel, eventually, sql, startDatabase } from './patroni-harness.ts';
import type { Harness, Member } from './patroni-harness.ts';
import { startPooler } from './pooler-harness.ts';
import type { Pooler } from './pooler-harness.ts';

const BEFORE = { replicasPerShard: 0 };
const AFTER = { ...BEFORE, pooler: { defaultPoolSize: 2 } };
/** Loopback stand-ins (host network): the shard's -rw Service, and the pooler pod. */
const RW_IP = '127.0.2.31';
const POOLER_IP = '127.0.2.30';
const READY = `fence: pooler auth role ready`;

let h: Harness;
let pooler: Pooler | undefined;
let member: Member;
let appRows = '';

const appDb = (): string => appDatabaseName(h.app);
const bouncer = (): Pooler => {
  if (!pooler) throw new Error('no pooler');
  return pooler;
};

/** The app role through PgBouncer: SCRAM over TLS, the pooler's certificate verified. */
async function throughPooler(): Promise<{ user: string; rows: string }> {
  const c = new pg.Client({
    host: bouncer().ip,
    port: bouncer().port,
    user: appDb(),
    password: PASSWORDS.app,
    database: appDb(),
    ssl: { ca: TEST_CA.cert },
    connectionTimeoutMillis: 10_000,
    query_timeout: 10_000,
  });
  c.on('error', () => undefined);
  try {
    await c.connect();
    const r = await c.query<{ user: string; rows: string }>(
      "SELECT current_user AS user, (SELECT md5(string_agg(id || note, ',' ORDER BY id)) FROM app_notes) AS rows",
    );
    const row = r.rows[0];
    if (!row) throw new Error('no row');
    return row;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Logged in through PgBouncer, eventually; else the last refusal and PgBouncer's log. */
async function admitted(what: string): Promise<{ user: string; rows: string }> {
  let last = '';
  return eventually(
    what,
    async () =>
      throughPooler().catch((e: Error) => {
        last = e.message;
        return undefined;
      }),
    60_000,
    500,
  ).catch((e: unknown) => {
    const log = readFileSync(bouncer().log, 'utf8').split('\n').slice(-20);
    throw new Error(`${String(e)}\nlast refusal: ${last}\nPgBouncer:\n${log.join('\n')}`);
  });
}

const readyLines = (): number =>
  readFileSync(member.log, 'utf8')
    .split('\n')
    .filter((l) => l.includes(READY)).length;

const authObjects = async (): Promise<{ role: number; fn: number }> => {
  const rows = await sql<{ role: number; fn: number }>(
    member.pgPort,
    `SELECT (SELECT count(*)::int FROM pg_roles WHERE rolname = $1) AS role,
            (SELECT count(*)::int FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = $2 AND p.proname = 'lookup') AS fn`,
    [POOLER_AUTH_ROLE, POOLER_SCHEMA],
    appDb(),
  );
  return rows[0] ?? { role: -1, fn: -1 };
};

/** Restart the pod (its template changed) and wait until it leads again. */
async function restart(): Promise<void> {
  await h.stopMember(member);
  h.startMember(member);
  await eventually(
    `${member.name} the primary again`,
    async () => (h.primaryOf(0)?.name === member.name ? true : undefined),
    180_000,
    500,
  );
}

beforeAll(async () => {
  h = await startDatabase('pool-late', BEFORE);
  const m = await eventually('a primary', async () => h.primaryOf(0), 180_000, 500);
  member = m;
  // The app's data, written before the pooler existed.
  await eventually(
    'the app table written',
    async () =>
      sql(
        m.pgPort,
        `CREATE TABLE app_notes (id int PRIMARY KEY, note text);
         INSERT INTO app_notes SELECT g, 'note ' || g FROM generate_series(1, 500) g;
         ALTER TABLE app_notes OWNER TO "${appDb()}";`,
        [],
        appDb(),
      ).then(
        () => true,
        () => undefined,
      ),
    60_000,
    500,
  );
  const rows = await sql<{ rows: string }>(
    m.pgPort,
    "SELECT md5(string_agg(id || note, ',' ORDER BY id)) AS rows FROM app_notes",
    [],
    appDb(),
  );
  appRows = rows[0]?.rows ?? '';
  expect(appRows).toMatch(/^[0-9a-f]{32}$/);

  // The pooler pod as the operator renders it once database.pooler is on.
  pooler = await startPooler(h, appModel(h.ns, AFTER), { ip: POOLER_IP, rwIp: RW_IP });
}, 420_000);

afterAll(async ({}, suite) => {
  await pooler?.close();
  await h?.stop(suite);
}, 120_000);

describe.sequential('the pooler turned on for a database bootstrapped without it', () => {
  it('before: no auth role, and PgBouncer lets nobody in', async () => {
    expect(await authObjects()).toEqual({ role: 0, fn: 0 });
    // PgBouncer is up (it refuses a login, rather than a connection) and cannot look the
    // app role up.
    await eventually(
      'PgBouncer refusing the app role',
      async () =>
        throughPooler().then(
          () => 'admitted',
          (e: Error) => (/connect ECONNREFUSED|timeout/i.test(e.message) ? undefined : e.message),
        ),
      60_000,
      500,
    ).then((outcome) => {
      console.log(`[pooler-late] before the pooler was on: ${outcome}`);
      // The symptom: PgBouncer's auth connection as a role Postgres does not know by
      // certificate (no such role yet; the hba line for it came with the pooler).
      expect(outcome).toMatch(new RegExp(`authentication failed for user "${POOLER_AUTH_ROLE}"`));
    });
  });

  it('turned on: the restarted leader makes the role and lookup function; the app role logs in through PgBouncer; its rows unchanged', async () => {
    const model = h.reconfigure(AFTER);
    expect(model.database?.pooler).toBeDefined();
    await restart();
    await eventually(
      'fence.py: the pooler auth role ready',
      async () => (readyLines() >= 1 ? true : undefined),
      60_000,
      500,
    );
    expect(await authObjects()).toEqual({ role: 1, fn: 1 });
    const role = await sql<{ login: boolean; inherit: boolean; super: boolean; pw: boolean }>(
      member.pgPort,
      `SELECT rolcanlogin AS login, rolinherit AS inherit, rolsuper AS super,
              rolpassword IS NOT NULL AS pw FROM pg_authid WHERE rolname = $1`,
      [POOLER_AUTH_ROLE],
    );
    expect(role).toEqual([{ login: true, inherit: false, super: false, pw: false }]);
    const through = await admitted('the app role through PgBouncer');
    expect(through).toEqual({ user: appDb(), rows: appRows });
  });

  it('a second leadership runs it again without harm', async () => {
    await restart();
    await eventually(
      'fence.py: ready a second time',
      async () => (readyLines() >= 2 ? true : undefined),
      60_000,
      500,
    );
    expect(await authObjects()).toEqual({ role: 1, fn: 1 });
    const through = await admitted('the app role through PgBouncer again');
    expect(through).toEqual({ user: appDb(), rows: appRows });
  });
});
