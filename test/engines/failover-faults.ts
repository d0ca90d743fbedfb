// Faults and witnesses for the failover scenarios (patroni-failover.test.ts), on the engine
// harness's real Patroni and Postgres:
// - killPatroni: kill -9 of a member's Patroni alone (the stall, SIGSTOP of Patroni alone, is
//   the harness's pauseMember / resumeMember); killPostgres: kill -9 of its Postgres alone;
// - Writers: one writer per member, each committing single-row INSERTs with ids from one
//   counter and recording every acknowledged id with the server's clock at the INSERT;
// - the canceller: what an impatient app or a pooler's query timeout does to commits that
//   wait for the synchronous standby (Postgres then reports the commit done, with a warning:
//   "canceling wait for synchronous replication ... committed locally");
// - settled(): the shard after the dust settles (one primary that takes writes, every other
//   member a streaming replica), and what of the acknowledged ids it lacks.
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { eventually, isPatroni, running, sql, superuserClientConfig } from './patroni-harness.ts';
import type { Harness, Member } from './patroni-harness.ts';

/**
 * kill -9 of a member's Patroni alone (its postmaster, fence.py and the container stay): a
 * Patroni that crashed. Returns the pids it signalled.
 */
export function killPatroni(m: Member): number[] {
  const pids = m.container?.signalWhere(isPatroni, 'SIGKILL') ?? [];
  if (pids.length === 0) throw new Error(`${m.name}: no Patroni process`);
  return pids;
}

/** The postmaster (`.../bin/postgres -D ...`) or one of its children (`postgres: ...`). */
const isPostgres = (argv: readonly string[]): boolean =>
  /(^|\/)postgres$|^postgres: /.test(argv[0] ?? '');

/**
 * kill -9 of a member's Postgres alone, the postmaster and every child at once (Patroni,
 * fence.py and the container stay): a crash of Postgres under a live Patroni. Returns the
 * pids it signalled.
 */
export function killPostgres(m: Member): number[] {
  const pids = m.container?.signalWhere(isPostgres, 'SIGKILL') ?? [];
  if (pids.length === 0) throw new Error(`${m.name}: no Postgres process`);
  return pids;
}

export interface Ack {
  readonly member: string;
  readonly id: number;
  /** The server's clock when the INSERT ran (ms): all members share this host's clock. */
  readonly at: number;
  /** This process's clock when the acknowledgement arrived (performance.now()). */
  readonly ackedAt: number;
}

export const WRITES_TABLE = 'w';

/** Creates the table the writers use, on the current primary. */
export async function createWritesTable(primary: Member): Promise<void> {
  await sql(
    primary.pgPort,
    `CREATE TABLE IF NOT EXISTS ${WRITES_TABLE} (id bigint PRIMARY KEY, member text NOT NULL)`,
  );
}

/**
 * One writer per member, all the time: a replica refuses (read-only) and a dead member does
 * not answer, so only what a primary acknowledged is recorded, whoever it is.
 */
export class Writers {
  readonly acks: Ack[] = [];
  private next = 1;
  private on = true;
  private readonly loops: Promise<void>[];

  constructor(members: readonly Member[]) {
    this.loops = members.map((m) => this.loop(m));
  }

  private async loop(m: Member): Promise<void> {
    let client: pg.Client | undefined;
    while (this.on) {
      if (!client) {
        const c = new pg.Client({
          ...superuserClientConfig(m.pgPort),
          connectionTimeoutMillis: 2000,
        });
        c.on('error', () => undefined);
        try {
          await c.connect();
          client = c;
        } catch {
          await c.end().catch(() => undefined);
          await sleep(200);
          continue;
        }
      }
      const id = this.next++;
      try {
        const r = await client.query<{ at: number }>(
          `INSERT INTO ${WRITES_TABLE} (id, member) VALUES ($1, $2) RETURNING (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS at`,
          [id, m.name],
        );
        this.acks.push({
          member: m.name,
          id,
          at: Number(r.rows[0]?.at),
          ackedAt: performance.now(),
        });
      } catch (err) {
        // A replica's refusal keeps the connection; anything else drops it.
        if (!/read-only/.test(String(err))) {
          await client.end().catch(() => undefined);
          client = undefined;
        }
        await sleep(100);
      }
    }
    await client?.end().catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.on = false;
    await Promise.all(this.loops);
  }

  /** The longest time without an acknowledged write between `from` and `to` (performance.now()). */
  longestGapMs(from: number, to: number): number {
    const times = this.acks.map((a) => a.ackedAt).filter((t) => t >= from && t <= to);
    let gap = 0;
    let last = from;
    for (const t of [...times].sort((a, b) => a - b)) {
      gap = Math.max(gap, t - last);
      last = t;
    }
    return Math.max(gap, to - last);
  }
}

/**
 * Members that accepted writes at the same time: pairs whose first-to-last acknowledged
 * INSERTs (server clock) overlap. Empty when every acknowledged write of one member comes
 * before every one of the next (no failback in these scenarios).
 */
export function overlappingPrimaries(acks: readonly Ack[]): string[] {
  const span = new Map<string, { first: number; last: number }>();
  for (const a of acks) {
    const s = span.get(a.member);
    span.set(a.member, {
      first: Math.min(s?.first ?? a.at, a.at),
      last: Math.max(s?.last ?? a.at, a.at),
    });
  }
  const spans = [...span.entries()];
  const out: string[] = [];
  for (const [i, [a, sa]] of spans.entries())
    for (const [b, sb] of spans.slice(i + 1))
      if (sa.first <= sb.last && sb.first <= sa.last)
        out.push(
          `${a} [${sa.first.toFixed(0)}, ${sa.last.toFixed(0)}] and ${b} [${sb.first.toFixed(0)}, ${sb.last.toFixed(0)}]`,
        );
  return out;
}

/**
 * Cancels every commit waiting for the synchronous standby, on every member that answers,
 * every 200 ms: such a commit is then reported done to its client.
 */
export function startCanceller(h: Harness): { cancelled: () => number; stop: () => Promise<void> } {
  let on = true;
  let n = 0;
  const loop = (async () => {
    while (on) {
      await Promise.all(
        h.members.filter(running).map(async (m) => {
          try {
            const rows = await sql<{ ok: boolean }>(
              m.pgPort,
              "SELECT pg_cancel_backend(pid) AS ok FROM pg_stat_activity WHERE wait_event = 'SyncRep'",
            );
            n += rows.filter((r) => r.ok).length;
          } catch {
            // not answering
          }
        }),
      );
      await sleep(200);
    }
  })();
  return {
    cancelled: () => n,
    stop: async () => {
      on = false;
      await loop;
    },
  };
}

/** Whether a member takes a write now (a fresh connection, a probe row outside the ids). */
async function takesWrites(m: Member): Promise<boolean> {
  try {
    await sql(m.pgPort, `INSERT INTO ${WRITES_TABLE} (id, member) VALUES ($1, 'probe')`, [
      -Math.floor(Math.random() * 1e12) - 1,
    ]);
    return true;
  } catch {
    return false;
  }
}

export interface Settled {
  readonly primary: Member;
  /** Acknowledged ids the final primary does not hold. */
  readonly lost: readonly number[];
}

/**
 * After the dust settles: every member running, exactly one pod labelled primary and it
 * takes writes, the others labelled replica and streaming from it. Then the acknowledged ids
 * are looked up on it.
 */
export async function settled(
  h: Harness,
  acks: readonly Ack[],
  timeoutMs = 180_000,
): Promise<Settled> {
  const primary = await eventually(
    'one primary taking writes, every other member a streaming replica',
    async () => {
      if (!h.members.every(running)) return undefined;
      const p = h.primaryOf(0);
      if (!p || !(await takesWrites(p))) return undefined;
      const streaming = await sql<{ application_name: string }>(
        p.pgPort,
        "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'",
      );
      const others = h.members.filter((m) => m !== p).map((m) => m.name);
      return others.every((n) => streaming.some((r) => r.application_name === n)) ? p : undefined;
    },
    timeoutMs,
    500,
  );
  const ids = acks.map((a) => a.id);
  const held = await sql<{ id: string }>(
    primary.pgPort,
    `SELECT id FROM ${WRITES_TABLE} WHERE id = ANY($1::bigint[])`,
    [ids],
  );
  const have = new Set(held.map((r) => Number(r.id)));
  return { primary, lost: ids.filter((id) => !have.has(id)) };
}

/**
 * The synchronous standbys Patroni has recorded (`<scope>-sync`): only these may be
 * promoted. Patroni records one about 2 s after it set synchronous_standby_names, once the
 * standby confirmed; a primary lost before that has no candidate and waits.
 */
export function syncStandbysOf(h: Harness, shard = 0): string[] {
  const cm = JSON.parse(
    h.kubectl(['-n', h.ns, 'get', 'configmap', `shop-db-${shard}-sync`, '-o', 'json']),
  ) as { metadata: { annotations?: Record<string, string> } };
  return (cm.metadata.annotations?.['sync_standby'] ?? '').split(',').filter((s) => s !== '');
}

export async function syncStandbyRecorded(h: Harness, shard = 0): Promise<string[]> {
  return eventually(
    'a synchronous standby recorded in the sync key',
    async () => {
      try {
        const s = syncStandbysOf(h, shard);
        return s.length > 0 ? s : undefined;
      } catch {
        return undefined; // not created yet
      }
    },
    60_000,
    250,
  );
}
