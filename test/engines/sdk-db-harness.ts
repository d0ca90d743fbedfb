// What a pod has around the database that loopback lacks: the kube-proxy behind each
// Service, and the kubelet's ConfigMap volume. Both are stood in for here, driven by the
// real objects: a proxy forwards each new connection to a pod the Service's EndpointSlices
// list (Patroni's role labels decide which), and the shard map is written into a directory
// the way the kubelet writes ConfigMap volumes (a timestamped dir, an atomic `..data` swap).
import { mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { eventually, sql, superuserClientConfig } from './patroni-harness.ts';
import type { Harness, Member } from './patroni-harness.ts';

export interface ServiceProxy {
  readonly service: string;
  readonly host: string;
  readonly port: number;
  /** Connections accepted so far. */
  connections: number;
}

export interface ServiceProxies {
  add(service: string, host: string, port: number): Promise<ServiceProxy>;
  close(): Promise<void>;
}

/**
 * Loopback stand-ins for the namespace's Services, following their EndpointSlices.
 * `readyOnly`: route only to endpoints not marked unready (a terminating pod, e.g. one the
 * operator fenced), as kube-proxy does.
 */
export function serviceProxies(h: Harness, refreshMs = 300, readyOnly = false): ServiceProxies {
  let endpoints = new Map<string, string[]>();
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  const refresh = () => {
    try {
      const slices = JSON.parse(h.kubectl(['-n', h.ns, 'get', 'endpointslices', '-o', 'json'])) as {
        items: Array<{
          metadata: { labels?: Record<string, string> };
          endpoints?: Array<{ targetRef?: { name: string }; conditions?: { ready?: boolean } }>;
        }>;
      };
      const next = new Map<string, string[]>();
      for (const s of slices.items) {
        const svc = s.metadata.labels?.['kubernetes.io/service-name'];
        if (!svc) continue;
        const pods = (s.endpoints ?? []).flatMap((e) =>
          e.targetRef && !(readyOnly && e.conditions?.ready === false) ? [e.targetRef.name] : [],
        );
        next.set(svc, [...(next.get(svc) ?? []), ...pods]);
      }
      endpoints = next;
    } catch {
      // the API server is busy: keep the last view, as kube-proxy does
    }
  };
  refresh();
  const timer = setInterval(refresh, refreshMs);
  let turn = 0;
  return {
    async add(service, host, port) {
      const proxy: ServiceProxy = { service, host, port, connections: 0 };
      const server = createServer((down) => {
        proxy.connections++;
        sockets.add(down);
        down.on('close', () => sockets.delete(down));
        const pods = endpoints.get(service) ?? [];
        const member = h.members.find((m) => m.name === pods[turn++ % Math.max(1, pods.length)]);
        if (!member) return void down.destroy(); // no endpoints: the connection is refused
        const up = tcpConnect(member.pgPort, '127.0.0.1');
        sockets.add(up);
        up.on('close', () => sockets.delete(up));
        up.on('error', () => down.destroy());
        down.on('error', () => up.destroy());
        up.pipe(down);
        down.pipe(up);
        up.on('close', () => down.destroy());
        down.on('close', () => up.destroy());
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, resolve);
      });
      servers.push(server);
      return proxy;
    },
    async close() {
      clearInterval(timer);
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    },
  };
}

/** Write files into `dir` as the kubelet updates a ConfigMap volume: all at once, atomically. */
export function writeConfigMapVolume(dir: string, files: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  const version = `..${Date.now()}_${Math.random().toString(36).slice(2, 8)}`;
  mkdirSync(join(dir, version));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, version, name), text);
  let old: string | undefined;
  try {
    old = readlinkSync(join(dir, '..data'));
  } catch {
    old = undefined;
  }
  symlinkSync(version, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  for (const name of Object.keys(files)) {
    try {
      symlinkSync(join('..data', name), join(dir, name));
    } catch {
      // the per-key link exists already and follows ..data
    }
  }
  if (old) rmSync(join(dir, old), { recursive: true, force: true });
}

/**
 * sql(), tried again while it fails: on a machine loaded enough, a TLS handshake alone
 * outlasts sql()'s connect timeout. Only for statements that may run twice (reads, and
 * writes that are idempotent).
 */
export async function patientSql<R extends pg.QueryResultRow>(
  port: number,
  text: string,
  params: unknown[] = [],
  database = 'postgres',
): Promise<R[]> {
  const r = await eventually(
    `${text} on ${port}`,
    async () => ({ rows: await sql<R>(port, text, params, database) }),
    120_000,
    500,
  );
  return r.rows;
}

export interface ReplayHold {
  /** The replica whose replay is held. */
  readonly replica: Member;
  /** Whether the replica has replayed WAL up to `lsn` (pg_lsn text). */
  replayed(lsn: string): Promise<boolean>;
  release(): Promise<void>;
}

/**
 * Hold WAL replay on the shard's replica until release(), however slow the machine: a
 * transaction on the replica holds a lock that the next replayed lock record needs, and
 * max_standby_streaming_delay -1 keeps replay waiting for it instead of cancelling that
 * transaction after 30 s. WAL keeps arriving; only replay stops. Every write committed after
 * this returns is absent from the replica until release. (pg_wal_replay_pause() is no good:
 * Patroni resumes a paused replay on its next loop.)
 */
export async function holdReplay(h: Harness, shard: number, database: string): Promise<ReplayHold> {
  const primary = await eventually(`the primary of shard ${shard}`, async () => h.primaryOf(shard));
  const replica = h.members.find((m) => m.shard === shard && m !== primary);
  if (!replica) throw new Error(`shard ${shard} has no replica`);
  const once = <R extends pg.QueryResultRow>(port: number, text: string, params: unknown[] = []) =>
    patientSql<R>(port, text, params, database);
  const onReplica = <R extends pg.QueryResultRow>(text: string, params: unknown[] = []) =>
    once<R>(replica.pgPort, text, params);
  const replayedUpTo = async (lsn: string) =>
    (
      await onReplica<{ ok: boolean }>('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [lsn])
    )[0]?.ok === true;
  const writtenLsn = async () =>
    (await once<{ lsn: string }>(primary.pgPort, 'SELECT pg_current_wal_lsn()::text AS lsn'))[0]!
      .lsn;

  await onReplica('ALTER SYSTEM SET max_standby_streaming_delay = -1');
  await onReplica('SELECT pg_reload_conf()');
  // A new backend sees the setting once the postmaster has reloaded, which signals the
  // startup process in the same step; that process reads the signal before its next record.
  await eventually('the replica to reload', async () =>
    (
      await onReplica<{ d: string }>("SELECT current_setting('max_standby_streaming_delay') AS d")
    )[0]?.d === '-1'
      ? true
      : undefined,
  );
  await once(primary.pgPort, 'CREATE TABLE IF NOT EXISTS replay_gate (x int)');
  const created = await writtenLsn();
  await eventually('the replica to replay the gate', async () =>
    (await replayedUpTo(created)) ? true : undefined,
  );
  const holder = new pg.Client(superuserClientConfig(replica.pgPort, database));
  holder.on('error', () => undefined);
  await holder.connect();
  await holder.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
  await holder.query('SELECT count(*) FROM replay_gate');
  await once(primary.pgPort, 'BEGIN; LOCK TABLE replay_gate IN ACCESS EXCLUSIVE MODE; COMMIT');
  const locked = await writtenLsn();
  // The lock record and what follows it arrive and wait: replay has stopped before them.
  await eventually('replay to wait behind the lock', async () =>
    (
      await onReplica<{ behind: boolean }>(
        `SELECT pg_last_wal_receive_lsn() >= $1::pg_lsn
           AND pg_last_wal_replay_lsn() < $1::pg_lsn AS behind`,
        [locked],
      )
    )[0]?.behind
      ? true
      : undefined,
  );
  return {
    replica,
    replayed: replayedUpTo,
    async release() {
      await holder.end().catch(() => undefined);
      await onReplica('ALTER SYSTEM RESET max_standby_streaming_delay');
      await onReplica('SELECT pg_reload_conf()');
    },
  };
}
