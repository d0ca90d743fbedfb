// The pooler turned on for a database bootstrapped without it (issue 31): post_bootstrap
// made no auth role then, so PgBouncer (our image, the rendered pgbouncer.ini and hba, the
// certificates it names) can authenticate nobody. The spec gains database.pooler, the
// shard's files and the container's args are rendered again as the operator renders them,
// and the pod restarts (the pod template changed): fence.py, when its member leads again,
// makes the role, the schema and the lookup function in the app's database. The app role
// then logs in through PgBouncer with SCRAM over TLS, and the app's rows are as they were;
// a second leadership runs the same SQL again without harm. PgBouncer reaches the primary
// through a stand-in for the shard's -rw Service that follows the primary label.
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppModel } from '../../operator/api/model.ts';
import { buildAll } from '../../operator/tiers/index.ts';
import { POSTGRES_PORT, appDatabaseName, shardName } from '../../operator/tiers/database/names.ts';
import {
  POOLER_AUTH_ROLE,
  POOLER_CONFIG_DIR,
  POOLER_HBA,
  POOLER_INI,
  POOLER_SCHEMA,
  POOLER_SOCKET_DIR,
} from '../../operator/tiers/pooler/config.ts';
import { POOLER_CLIENT_CERT_DIR } from '../../operator/tiers/pooler/build.ts';
import { poolerName } from '../../operator/tiers/pooler/names.ts';
import {
  CA_DIR,
  SERVER_TLS_DIR,
  TLS_FILES,
  tlsDnsNamesOf,
  tlsSecretName,
} from '../../operator/tiers/shared/tls/objects.ts';
import { issueClientCert, issueServerCert } from '../../operator/tiers/shared/tls/x509.ts';
import type { K8sObject } from '../../operator/tiers/shared/chart.ts';
import { ENGINE_IMAGES, ENGINE_UID, startContainer } from './containers.ts';
import type { Container } from './containers.ts';
import {
  PASSWORDS,
  TEST_CA,
  appModel,
  eventually,
  freePort,
  sql,
  startDatabase,
} from './patroni-harness.ts';
import type { Harness, Member } from './patroni-harness.ts';
import { serviceProxies } from './sdk-db-harness.ts';
import type { ServiceProxies } from './sdk-db-harness.ts';

const BEFORE = { replicasPerShard: 0 };
const AFTER = { ...BEFORE, pooler: { defaultPoolSize: 2 } };
/** Loopback stand-ins (host network): the shard's -rw Service, and the pooler pod. */
const RW_IP = '127.0.2.31';
const POOLER_IP = '127.0.2.30';
const READY = `fence: pooler auth role ready`;

let h: Harness;
let on: AppModel;
let bouncer: Container | undefined;
let proxies: ServiceProxies | undefined;
let poolerPort = 0;
let filesDir = '';
let member: Member;
let appRows = '';

const appDb = (): string => appDatabaseName(h.app);
const objectOf = (objects: readonly K8sObject[], kind: string, name: string): K8sObject => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name} rendered`);
  return o;
};

/** Files as a Secret or ConfigMap volume gives them to uid 999. */
function volume(name: string, files: Record<string, string>): string {
  const dir = join(filesDir, name);
  mkdirSync(dir);
  chmodSync(dir, 0o755);
  for (const [f, text] of Object.entries(files)) {
    writeFileSync(join(dir, f), text, { mode: f.endsWith('.key') ? 0o600 : 0o644 });
    chownSync(join(dir, f), ENGINE_UID, ENGINE_UID);
  }
  return dir;
}

/** The app role through PgBouncer: SCRAM over TLS, the pooler's certificate verified. */
async function throughPooler(): Promise<{ user: string; rows: string }> {
  const c = new pg.Client({
    host: POOLER_IP,
    port: poolerPort,
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
    const log = readFileSync(join(filesDir, 'pgbouncer.log'), 'utf8').split('\n').slice(-20);
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

  // The pooler pod as the operator renders it once database.pooler is on: its ConfigMap
  // (loopback addresses; the -rw name resolves to the member) and the certificates its
  // Secrets name, from the harness's CA.
  on = appModel(h.ns, AFTER);
  const objects = buildAll(on);
  const cm = objectOf(objects, 'ConfigMap', poolerName(on, 0))['data'] as Record<string, string>;
  const rendered = cm[POOLER_INI] ?? '';
  const rwHost = `${shardName(on, 0)}.${h.ns}.svc`;
  const dbLine = `host='${rwHost}' port=${POSTGRES_PORT} `;
  expect(rendered).toContain(dbLine);
  // The -rw Service as a pod reaches it: its endpoints follow the primary label.
  const rwPort = await freePort();
  proxies = serviceProxies(h, 300, true);
  await proxies.add(shardName(on, 0), RW_IP, rwPort);
  poolerPort = await freePort();
  const ini = rendered
    .replace(dbLine, `host='${rwHost}' port=${rwPort} `)
    .replace(/^listen_addr = .*$/m, `listen_addr = ${POOLER_IP}`)
    .replace(/^listen_port = .*$/m, `listen_port = ${poolerPort}`);
  filesDir = mkdtempSync(join(tmpdir(), 'pool-late-'));
  chmodSync(filesDir, 0o755);
  const now = new Date();
  const servingNames = tlsDnsNamesOf(objectOf(objects, 'Secret', tlsSecretName(poolerName(on, 0))));
  const serving = await issueServerCert(TEST_CA, [...servingNames, POOLER_IP], now);
  const client = await issueClientCert(TEST_CA, POOLER_AUTH_ROLE, now);
  bouncer = startContainer(
    {
      image: ENGINE_IMAGES.pgbouncer,
      name: `${h.ns}-pooler`,
      args: [`${POOLER_CONFIG_DIR}/${POOLER_INI}`],
      binds: [
        [
          volume('config', { [POOLER_INI]: ini, [POOLER_HBA]: cm[POOLER_HBA] ?? '' }),
          POOLER_CONFIG_DIR,
        ],
        [
          volume('tls', { [TLS_FILES.cert]: serving.cert, [TLS_FILES.key]: serving.key }),
          SERVER_TLS_DIR,
        ],
        [
          volume('client', { [TLS_FILES.cert]: client.cert, [TLS_FILES.key]: client.key }),
          POOLER_CLIENT_CERT_DIR,
        ],
        [volume('ca', { [TLS_FILES.ca]: TEST_CA.cert }), CA_DIR],
      ],
      tmpfs: [POOLER_SOCKET_DIR],
      // The -rw Service's name as the cluster's DNS answers it: its stand-in's address.
      hosts: { [rwHost]: RW_IP },
    },
    { log: join(filesDir, 'pgbouncer.log') },
  );
}, 420_000);

afterAll(async ({}, suite) => {
  await bouncer?.remove();
  await proxies?.close();
  await h?.stop(suite);
  if (filesDir && !process.env['SCALABLE_KEEP_ENGINE_LOGS'])
    rmSync(filesDir, { recursive: true, force: true });
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
