// The Postgres superuser and pg_rewind (issue 36), with the real programs running the rendered
// configuration (patroni-harness.ts): one asynchronous shard, primary + replica, TLS on.
// pg_hba admits the superuser over the pod's socket only, so its password is no way in from
// the network (loopback and the exporter sidecar included); pg_rewind runs as a role of its
// own, which is no superuser. A former primary that diverged (writes the new primary never
// got) comes back through pg_rewind as that role, on a cluster that lacked the role as one
// bootstrapped by an earlier version does: its next leader's fence.py creates it.
import { readFileSync, readdirSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRIMARY_ROLE, REWIND_USER } from '../../operator/tiers/database/names.ts';
import {
  PASSWORDS,
  TEST_CA,
  eventually,
  postmastersOf,
  sql,
  startDatabase,
  streamingPrimary,
} from './patroni-harness.ts';
import type { Harness, Member } from './patroni-harness.ts';

/** A TCP connection's outcome: the server's answer, or the error that ended it. */
async function tcpLogin(
  m: Member,
  user: string,
  password: string,
  tls: boolean,
): Promise<{ ok: true; client: pg.Client } | { ok: false; error: string }> {
  const c = new pg.Client({
    host: '127.0.0.1',
    port: m.pgPort,
    user,
    password,
    database: 'postgres',
    ssl: tls ? { ca: TEST_CA.cert, servername: 'localhost' } : false,
    connectionTimeoutMillis: 5000,
  });
  c.on('error', () => undefined);
  try {
    await c.connect();
    return { ok: true, client: c };
  } catch (e) {
    await c.end().catch(() => undefined);
    return { ok: false, error: (e as Error).message };
  }
}

/** The replica's walreceiver, a child of its postmaster (`postgres: ...: walreceiver ...`). */
function walreceiverOf(m: Member): number | undefined {
  const postmaster = postmastersOf(m.dataDir)[0];
  if (postmaster === undefined) return undefined;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (ppid === postmaster && /walreceiver/.test(cmd)) return Number(entry);
    } catch {
      // exited meanwhile
    }
  }
  return undefined;
}

const rewindRole = (m: Member) =>
  sql<{ rolcanlogin: boolean; rolsuper: boolean }>(
    m.pgPort,
    'SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = $1',
    [REWIND_USER],
  );

describe('the Postgres superuser and pg_rewind: rendered config, real Patroni and Postgres', () => {
  let h: Harness;
  let primary: Member;
  let replica: Member;

  beforeAll(async () => {
    h = await startDatabase('pg-rewind', { replicasPerShard: 1, failoverSeconds: 20 });
    primary = await streamingPrimary(h);
    replica = h.members.find((m) => m !== primary)!;
    await eventually('the replica ready', async () =>
      (await h.isReady(replica)) ? true : undefined,
    );
  });

  afterAll(async ({}, suite) => {
    await h?.stop(suite);
  });

  it('refuses the superuser over TCP with the right password, and admits it on the socket', async () => {
    for (const m of [primary, replica]) {
      for (const tls of [true, false]) {
        const r = await tcpLogin(m, 'postgres', PASSWORDS.superuser, tls);
        if (r.ok) await r.client.end();
        expect(r.ok ? `${m.name}: the superuser logged in over TCP (tls ${tls})` : r.error).toMatch(
          /pg_hba\.conf rejects connection for host "127\.0\.0\.1", user "postgres"/,
        );
      }
      // The socket (the pod's emptyDir, the tests' host directory) still admits it.
      const [me] = await sql<{ u: string; s: boolean }>(
        m.pgPort,
        'SELECT current_user AS u, rolsuper AS s FROM pg_roles WHERE rolname = current_user',
      );
      expect(me).toEqual({ u: 'postgres', s: true });
    }
  });

  it("gives pg_rewind a role of its own: logs in over TLS, reads pg_rewind's files, nothing more", async () => {
    expect(await rewindRole(primary)).toEqual([{ rolcanlogin: true, rolsuper: false }]);
    const r = await tcpLogin(primary, REWIND_USER, PASSWORDS.rewind, true);
    if (!r.ok) throw new Error(`${REWIND_USER} could not log in: ${r.error}`);
    const c = r.client;
    try {
      // What pg_rewind calls on its source (the PostgreSQL docs' list).
      const files = await c.query<{ f: string }>("SELECT pg_ls_dir('global', false, false) AS f");
      expect(files.rows.map((x) => x.f)).toContain('pg_control');
      await c.query("SELECT pg_stat_file('global/pg_control', false)");
      await c.query("SELECT pg_read_binary_file('global/pg_control', 0, 8, false)");
      // No superuser's powers: other file functions, roles, the server's settings.
      await expect(c.query("SELECT pg_read_file('postgresql.conf')")).rejects.toThrow(
        /permission denied/,
      );
      await expect(c.query('CREATE ROLE intruder SUPERUSER')).rejects.toThrow(/permission denied/);
      await expect(c.query("ALTER SYSTEM SET log_connections = 'on'")).rejects.toThrow(
        /permission denied/,
      );
    } finally {
      await c.end();
    }
  });

  it('brings a diverged former primary back by pg_rewind as that role, on a cluster that lacked it (created by the next leader)', async () => {
    // As on a cluster bootstrapped by an earlier version: no rewind role anywhere.
    await sql(primary.pgPort, `DROP OWNED BY "${REWIND_USER}"; DROP ROLE "${REWIND_USER}"`);
    await sql(primary.pgPort, 'CREATE TABLE t (id int PRIMARY KEY, tag text)');
    await sql(primary.pgPort, "INSERT INTO t VALUES (1, 'before')");
    await eventually(
      'the replica to replay the drop and the first row',
      async () => {
        const [role] = await sql<{ n: string }>(
          replica.pgPort,
          'SELECT count(*) AS n FROM pg_roles WHERE rolname = $1',
          [REWIND_USER],
        );
        const rows = await sql<{ n: string }>(replica.pgPort, 'SELECT count(*) AS n FROM t').catch(
          () => [],
        );
        return role?.n === '0' && rows[0]?.n === '1' ? true : undefined;
      },
      60_000,
      500,
    );

    // Divergence: the replica stops receiving (its walreceiver stopped, its stream ended so
    // nothing is in flight), the primary acknowledges writes alone, then dies.
    const receiver = await eventually('the replica walreceiver', async () =>
      walreceiverOf(replica),
    );
    process.kill(receiver, 'SIGSTOP');
    try {
      await sql(
        primary.pgPort,
        'SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = $1',
        [replica.name],
      );
      await eventually('the stream to end', async () => {
        const [r] = await sql<{ n: string }>(
          primary.pgPort,
          'SELECT count(*) AS n FROM pg_stat_replication',
        );
        return r?.n === '0' ? true : undefined;
      });
      await sql(
        primary.pgPort,
        "INSERT INTO t SELECT i, 'diverged' FROM generate_series(2, 101) i",
      );
      h.killMember(primary);
    } finally {
      process.kill(receiver, 'SIGCONT');
    }

    // The dead primary's pod keeps its label (only its own Patroni changes it): the promoted
    // replica's label and its Postgres out of recovery.
    await eventually(
      'the replica promoted',
      async () => {
        if (h.roleOf(replica.name) !== PRIMARY_ROLE) return undefined;
        const [r] = await sql<{ rec: boolean }>(
          replica.pgPort,
          'SELECT pg_is_in_recovery() AS rec',
        );
        return r?.rec === false ? true : undefined;
      },
      120_000,
      500,
    );
    // Its fence.py made the role as Patroni's bootstrap would have.
    await eventually(
      'the rewind role on the new primary',
      async () => {
        const rows = await rewindRole(replica).catch(() => []);
        return rows.length === 1 ? rows : undefined;
      },
      60_000,
      500,
    );
    expect(await rewindRole(replica)).toEqual([{ rolcanlogin: true, rolsuper: false }]);
    // fence.py says so once it has reaped psql; its log reaches the file a moment later.
    await eventually('fence.py to report the role', async () =>
      readFileSync(replica.log, 'utf8').includes(`fence: rewind role ${REWIND_USER} ready`)
        ? true
        : undefined,
    );
    await sql(replica.pgPort, "INSERT INTO t VALUES (1000, 'after')");

    // The kubelet restarts the old primary's container: it finds its timeline diverged and
    // rewinds from the new primary, logged in as the rewind role (the superuser could not).
    h.startMember(primary);
    await eventually(
      'the old primary streaming from the new one',
      async () => {
        const rows = await sql<{ n: string }>(
          replica.pgPort,
          "SELECT count(*) AS n FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'",
          [primary.name],
        ).catch(() => []);
        return rows[0]?.n === '1' ? true : undefined;
      },
      180_000,
      1000,
    );
    const log = readFileSync(primary.log, 'utf8');
    expect(log).toMatch(new RegExp(`running pg_rewind from [^\\n]*user=${REWIND_USER}`));
    expect(log).toMatch(/pg_rewind exit code=0/);
    // The writes only the old primary had are gone; the new primary's are there.
    const rows = await eventually(
      'the new primary row on the rejoined member',
      async () => {
        const r = await sql<{ tag: string; n: string }>(
          primary.pgPort,
          'SELECT tag, count(*) AS n FROM t GROUP BY tag ORDER BY tag',
        ).catch(() => []);
        return r.some((x) => x.tag === 'after') ? r : undefined;
      },
      60_000,
      500,
    );
    expect(rows).toEqual([
      { tag: 'after', n: '1' },
      { tag: 'before', n: '1' },
    ]);
  }, 600_000);
});
