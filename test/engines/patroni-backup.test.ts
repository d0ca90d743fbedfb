// database.backup for real (issue 28): a shard of Patroni + Postgres from our image
// (patroni-harness.ts) archiving with the rendered pgbackrest.conf and archive_command to
// versitygw, an S3-compatible store on loopback over TLS (its certificate from the harness's
// CA, which pgBackRest verifies). Stanza, a full base backup, WAL from the primary, a
// switchover, WAL from the new primary with no gap in the archive, then a point-in-time
// restore into a fresh data directory: every row committed before the target, none after.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import {
  chownSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureVersitygw, versitygwBinPath } from '../../devcluster/index.ts';
import { PGBACKREST_CONFIG_FILE } from '../../operator/tiers/database/backup.ts';
import { REPLICA_ROLE } from '../../operator/tiers/database/names.ts';
import { binDir } from '../../operator/tiers/database/patroni-config.ts';
import { issueServerCert } from '../../operator/tiers/shared/tls/x509.ts';
import { ENGINE_IMAGES, ENGINE_UID, runOnce, startContainer } from './containers.ts';
import type { Container } from './containers.ts';
import { PASSWORDS, TEST_CA, eventually, freePort, sql, startDatabase } from './patroni-harness.ts';
import type { Harness, Member } from './patroni-harness.ts';
import { settled } from './patroni-rollout-scenarios.ts';

const KEYS = {
  PGBACKREST_REPO1_S3_KEY: 'backup-key',
  PGBACKREST_REPO1_S3_KEY_SECRET: 'backup-secret-0123',
};
const BUCKET = 'pg-backups';
const STANZA = 'shop-db-0';

let h: Harness;
let store: ChildProcess | undefined;
let storeDir = '';
let restored: Container | undefined;

/** pgBackRest on a member, as `kubectl exec` would run it: the pod's env, the rendered file. */
function pgbackrest(m: Member, args: readonly string[]) {
  const conf = join(h.dir, `shard-${m.shard}`, PGBACKREST_CONFIG_FILE);
  // The superuser's password for its socket connection (pg_hba: scram everywhere).
  const r = m.container?.exec(['pgbackrest', `--config=${conf}`, `--stanza=${STANZA}`, ...args], {
    PGPASSWORD: PASSWORDS.superuser,
  });
  if (!r || r.status !== 0)
    throw new Error(
      `pgbackrest ${args.join(' ')} on ${m.name}: ${r?.stderr ?? ''}${r?.stdout ?? ''}`,
    );
  return r.stdout;
}

/** The archived WAL segments of a timeline, by the store's files (the POSIX backend). */
function archived(): { timelines: Map<number, number[]>; history: string[] } {
  const root = join(storeDir, BUCKET, 'prod', 'shop', 'archive', STANZA);
  const timelines = new Map<number, number[]>();
  const history: string[] = [];
  for (const archiveId of readdirSync(root).filter((d) => /^\d+-\d+$/.test(d))) {
    for (const entry of readdirSync(join(root, archiveId))) {
      if (entry.endsWith('.history')) {
        history.push(entry);
        continue;
      }
      if (!/^[0-9A-F]{16}$/.test(entry)) continue;
      for (const f of readdirSync(join(root, archiveId, entry))) {
        const m = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})-/.exec(f);
        if (!m?.[1] || !m[2] || !m[3] || f.includes('.partial')) continue;
        const tl = parseInt(m[1], 16);
        // 16 MiB segments: 256 per log id.
        const n = parseInt(m[2], 16) * 256 + parseInt(m[3], 16);
        timelines.set(tl, [...(timelines.get(tl) ?? []), n]);
      }
    }
  }
  for (const list of timelines.values()) list.sort((a, b) => a - b);
  return { timelines, history };
}

const contiguous = (list: readonly number[]) =>
  list.every((n, i) => i === 0 || n === list[i - 1]! + 1);

async function insert(port: number, from: number, to: number): Promise<void> {
  await sql(port, 'INSERT INTO backup_rows SELECT g FROM generate_series($1::int, $2::int) g', [
    from,
    to,
  ]);
}

describe('pgBackRest on a real shard: archive across a switchover, point-in-time restore', () => {
  let first: Member;
  let second: Member;
  let target = '';

  beforeAll(async () => {
    await ensureVersitygw((m) => console.log(`[backup] ${m}`));
    // The store: versitygw on loopback, TLS with a key pair of the harness's CA.
    const port = await freePort();
    const pair = await issueServerCert(TEST_CA, ['localhost', '127.0.0.1'], new Date());
    storeDir = mkdtempSync(join(tmpdir(), 'pg-backup-store-'));
    writeFileSync(join(storeDir, 'tls.crt'), pair.cert);
    writeFileSync(join(storeDir, 'tls.key'), pair.key, { mode: 0o600 });
    mkdirSync(join(storeDir, BUCKET));
    store = spawn(
      versitygwBinPath(),
      [
        '--port',
        `127.0.0.1:${port}`,
        '--cert',
        join(storeDir, 'tls.crt'),
        '--key',
        join(storeDir, 'tls.key'),
        'posix',
        storeDir,
      ],
      {
        env: {
          ...process.env,
          ROOT_ACCESS_KEY_ID: KEYS.PGBACKREST_REPO1_S3_KEY,
          ROOT_SECRET_ACCESS_KEY: KEYS.PGBACKREST_REPO1_S3_KEY_SECRET,
        },
        stdio: ['ignore', openSync(join(storeDir, 'versitygw.log'), 'a'), 'inherit'],
      },
    );
    h = await startDatabase(
      'pg-backup',
      {
        replicasPerShard: 1,
        backup: {
          s3: {
            endpoint: `https://localhost:${port}`,
            bucket: BUCKET,
            path: '/prod/shop',
            uriStyle: 'path',
            credentialsSecret: 'backup-creds',
            ca: { secretName: 'store-ca' },
          },
          runOn: 'Primary',
        },
      },
      [],
      { backupEnv: KEYS },
    );
    first = await settled(h);
    second = h.members.find((m) => m !== first)!;
    await sql(first.pgPort, 'CREATE TABLE backup_rows (id int PRIMARY KEY)');
  }, 600_000);

  afterAll(async ({}, suite) => {
    await restored?.remove();
    await h?.stop(suite);
    store?.kill('SIGKILL');
    if (storeDir) rmSync(storeDir, { recursive: true, force: true });
  });

  it('creates the stanza and takes a full base backup through the rendered configuration', () => {
    pgbackrest(first, ['stanza-create']);
    pgbackrest(first, ['backup', '--type=full']);
    const info = JSON.parse(pgbackrest(first, ['info', '--output=json'])) as Array<{
      backup: Array<{ type: string }>;
      status: { code: number };
    }>;
    expect(info[0]?.status.code).toBe(0);
    expect(info[0]?.backup.map((b) => b.type)).toEqual(['full']);
  }, 300_000);

  it('archives WAL from the primary, then from the new primary after a switchover, with no gap', async () => {
    await insert(first.pgPort, 1, 100);
    // check: a WAL switch, then waits until that segment is in the archive.
    pgbackrest(first, ['check']);
    const before = archived();
    expect([...before.timelines.keys()]).toEqual([1]);

    const r = first.container?.exec([
      'patronictl',
      '-c',
      join(h.dir, 'shard-0', 'patroni.yml'),
      'switchover',
      '--leader',
      first.name,
      '--candidate',
      second.name,
      '--force',
    ]);
    expect(r?.status, r?.stderr).toBe(0);
    await eventually(
      'the candidate primary and the old primary a replica',
      async () =>
        h.primaryOf(0) === second && h.roleOf(first.name) === REPLICA_ROLE ? true : undefined,
      180_000,
      500,
    );

    await eventually(
      'writes on the new primary',
      async () =>
        insert(second.pgPort, 101, 200).then(
          () => true,
          () => undefined,
        ),
      60_000,
      500,
    );
    const [t] = await sql<{ t: string }>(
      second.pgPort,
      "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS t",
    );
    target = t?.t ?? '';
    await insert(second.pgPort, 201, 300);
    pgbackrest(second, ['check']);

    const after = archived();
    // Timeline 2 began on the new primary, with its history file; each timeline's segments
    // follow one another without a hole, and timeline 2 starts where timeline 1 ended.
    expect(after.history).toContain('00000002.history');
    const tl1 = after.timelines.get(1) ?? [];
    const tl2 = after.timelines.get(2) ?? [];
    expect(tl1.length).toBeGreaterThan(0);
    expect(tl2.length).toBeGreaterThan(0);
    expect(contiguous(tl1), `timeline 1: ${tl1.join(',')}`).toBe(true);
    expect(contiguous(tl2), `timeline 2: ${tl2.join(',')}`).toBe(true);
    expect(tl2[0]! - tl1[tl1.length - 1]!).toBeLessThanOrEqual(1);
    expect(tl2[0]!).toBeGreaterThanOrEqual(tl1[tl1.length - 1]!);
  }, 400_000);

  it('restores a fresh data directory to the target time: every row before it, none after', async () => {
    expect(target).not.toBe('');
    const data = join(h.dir, 'data', 'restored');
    const socket = join(h.dir, 'socket', 'restored');
    mkdirSync(data, { mode: 0o700 });
    mkdirSync(socket, { recursive: true });
    chownSync(data, ENGINE_UID, ENGINE_UID);
    chownSync(socket, ENGINE_UID, ENGINE_UID);
    const conf = join(h.dir, 'shard-0', PGBACKREST_CONFIG_FILE);
    const restore = runOnce(
      {
        image: ENGINE_IMAGES.postgres,
        name: `${h.ns}-restore`,
        entrypoint: 'pgbackrest',
        args: [
          `--config=${conf}`,
          `--stanza=${STANZA}`,
          `--pg1-path=${data}`,
          '--type=time',
          `--target=${target}`,
          '--target-action=promote',
          'restore',
        ],
        env: KEYS,
        mounts: [h.dir],
      },
      300_000,
    );
    expect(restore.status, restore.stderr + restore.stdout).toBe(0);

    const port = await freePort();
    const version = h.app.database?.version ?? '';
    restored = startContainer({
      image: ENGINE_IMAGES.postgres,
      name: `${h.ns}-restored`,
      entrypoint: `${binDir(version)}/postgres`,
      args: [
        '-D',
        data,
        '-p',
        String(port),
        '-c',
        `unix_socket_directories=${socket}`,
        '-c',
        'listen_addresses=',
        // A restored copy must not push its own timeline into the shard's archive.
        '-c',
        'archive_mode=off',
      ],
      env: KEYS,
      mounts: [h.dir],
      shmSize: '256m',
    });
    const client = () =>
      new pg.Client({
        host: socket,
        port,
        user: 'postgres',
        password: PASSWORDS.superuser,
        database: 'postgres',
      });
    const result = await eventually(
      'the restored Postgres, promoted at the target',
      async () => {
        // A Postgres that refused to start says why, at once.
        if (restored && !restored.running) return `exited: ${restored.output}`;
        const c = client();
        c.on('error', () => undefined);
        try {
          await c.connect();
          const rec = await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
          if (rec.rows[0]?.r !== false) return undefined;
          return (await c.query<{ id: number }>('SELECT id FROM backup_rows ORDER BY id')).rows.map(
            (x) => x.id,
          );
        } catch {
          return undefined;
        } finally {
          await c.end().catch(() => undefined);
        }
      },
      300_000,
      1000,
    );
    expect(result).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
  }, 600_000);
});
