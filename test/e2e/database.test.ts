// The database tier on kind: Postgres, 2 shards x (primary + 1 synchronous replica) managed by
// Patroni. One primary per shard behind -rw, a replica behind -ro, the shard map; then, with no
// other e2e file's app left on the cluster (their timings would otherwise be someone else's
// load), a primary pod deleted, the node under a primary frozen, the node under a primary cut
// off from the API server and its standby (iptables in the node: a partition) and the
// synchronous primary's database container killed (kill -9, E2E_KILL_TRIALS times), every
// acknowledged write kept;
// last, the app deleted and its volumes kept. Failovers are timed into the results file,
// never asserted on. The app: the sample app with this database.
import { beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { run } from '../../devcluster/exec.ts';
import type { StatusDocument } from '../../operator/cli/status/model.ts';
import { ROOT, quietCluster, seconds, useSampleApp } from './support/app.ts';
import { OPERATOR_NAMESPACE } from './support/cluster.ts';
import {
  appConditions,
  cloneWebPod,
  eventually,
  getJson,
  kubeconfig,
  kubectl,
  nodeZones,
  podReady,
  pods,
  waitAppReady,
  type List,
  type Meta,
  type Pod,
} from './support/kube.ts';
import { leader } from './support/operator.ts';
import {
  postgresFrom,
  primaryOf as primaries,
  requestSwitchover,
  WRITER_QUERY_MS,
  WRITER_RETRY_MS,
  type WriterResult,
} from './support/postgres.ts';
import { defaultFailoverSeconds } from '../../operator/api/failover-defaults.ts';
import { releaseAfterSeconds, timingsOf } from '../../operator/tiers/database/lease-break.ts';
import { primaryStartTimeout } from '../../operator/tiers/database/patroni-config.ts';
import { recordForBench } from '../engines/bench-record.ts';
import {
  canConnect,
  cutOff,
  killContainer,
  nodeContainerLog,
  type Cut,
  type Killed,
} from './support/faults.ts';
import { record } from './support/results.ts';

const app = useSampleApp({
  namespace: 'e2e-database',
  tiers: { database: { shards: 2, replicasPerShard: 1, synchronous: true, shardKey: 'user_id' } },
});
const { namespace: NS, name: APP, client: CLIENT } = app;
const { sql, startWriter } = postgresFrom(NS, CLIENT);
const primaryOf = (shard: number): Promise<Pod[]> => primaries(NS, APP, shard);

// The app sets no failoverSeconds: the default of a synchronous shard (death of a primary ->
// a new primary taking writes).
const FAILOVER_MS = defaultFailoverSeconds(true) * 1000;
/** How long kube-proxy may take to send the -rw Service to the new primary's pod. */
const SERVICE_MS = 2000;
/**
 * The longest a writer may go without an acknowledgement: failoverSeconds, plus what the
 * writer adds itself (an attempt in flight when the new primary came up hangs at most its
 * query timeout, then one retry pause), plus the Service following the role label.
 */
const GAP_BOUND_MS = FAILOVER_MS + WRITER_QUERY_MS + WRITER_RETRY_MS + SERVICE_MS;

/**
 * How many times the kill -9 case kills the synchronous primary: once in the suite;
 * `npm run bench:failover-kind` asks for more (5), for a median.
 */
const KILL_TRIALS = Number(process.env['E2E_KILL_TRIALS'] ?? 1);
if (!Number.isInteger(KILL_TRIALS) || KILL_TRIALS < 1)
  throw new Error(
    `E2E_KILL_TRIALS must be a positive integer, not ${process.env['E2E_KILL_TRIALS']}`,
  );

const rowCount = async (host: string, table: string, pod?: string): Promise<number> => {
  const [row] = (await sql(host, `SELECT count(*)::int AS n FROM ${table}`, pod)) as {
    n: number;
  }[];
  return row?.n ?? 0;
};

/** The row count, retried while the Service still sends connections to the old primary. */
const settledCount = (host: string, table: string, pod?: string): Promise<number> =>
  eventually(
    `a row count of ${table} through ${host}`,
    () => rowCount(host, table, pod),
    120_000,
    500,
  );

const rowsAtLeast = (host: string, table: string, n: number, pod?: string): Promise<true> =>
  eventually(
    `${n} rows in ${table}`,
    async () => ((await rowCount(host, table, pod)) >= n ? true : undefined),
    180_000,
    500,
  );

/** Of `ids`, those `host`'s table does not hold. */
async function missing(host: string, table: string, ids: readonly number[], pod?: string) {
  const [row] = (await sql(
    host,
    `SELECT coalesce(array_agg(id), '{}') AS ids FROM ${table}`,
    pod,
  )) as {
    ids: number[];
  }[];
  const held = new Set(row?.ids ?? []);
  return ids.filter((id) => !held.has(id));
}

/**
 * The final primary (the pod `host` reaches is `primary`) holds every id the writer saw
 * acknowledged; its outage stayed within the bound.
 */
async function expectAllAcked(
  host: string,
  table: string,
  result: WriterResult,
  primary: Pod,
  pod?: string,
): Promise<void> {
  expect(
    await sql(host, 'SELECT host(inet_server_addr()) AS ip, pg_is_in_recovery() AS standby', pod),
    `${host} reaches the new primary ${primary.metadata.name}`,
  ).toEqual([{ ip: primary.status.podIP, standby: false }]);
  const lost = await missing(host, table, result.acked, pod);
  expect(lost, `acknowledged ids missing on the final primary (of ${result.acked.length})`).toEqual(
    [],
  );
  expect(result.acked.length, 'acknowledged writes').toBeGreaterThanOrEqual(400);
  expect(
    result.gap.ms,
    `longest pause between acknowledgements (bound ${GAP_BOUND_MS} ms)`,
  ).toBeLessThanOrEqual(GAP_BOUND_MS);
  // Each failed attempt is followed by a retry pause, all inside the outage.
  expect(result.failures, 'failed attempts').toBeLessThanOrEqual(
    Math.ceil(GAP_BOUND_MS / WRITER_RETRY_MS),
  );
}

/** ttl, loop_wait (and retry_timeout) of a shard's Patroni (its dynamic config in <scope>-config). */
async function liveConfig(shard: number): Promise<Record<string, unknown>> {
  const cm = await getJson<{ metadata: { annotations?: Record<string, string> } }>([
    'get',
    'configmap',
    `${APP}-db-${shard}-config`,
    '-n',
    NS,
  ]);
  return JSON.parse(cm.metadata.annotations?.['config'] ?? '{}') as Record<string, unknown>;
}

async function patroniTimings(
  shard: number,
): Promise<{ ttl: number; loop_wait: number; retry_timeout?: number }> {
  const config = (await liveConfig(shard)) as {
    ttl?: number;
    loop_wait?: number;
    retry_timeout?: number;
  };
  if (!config.ttl || !config.loop_wait)
    throw new Error(`no ttl/loop_wait in ${APP}-db-${shard}-config: ${JSON.stringify(config)}`);
  return {
    ttl: config.ttl,
    loop_wait: config.loop_wait,
    ...(config.retry_timeout ? { retry_timeout: config.retry_timeout } : {}),
  };
}

/**
 * The lock holder (<scope>-leader) and when it took the lock (Patroni's acquireTime, epoch ms),
 * and the synchronous standbys (<scope>-sync) of a shard.
 */
async function patroniKeys(shard: number): Promise<{
  leader?: string;
  acquiredAt: number;
  syncLeader?: string;
  syncStandbys: string[];
}> {
  const annotations = async (key: string) =>
    (await getJson<{ metadata: Meta }>(['get', 'configmap', `${APP}-db-${shard}-${key}`, '-n', NS]))
      .metadata.annotations ?? {};
  const lock = await annotations('leader');
  const leader = lock['leader'];
  const sync = await annotations('sync');
  return {
    ...(leader ? { leader } : {}),
    // ISO 8601 with microseconds, as Patroni writes it: Date.parse keeps milliseconds.
    acquiredAt: Date.parse((lock['acquireTime'] ?? '').replace(/(\.\d{3})\d+/, '$1')),
    ...(sync['leader'] ? { syncLeader: sync['leader'] } : {}),
    syncStandbys: (sync['sync_standby'] ?? '')
      .split(',')
      .map((n) => n.trim())
      .filter((n) => n !== ''),
  };
}

const roleOf = (p: Pod): string | undefined => p.metadata.labels?.['scalable.dev/role'];

/** Patroni's member status on the pod (its `status` annotation): streaming from a primary. */
function streaming(p: Pod): boolean {
  try {
    const status = JSON.parse(p.metadata.annotations?.['status'] ?? '{}') as {
      replication_state?: string;
    };
    return status.replication_state === 'streaming';
  } catch {
    return false;
  }
}

/**
 * The shard as a failover needs it: the app Ready; the lock holder's pod Ready and labelled
 * primary; the other member Ready, labelled replica, streaming (Patroni's member status) and
 * recorded as the holder's synchronous standby in <scope>-sync.
 */
async function healthyShard(shard: number): Promise<{ primary: Pod; standby: Pod }> {
  await waitAppReady(NS, APP);
  return eventually(
    `shard ${shard}: a primary holding the lock and a streaming synchronous standby`,
    async () => {
      const members = await pods(NS, `scalable.dev/cluster=${APP}-db-${shard}`);
      const keys = await patroniKeys(shard);
      const primary = members.find((p) => p.metadata.name === keys.leader);
      const standby = members.find((p) => p.metadata.name !== keys.leader);
      if (
        members.length === 2 &&
        primary &&
        standby &&
        podReady(primary) &&
        roleOf(primary) === 'master' &&
        podReady(standby) &&
        roleOf(standby) === 'replica' &&
        streaming(standby) &&
        keys.syncLeader === keys.leader &&
        keys.syncStandbys.includes(standby.metadata.name)
      )
        return { primary, standby };
      throw new Error(
        `lock ${keys.leader ?? 'free'}; sync ${keys.syncLeader ?? '-'} -> [${keys.syncStandbys.join(', ')}]; ` +
          members
            .map(
              (p) =>
                `${p.metadata.name}: ${roleOf(p) ?? 'no role'}, ${podReady(p) ? 'ready' : 'not ready'}${streaming(p) ? ', streaming' : ''}`,
            )
            .join('; '),
      );
    },
    300_000,
    1000,
  );
}

/**
 * A shard whose primary runs on another node than the operator leader, that primary, and the
 * leader's node: a case that faults the primary's node keeps the operator leader (and its
 * writer) on a node that keeps running. When both primaries share the leader's node, shard 0's
 * moves to its replica (elsewhere, as the pods spread over zones) through Patroni's DCS, as a
 * rollout's switchover does.
 */
async function primaryAwayFromLeader(): Promise<{ shard: number; pod: Pod; safeNode: string }> {
  await waitAppReady(NS, APP);
  const opLeader = await eventually('an operator leader', leader, 120_000, 1000);
  const safeNode =
    (await getJson<Pod>(['get', 'pod', opLeader, '-n', OPERATOR_NAMESPACE])).spec.nodeName ?? '';
  const pick = async () => {
    for (const shard of [0, 1]) {
      const [p] = await primaryOf(shard);
      if (p && p.spec.nodeName !== safeNode) return { shard, pod: p, safeNode };
    }
    return undefined;
  };
  const target = await pick();
  if (target) return target;
  const [p] = await primaryOf(0);
  const replica = (await pods(NS, `scalable.dev/cluster=${APP}-db-0`)).find(
    (x) => x.metadata.name !== p?.metadata.name,
  );
  if (!p || !replica) throw new Error('shard 0 has no primary and replica');
  await requestSwitchover(NS, APP, 0, p.metadata.name, replica.metadata.name);
  const moved = await eventually('shard 0 primary moved off the leader node', pick, 120_000, 1000);
  await waitAppReady(NS, APP);
  return moved;
}

/**
 * Where a node reaches the API server: the kubernetes Service's VIP and port (pods, and
 * host-network pods with the in-cluster config), and the control plane's addresses with the
 * API server's own port (the kubelet and kube-proxy dial the control plane by name, which
 * docker's DNS may answer with either address family).
 */
async function apiServerEndpoints(): Promise<{ address: string; port: number }[]> {
  const svc = await getJson<{ spec: { clusterIP: string; ports: { port: number }[] } }>([
    'get',
    'service',
    'kubernetes',
    '-n',
    'default',
  ]);
  const slices = await getJson<
    List<{ endpoints?: { addresses: string[] }[]; ports?: { port?: number }[] }>
  >(['get', 'endpointslices', '-n', 'default', '-l', 'kubernetes.io/service-name=kubernetes']);
  const port = slices.items[0]?.ports?.[0]?.port;
  const planes = await getJson<List<{ metadata: Meta }>>([
    'get',
    'nodes',
    '-l',
    'node-role.kubernetes.io/control-plane',
  ]);
  const addresses = new Set(
    slices.items.flatMap((s) => (s.endpoints ?? []).flatMap((e) => e.addresses)),
  );
  for (const n of planes.items) {
    const { stdout } = await run('docker', [
      'inspect',
      '--format',
      '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.GlobalIPv6Address}} {{end}}',
      n.metadata.name,
    ]);
    for (const a of stdout.split(/\s+/).filter(Boolean)) addresses.add(a);
  }
  if (!port || addresses.size === 0)
    throw new Error(`no API server endpoint found (port ${port}, ${[...addresses].join(', ')})`);
  return [
    ...svc.spec.ports.map((p) => ({ address: svc.spec.clusterIP, port: p.port })),
    ...[...addresses].map((address) => ({ address, port })),
  ];
}

/**
 * The lines of a database pod's log (Patroni and fence.py) since `since` that tell a
 * failover's story, repeats dropped: printed for the reader, never asserted on.
 */
async function failoverLog(pod: string, since: number): Promise<string[]> {
  const text = await kubectl([
    'logs',
    '-n',
    NS,
    pod,
    '-c',
    'postgres',
    '--timestamps',
    `--since-time=${new Date(since).toISOString()}`,
  ]).catch((err: unknown) => `(no log: ${String(err).split('\n')[0]})`);
  const message = (line: string) =>
    line.replace(/^\S+\s+/, '').replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ /, '');
  const lines: string[] = [];
  let previous = '';
  for (const line of text.split('\n')) {
    if (
      !/lock|leader|promot|demot|fence|crash|start|follow|recover|acquir|releas|no log/i.test(line)
    )
      continue;
    if (message(line) !== previous) lines.push(line);
    previous = message(line);
  }
  return lines.slice(0, 40);
}

interface AppEvent {
  reason: string;
  message: string;
  firstTimestamp: string;
  involvedObject: { kind: string; name: string; uid?: string };
}

/** Events on this ScalableApp (this uid) that name `pod`, from the second `since` falls in. */
async function appEvents(pod: string, since: number): Promise<AppEvent[]> {
  const uid = (await getJson<{ metadata: Meta }>(['get', 'scalableapp', APP, '-n', NS])).metadata
    .uid;
  const all = await getJson<List<AppEvent>>([
    'get',
    'events',
    '-n',
    NS,
    '--field-selector',
    `involvedObject.name=${APP},involvedObject.kind=ScalableApp`,
  ]);
  const from = Math.floor(since / 1000) * 1000;
  return all.items.filter(
    (e) =>
      (e.involvedObject.uid === undefined || e.involvedObject.uid === uid) &&
      new RegExp(`\\b${pod}\\b`).test(e.message) &&
      Date.parse(e.firstTimestamp) >= from,
  );
}

describe('the database on kind', () => {
  it('database: Patroni elects one primary per shard; -rw reaches it, -ro a replica; a row written via -rw is read via -ro', async () => {
    // Every tier ready again (a cold run once caught a replica restarting after the first Ready).
    await waitAppReady(NS, APP);
    for (const shard of [0, 1]) {
      const [primary] = await eventually(`one primary in shard ${shard}`, async () => {
        const p = await primaryOf(shard);
        return p.length === 1 ? p : undefined;
      });
      // The pod labelled primary is the one -rw reaches, and it is not in recovery; -ro
      // reaches the shard's other pod, a standby.
      const members = (await pods(NS, `scalable.dev/cluster=${APP}-db-${shard}`)).filter(podReady);
      const replica = members.find((p) => p.metadata.name !== primary?.metadata.name);
      expect(members.length, `ready pods of shard ${shard}`).toBe(2);
      const rw = `${APP}-db-${shard}.${NS}.svc`;
      const ro = `${APP}-db-${shard}-ro.${NS}.svc`;
      const where = 'SELECT host(inet_server_addr()) AS ip, pg_is_in_recovery() AS standby';
      expect(await sql(rw, where), `${rw}: the primary ${primary?.metadata.name}`).toEqual([
        { ip: primary?.status.podIP, standby: false },
      ]);
      expect(await sql(ro, where), `${ro}: the replica ${replica?.metadata.name}`).toEqual([
        { ip: replica?.status.podIP, standby: true },
      ]);
      const marker = `shard-${shard}-${Date.now()}`;
      await sql(
        rw,
        `CREATE TABLE IF NOT EXISTS e2e_rw (v text); INSERT INTO e2e_rw VALUES ('${marker}')`,
      );
      await eventually(`the row written through ${rw} on ${ro}`, async () => {
        const rows = await sql(ro, `SELECT count(*)::int AS n FROM e2e_rw WHERE v = '${marker}'`);
        return JSON.stringify(rows) === '[{"n":1}]' ? true : undefined;
      });
    }
  });

  it('database: the shard map matches the running shards', async () => {
    const cm = await getJson<{ data: Record<string, string> }>([
      'get',
      'configmap',
      `${APP}-shard-map`,
      '-n',
      NS,
    ]);
    const map = JSON.parse(cm.data['shard-map.json'] ?? '{}') as {
      shards: { index: number; primary: string; replicas: string }[];
      ranges: { from: number; to: number; shard: number }[];
      buckets: number;
    };
    const sts = await getJson<
      List<{ metadata: { name: string }; status: { readyReplicas?: number } }>
    >([
      'get',
      'statefulsets',
      '-n',
      NS,
      '-l',
      `scalable.dev/app=${APP},scalable.dev/tier=database`,
    ]);
    const running = sts.items.map((s) => s.metadata.name).sort();
    expect(map.shards.map((s) => `${APP}-db-${s.index}`).sort()).toEqual(running);
    for (const s of map.shards) {
      expect(s.primary).toBe(`${APP}-db-${s.index}.${NS}.svc`);
      expect(s.replicas).toBe(`${APP}-db-${s.index}-ro.${NS}.svc`);
    }
    // Every bucket 0..1023 (the contract's 1024, sdk/src/contract/hash.ts) in exactly one
    // range: ranges in order, each non-empty, each starting where the previous ended, from 0
    // to 1024; each range's shard one of the map's (so a running StatefulSet), and every
    // shard owning buckets (2 shards from the start: none waits for a resharding).
    expect(map.buckets, 'buckets').toBe(1024);
    const sorted = [...map.ranges].sort((a, b) => a.from - b.from);
    expect(map.ranges, 'ranges in bucket order').toEqual(sorted);
    let next = 0;
    for (const r of sorted) {
      expect(r.from, `range ${JSON.stringify(r)} starts where the previous ended`).toBe(next);
      expect(r.to, `range ${JSON.stringify(r)} is not empty`).toBeGreaterThan(r.from);
      expect(
        map.shards.map((s) => s.index),
        `shard of ${JSON.stringify(r)}`,
      ).toContain(r.shard);
      next = r.to;
    }
    expect(next, 'end of the last range').toBe(1024);
    expect(new Set(sorted.map((r) => r.shard)), 'shards owning buckets').toEqual(
      new Set(map.shards.map((s) => s.index)),
    );
    for (const s of sts.items)
      expect(s.status.readyReplicas, `${s.metadata.name} ready pods`).toBe(2);
  });

  it("cli: `scalable status` names each shard's lock holder and its -sync standby, every pod's zone; `diagram` draws them; `switchover` hands shard 1 to its standby", async () => {
    const cli = (...args: string[]) =>
      run(process.execPath, [join(ROOT, 'bin', 'scalable.js'), ...args, '-n', NS], {
        env: { ...process.env, KUBECONFIG: kubeconfig(), NO_COLOR: '1' },
      });
    const before = [await healthyShard(0), await healthyShard(1)];
    const doc = JSON.parse((await cli('status', APP, '-o', 'json')).stdout) as StatusDocument;
    const zones = await nodeZones();
    const shards = doc.tiers.find((t) => t.tier === 'database')?.groups ?? [];
    for (const [index, { primary, standby }] of before.entries()) {
      const group = shards.find((g) => g.shard?.index === index);
      // What Patroni says (the lock and the -sync key), read from the cluster by the test.
      expect(group?.shard, `shard ${index}`).toEqual({
        index,
        primary: primary.metadata.name,
        syncStandbys: [standby.metadata.name],
      });
      expect(
        Object.fromEntries((group?.pods ?? []).map((p) => [p.name, [p.role, p.zone, p.ready]])),
      ).toEqual({
        [primary.metadata.name]: ['primary', zones.get(primary.spec.nodeName ?? ''), true],
        [standby.metadata.name]: ['sync-standby', zones.get(standby.spec.nodeName ?? ''), true],
      });
    }
    expect(doc.ready).toBe('True');
    const diagram = (await cli('diagram', APP)).stdout;
    expect(diagram).toMatch(/^flowchart/m);
    for (const { primary, standby } of before) {
      expect(diagram).toContain(primary.metadata.name);
      expect(diagram).toContain(standby.metadata.name);
    }

    const { primary: from, standby: to } = before[1]!;
    const moved = JSON.parse(
      (await cli('switchover', APP, '--shard', '1', '-o', 'json', '--timeout', '300')).stdout,
    ) as { outcome: string; from: string; to: string; primary: string; seconds: number };
    expect(moved).toMatchObject({
      outcome: 'done',
      from: from.metadata.name,
      to: to.metadata.name,
      primary: to.metadata.name,
    });
    record({
      name: 'case: scalable switchover (shard 1, to its sync standby)',
      value: moved.seconds,
    });
    // The world agrees: the standby holds the lock, the old primary is its streaming standby.
    const after = await healthyShard(1);
    expect([after.primary.metadata.name, after.standby.metadata.name]).toEqual([
      to.metadata.name,
      from.metadata.name,
    ]);
  });

  describe('failovers, with no other e2e file on the cluster', () => {
    beforeAll(() => quietCluster([NS]));

    it('database: deleting a primary pod -> the replica is promoted; a writer running through it finds every acknowledged write on the new primary, its outage within failoverSeconds', async () => {
      const host = `${APP}-db-0.${NS}.svc`;
      const [old] = await primaryOf(0);
      if (!old) throw new Error('no primary in shard 0');
      await sql(
        host,
        'DROP TABLE IF EXISTS e2e_writes; CREATE TABLE e2e_writes (id int PRIMARY KEY)',
      );
      const writer = await startWriter(host, 'e2e_writes');
      let result: WriterResult;
      let promoted: Pod;
      let deletedAt = 0;
      try {
        await rowsAtLeast(host, 'e2e_writes', 200);
        deletedAt = Date.now();
        await kubectl(['delete', 'pod', old.metadata.name, '-n', NS, '--wait=false']);
        promoted = await eventually(
          `a new primary in shard 0 (not ${old.metadata.name})`,
          async () => {
            const [p] = await primaryOf(0);
            return p && p.metadata.name !== old.metadata.name ? p : undefined;
          },
          180_000,
          250,
        );
        record({
          name: 'failover: Postgres primary deleted -> replica promoted',
          value: seconds(Date.now() - deletedAt),
          note: `${old.metadata.name} -> ${promoted.metadata.name}`,
        });
        // The dust settles: 200 more writes acknowledged by the new primary.
        await rowsAtLeast(host, 'e2e_writes', (await settledCount(host, 'e2e_writes')) + 200);
      } finally {
        result = await writer.stop();
      }
      record({
        name: 'failover: Postgres longest pause between acknowledged writes',
        value: seconds(result.gap.ms),
        note: `${result.failures} failed attempts, ${result.acked.length} acknowledged`,
      });
      await expectAllAcked(host, 'e2e_writes', result, promoted);
      // The old primary comes back as a replica of the new one, with every acknowledged row.
      await eventually(
        'shard 0 back to a primary and a streaming replica',
        async () => {
          const all = (await pods(NS, `scalable.dev/cluster=${APP}-db-0`)).filter(podReady);
          const roles = all.map((p) => p.metadata.labels?.['scalable.dev/role']).sort();
          return JSON.stringify(roles) === '["master","replica"]' ? true : undefined;
        },
        300_000,
        2000,
      );
      const ro = `${APP}-db-0-ro.${NS}.svc`;
      await eventually('every acknowledged row on the replica', async () =>
        (await missing(ro, 'e2e_writes', result.acked)).length === 0 ? true : undefined,
      );
    });

    it("database: the node under a primary frozen (docker pause) -> the operator releases its lock before Patroni's lease would, fences its pod, the replica takes the writes, none acknowledged is lost", async () => {
      // The operator leader and the writer stay on a node that keeps running.
      const { shard, pod: old, safeNode } = await primaryAwayFromLeader();
      const frozenNode = old.spec.nodeName ?? '';
      const host = `${APP}-db-${shard}.${NS}.svc`;
      // Patroni's own lease, as the shard runs it: without the operator, the replica could take
      // the lock only once the frozen primary's last renewal (at most loop_wait before the
      // freeze) is ttl old.
      const patroni = await patroniTimings(shard);
      const WRITER = 'shop-writer';
      await cloneWebPod(NS, APP, WRITER, { 'scalable.dev/app': APP }, { nodeName: safeNode });
      await sql(
        host,
        'DROP TABLE IF EXISTS e2e_freeze; CREATE TABLE e2e_freeze (id int PRIMARY KEY)',
        WRITER,
      );
      // Inserts through the primary Service from a node that keeps running, through the freeze.
      const writer = await startWriter(host, 'e2e_freeze', WRITER);
      let result: WriterResult;
      let promoted: Pod;
      let promotedAt = 0;
      let frozenAt = 0;
      try {
        await rowsAtLeast(host, 'e2e_freeze', 200, WRITER);
        frozenAt = Date.now();
        await run('docker', ['pause', frozenNode]);
        try {
          promoted = await eventually(
            'the replica labelled primary',
            async () => (await primaryOf(shard)).find((x) => x.metadata.name !== old.metadata.name),
            120_000,
            250,
          );
          promotedAt = Date.now();
          record({
            name: 'failover: node frozen under the primary -> replica labelled primary',
            value: seconds(promotedAt - frozenAt),
            note: `${old.metadata.name} on ${frozenNode} -> ${promoted.metadata.name}`,
          });
          // The dust settles: 200 more writes acknowledged by the new primary.
          await rowsAtLeast(
            host,
            'e2e_freeze',
            (await settledCount(host, 'e2e_freeze', WRITER)) + 200,
            WRITER,
          );
        } finally {
          await run('docker', ['unpause', frozenNode]);
        }
      } finally {
        result = await writer.stop();
      }
      record({
        name: 'failover: node frozen under the primary -> first acknowledged write via the Service',
        value: seconds(result.gap.to - frozenAt),
        note: `longest pause ${seconds(result.gap.ms)} s, ${result.failures} failed attempts, ${result.acked.length} acknowledged`,
      });
      // Read from the writer's node: the client pod may sit on the node just thawed, whose
      // Service rules are stale for a moment (a run saw ECONNREFUSED to the ClusterIP there).
      await expectAllAcked(host, 'e2e_freeze', result, promoted, WRITER);
      // The operator did it, not Patroni's lease: the replica was labelled primary, and the
      // operator released the frozen primary's lock, before that lease could have run out.
      const patroniAlone = frozenAt + (patroni.ttl - patroni.loop_wait) * 1000;
      expect(
        promotedAt,
        `replica labelled primary (${seconds(promotedAt - frozenAt)} s after the freeze) before Patroni's lease (ttl ${patroni.ttl} s) could end`,
      ).toBeLessThan(patroniAlone);
      // This case's events: on this app, naming the frozen pod, recorded after the freeze
      // (timestamps are whole seconds: a release at second t happened before t + 1).
      const events = await eventually(
        'the PrimaryLockReleased and PrimaryFenced events of the frozen primary',
        async () => {
          const mine = await appEvents(old.metadata.name, frozenAt);
          const released = mine.find((e) => e.reason === 'PrimaryLockReleased');
          const fenced = mine.find((e) => e.reason === 'PrimaryFenced');
          if (released && fenced) return { released, fenced };
          throw new Error(
            `events of ${old.metadata.name} since the freeze: ${mine.map((e) => e.reason).join(', ') || 'none'}`,
          );
        },
        120_000,
        2000,
      );
      expect(
        Date.parse(events.released.firstTimestamp) + 1000,
        `lock released (${events.released.firstTimestamp}) before Patroni's lease could end (${new Date(patroniAlone).toISOString()})`,
      ).toBeLessThan(patroniAlone);
      await eventually(
        `shard ${shard} back to a primary and a streaming replica`,
        async () => {
          const all = (await pods(NS, `scalable.dev/cluster=${APP}-db-${shard}`)).filter(podReady);
          const roles = all.map((p) => p.metadata.labels?.['scalable.dev/role']).sort();
          return JSON.stringify(roles) === '["master","replica"]' ? true : undefined;
        },
        300_000,
        2000,
      );
      await kubectl(['delete', 'pod', WRITER, '-n', NS, '--wait=false']);
      await waitAppReady(NS, APP);
    });

    it("database: partition: the primary's node cut off from the API server and from its standby (iptables in the node) -> the primary stops taking writes (failsafe_mode finds no member), the standby takes the lock; writers on the cut node and on another lose no acknowledged write, and the old primary acknowledges none after the new one took the lock; healed -> the old primary rejoins as a replica, the app whole", async () => {
      const { shard, pod: picked, safeNode } = await primaryAwayFromLeader();
      const { primary: old, standby } = await healthyShard(shard);
      const cutNode = old.spec.nodeName ?? '';
      const oldIp = old.status.podIP ?? '';
      const newIp = standby.status.podIP ?? '';
      if (old.metadata.name !== picked.metadata.name || cutNode === safeNode || !oldIp || !newIp)
        throw new Error(
          `shard ${shard} moved while picked: ${picked.metadata.name} -> ${old.metadata.name}@${cutNode}`,
        );
      if (standby.spec.nodeName === cutNode)
        throw new Error(`${old.metadata.name} and ${standby.metadata.name} share ${cutNode}`);
      const host = `${APP}-db-${shard}.${NS}.svc`;
      const oldHost = `${old.metadata.name}.${APP}-db-${shard}-hl.${NS}.svc`;
      // One writer on the cut node itself (its Service rules go stale with the cut: it keeps
      // reaching the old primary), one on the operator leader's node, which keeps running.
      const writers = [
        { name: 'cut node', pod: 'shop-cut-local', node: cutNode, table: 'e2e_cut_local' },
        { name: 'other node', pod: 'shop-cut-remote', node: safeNode, table: 'e2e_cut_remote' },
      ] as const;
      const [local, remote] = writers;
      for (const w of writers)
        await cloneWebPod(NS, APP, w.pod, { 'scalable.dev/app': APP }, { nodeName: w.node });
      await sql(
        host,
        writers
          .map(
            (w) => `DROP TABLE IF EXISTS ${w.table}; CREATE TABLE ${w.table} (id int PRIMARY KEY)`,
          )
          .join('; '),
        remote.pod,
      );
      const api = await apiServerEndpoints();
      const running = await Promise.all(writers.map((w) => startWriter(host, w.table, w.pod)));
      const results: (WriterResult | undefined)[] = [];
      let cut: Cut | undefined;
      let healError: unknown;
      let healedAt = 0;
      let taken = { holder: '', acquiredAt: NaN, seenAt: 0 };
      let story: string[] = [];
      try {
        try {
          for (const w of writers) await rowsAtLeast(host, w.table, 200, remote.pod);
          cut = await cutOff(cutNode, { services: api, pairs: [[oldIp, newIp]] });
          console.log(
            `[e2e] partition: ${cutNode} (${old.metadata.name}, ${oldIp}) cut off from ${api.map((a) => `${a.address}:${a.port}`).join(', ')} and from ${standby.metadata.name} (${newIp})`,
          );
          const v4 = api.find((a) => !a.address.includes(':') && a.port !== 443) ?? api[0];
          expect(
            v4 && (await canConnect(cutNode, v4.address, v4.port)),
            `${cutNode} still reaches the API server at ${v4?.address}:${v4?.port}`,
          ).toBe(false);
          taken = await eventually(
            `${standby.metadata.name} holding shard ${shard}'s lock`,
            async () => {
              const lock = await patroniKeys(shard);
              if (lock.leader === standby.metadata.name)
                return { holder: lock.leader, acquiredAt: lock.acquiredAt, seenAt: Date.now() };
              throw new Error(`lock ${lock.leader ?? 'free'}`);
            },
            180_000,
            250,
          );
          record({
            name: 'partition: primary node cut off -> the standby holds the lock',
            value: seconds(taken.acquiredAt - cut.at),
            note: `${old.metadata.name} on ${cutNode} -> ${standby.metadata.name} (acquireTime)`,
          });
          // The dust settles on the other node: 200 more writes there, on the new primary.
          await rowsAtLeast(
            host,
            remote.table,
            (await settledCount(host, remote.table, remote.pod)) + 200,
            remote.pod,
          );
          // What Patroni and the fence did, from the node's own log (no API server there).
          story = (
            await nodeContainerLog(cutNode, NS, old.metadata.name, 'postgres', cut.at - 2000)
          ).split('\n');
        } finally {
          if (cut) await cut.heal().catch((err: unknown) => (healError = err));
          healedAt = Date.now();
        }
        if (healError) throw healError;
        // Healed: the cut node's writer reaches the new primary again (its node's Service
        // rules catch up, the fenced old pod goes): 100 more of its writes there.
        await rowsAtLeast(
          host,
          local.table,
          (await settledCount(host, local.table, remote.pod)) + 100,
          remote.pod,
        );
      } finally {
        for (const w of running) results.push(await w.stop().catch(() => undefined));
      }
      // Patroni's loop line of a healthy leader repeats every loop_wait: the rest tells it.
      const message = (l: string | undefined) => (l ?? '').replace(/^\S+\s+/, '');
      const told = story.filter(
        (l, k) =>
          /demot|failsafe|fence|killed|DCS|lock|leader|promot|shut|stop/i.test(l) &&
          !/no action/.test(l) &&
          message(l) !== message(story[k - 1]),
      );
      console.log(
        `[e2e] partition: ${old.metadata.name}'s log on ${cutNode} from the cut:\n  ${told.slice(0, 40).join('\n  ')}`,
      );
      console.log(
        `[e2e] partition: events naming ${old.metadata.name}: ${(await appEvents(old.metadata.name, cut?.at ?? 0)).map((e) => `${e.reason}: ${e.message}`).join(' | ') || 'none'}`,
      );
      // Through the other node's -rw: the standby is the primary now.
      expect(
        await sql(
          host,
          'SELECT host(inet_server_addr()) AS ip, pg_is_in_recovery() AS standby',
          remote.pod,
        ),
        `${host} reaches the new primary ${standby.metadata.name}`,
      ).toEqual([{ ip: newIp, standby: false }]);
      const cutAt = cut?.at ?? 0;
      let lastByOld = 0;
      let firstByNew = Infinity;
      for (const [i, w] of writers.entries()) {
        const r = results[i];
        expect(r, `the ${w.name} writer ran`).toBeDefined();
        if (!r) continue;
        const lost = await missing(host, w.table, r.acked, remote.pod);
        const servers = Object.entries(r.servers)
          .map(
            ([ip, s]) =>
              `${ip === oldIp ? 'old' : ip === newIp ? 'new' : ip}: ${s.count} (last ${seconds(s.last - cutAt)} s)`,
          )
          .join(', ');
        record({
          name: `partition: ${w.name} writer, cut -> first acknowledged write after the longest pause`,
          value: seconds(r.gap.to - cutAt),
          note: `longest pause ${seconds(r.gap.ms)} s (from ${seconds(r.gap.from - cutAt)} s), healed at ${seconds(healedAt - cutAt)} s, ${r.failures} failed attempts, ${r.acked.length} acknowledged, ${lost.length} lost; by server ${servers}`,
        });
        expect(
          lost,
          `${w.name} writer: acknowledged ids missing on the final primary (of ${r.acked.length})`,
        ).toEqual([]);
        expect(
          Object.keys(r.servers).filter((ip) => ip !== oldIp && ip !== newIp),
          `${w.name} writer: acknowledged by another server than ${oldIp} (old) or ${newIp} (new)`,
        ).toEqual([]);
        expect(
          r.servers[newIp]?.count ?? 0,
          `${w.name} writer: acknowledged by the new primary`,
        ).toBeGreaterThanOrEqual(100);
        lastByOld = Math.max(lastByOld, r.servers[oldIp]?.last ?? 0);
        firstByNew = Math.min(firstByNew, r.servers[newIp]?.first ?? Infinity);
      }
      // One primary accepting writes at any time: nothing acknowledged by the old primary once
      // the standby held the lock (its acquireTime, written by Patroni in the standby's pod;
      // every kind node reads the host's clock), and the new one took none before it.
      expect(
        lastByOld,
        `the old primary's last acknowledgement (${seconds(lastByOld - cutAt)} s after the cut) before ${standby.metadata.name} took the lock (${seconds(taken.acquiredAt - cutAt)} s)`,
      ).toBeLessThan(taken.acquiredAt);
      expect(
        firstByNew,
        'the new primary’s first acknowledgement after it took the lock',
      ).toBeGreaterThanOrEqual(taken.acquiredAt);
      expect(
        story.some((l) => /Demoting self|killed the postmaster/i.test(l)),
        `${old.metadata.name} demoted itself or was fenced in its pod (its log above)`,
      ).toBe(true);

      // Healed: the old primary back as the synchronous standby of the new one, streaming,
      // with every acknowledged id; the app whole.
      const { primary: final, standby: rejoined } = await healthyShard(shard);
      expect(final.metadata.name, `shard ${shard}'s primary after the heal`).toBe(
        standby.metadata.name,
      );
      expect(rejoined.metadata.name, 'the rejoined standby').toBe(old.metadata.name);
      record({
        name: 'partition: healed -> the old primary a streaming synchronous standby',
        value: seconds(Date.now() - healedAt),
      });
      for (const [i, w] of writers.entries())
        await eventually(
          `every acknowledged id of the ${w.name} writer on ${old.metadata.name}`,
          async () =>
            (await missing(oldHost, w.table, results[i]?.acked ?? [], remote.pod)).length === 0
              ? true
              : undefined,
        );
      await eventually(
        'the app Ready and not Degraded',
        async () => {
          const conditions = await appConditions(NS, APP);
          if (
            conditions.find((c) => c.type === 'Ready')?.status === 'True' &&
            conditions.find((c) => c.type === 'Degraded')?.status === 'False'
          )
            return true;
          throw new Error(
            conditions
              .filter((c) => ['Ready', 'Degraded'].includes(c.type) || c.status !== 'True')
              .map((c) => `${c.type}=${c.status} (${c.reason}: ${c.message})`)
              .join('; '),
          );
        },
        600_000,
        2000,
      );
      record({
        name: 'partition: healed -> the app Ready and not Degraded',
        value: seconds(Date.now() - healedAt),
      });
      for (const w of writers) await kubectl(['delete', 'pod', w.pod, '-n', NS, '--wait=false']);
    }, 900_000);

    it(
      'database: kill -9 of the synchronous primary (every process of its database container, on its node) -> the synchronous standby is the new primary, a writer running through it finds every acknowledged write there, its outage within failoverSeconds; the shard back to a primary and a streaming synchronous standby',
      async () => {
        const shard = 0;
        const host = `${APP}-db-${shard}.${NS}.svc`;
        const failoverSeconds = FAILOVER_MS / 1000;
        // The shard runs the default of a synchronous shard, as Patroni has it: what the
        // figure is of.
        const live = await patroniTimings(shard);
        const want = timingsOf(failoverSeconds);
        expect(live, `the live timings of ${APP}-db-${shard}`).toEqual(want);
        // A crashed synchronous primary fails over rather than restart in place.
        const startTimeout = (await liveConfig(shard))['primary_start_timeout'];
        expect(startTimeout, `primary_start_timeout of ${APP}-db-${shard}`).toBe(
          primaryStartTimeout(true),
        );
        // Versions and settings for the bench (npm run bench:failover-kind).
        const { primary: first } = await healthyShard(shard);
        const nodeName = first.spec.nodeName ?? '';
        const node = await getJson<{
          status: { nodeInfo: { kubeletVersion: string; containerRuntimeVersion: string } };
        }>(['get', 'node', nodeName]);
        const [pg] = (await sql(host, "SELECT current_setting('server_version') AS v")) as {
          v: string;
        }[];
        recordForBench('e2e-kill-settings', {
          failoverSeconds,
          ttl: live.ttl,
          loop_wait: live.loop_wait,
          retry_timeout: live.retry_timeout ?? NaN,
          primary_start_timeout: Number(startTimeout),
          releaseAfterSeconds: releaseAfterSeconds({ synchronous: true, failoverSeconds }) ?? NaN,
          gapBoundSeconds: seconds(GAP_BOUND_MS),
          patroni: (
            await kubectl([
              'exec',
              '-n',
              NS,
              first.metadata.name,
              '-c',
              'postgres',
              '--',
              'patroni',
              '--version',
            ])
          ).trim(),
          postgres: pg?.v ?? '?',
          kubelet: node.status.nodeInfo.kubeletVersion,
          containerRuntime: node.status.nodeInfo.containerRuntimeVersion,
          nodeImage: (
            await run('docker', ['inspect', '--format', '{{.Config.Image}}', nodeName])
          ).stdout.trim(),
        });
        for (let trial = 1; trial <= KILL_TRIALS; trial++) {
          // Each kill on a healthy shard: a synchronous standby streaming, recorded in -sync.
          const { primary: old, standby } = await healthyShard(shard);
          const table = `e2e_kill_${trial}`;
          await sql(
            host,
            `DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (id int PRIMARY KEY)`,
          );
          const writer = await startWriter(host, table);
          let result: WriterResult;
          let killed: Killed;
          let killedAt = 0;
          try {
            await rowsAtLeast(host, table, 200);
            killedAt = Date.now();
            killed = await killContainer(NS, old.metadata.name, 'postgres');
            // The dust settles: 200 more writes acknowledged after the kill.
            await rowsAtLeast(host, table, (await settledCount(host, table)) + 200);
          } finally {
            result = await writer.stop();
          }
          // The shard heals: one primary holding the lock, the other member streaming from it
          // as its synchronous standby (the killed one restarted by the kubelet, or its pod
          // fenced and created again). A synchronous shard fails over rather than restart its
          // primary in place (primary_start_timeout 0): the restarted Patroni, if it still
          // holds the lock, hands it to the standby.
          const { primary: final } = await healthyShard(shard);
          const lost = await missing(host, table, result.acked);
          const after = (await pods(NS, `scalable.dev/cluster=${APP}-db-${shard}`)).find(
            (p) => p.metadata.name === old.metadata.name,
          );
          const events = (await appEvents(old.metadata.name, killedAt)).map((e) => e.reason);
          // Patroni's line when a restarted primary hands its lock over (ha.py, recover()).
          const handedOver = (await failoverLog(old.metadata.name, killedAt)).some((l) =>
            l.includes('Primary crashed. Failing over.'),
          );
          const how =
            final.metadata.name === old.metadata.name
              ? 'the killed primary restarted in place'
              : final.metadata.name !== standby.metadata.name
                ? 'another member promoted'
                : handedOver
                  ? 'failover, the lock handed over by the restarted primary'
                  : events.includes('PrimaryLockReleased')
                    ? `failover, lock released by the operator${after?.metadata.uid !== old.metadata.uid ? ', the killed pod fenced' : ''}`
                    : 'failover on Patroni’s lease';
          record({
            name: 'failover: kill -9 of the synchronous primary -> first acknowledged write on the new primary',
            value: seconds(result.gap.to - killedAt),
            note: `trial ${trial}/${KILL_TRIALS}: ${old.metadata.name} -> ${final.metadata.name} (${how}); longest pause ${seconds(result.gap.ms)} s, ${result.failures} failed attempts, ${result.acked.length} acknowledged, ${lost.length} lost`,
          });
          recordForBench('e2e-kill-trial', {
            trial,
            firstWriteSeconds: seconds(result.gap.to - killedAt),
            longestPauseSeconds: seconds(result.gap.ms),
            failures: result.failures,
            acked: result.acked.length,
            lost: lost.length,
            killed: old.metadata.name,
            primaryAfter: final.metadata.name,
            how,
            events: events.join(' '),
          });
          console.log(
            `[e2e] trial ${trial}: operator events naming ${old.metadata.name}: ${events.join(', ') || 'none'}`,
          );
          for (const pod of [old.metadata.name, standby.metadata.name])
            console.log(
              `[e2e] trial ${trial}, ${pod} since the kill (${new Date(killedAt).toISOString()}):\n  ${(await failoverLog(pod, killedAt)).join('\n  ')}`,
            );
          // The fault was a kill -9 (exit 128 + SIGKILL), and the longest pause is its outage.
          expect(killed.exitCode, `exit code of ${old.metadata.name}'s killed container`).toBe(137);
          expect(
            result.gap.fromSent,
            'the write acknowledged before the longest pause was sent before the kill returned',
          ).toBeLessThanOrEqual(killed.doneAt);
          expect(result.gap.to, 'and ended after it').toBeGreaterThan(killed.doneAt);
          expect(
            final.metadata.name,
            `the primary after the kill of ${old.metadata.name} (${how})`,
          ).toBe(standby.metadata.name);
          await expectAllAcked(host, table, result, final);
        }
      },
      Math.max(900_000, KILL_TRIALS * 600_000),
    );
  });

  it('operator: deleting the ScalableApp removes its objects and keeps the database volumes (Retain)', async () => {
    const pvcsBefore = (await getJson<List<{ metadata: Meta }>>(['get', 'pvc', '-n', NS])).items
      .map((p) => p.metadata.name)
      .filter((n) => n.startsWith(`data-${APP}-db-`));
    expect(pvcsBefore.length, 'database PVCs (2 shards x 2 pods)').toBe(4);
    await kubectl(['delete', 'scalableapp', APP, '-n', NS, '--timeout=300s']);
    await eventually(
      'no workloads, Services or ConfigMaps of the app left',
      async () => {
        const left = (
          await kubectl([
            'get',
            'deployments,statefulsets,services,configmaps,hpa,networkpolicies',
            '-n',
            NS,
            '-l',
            `scalable.dev/app=${APP}`,
            '-o',
            'name',
          ])
        ).trim();
        if (left === '') return true;
        throw new Error(`still there: ${left.split('\n').join(', ')}`);
      },
      300_000,
      2000,
    );
    const pvcsAfter = await getJson<List<{ metadata: Meta; status: { phase?: string } }>>([
      'get',
      'pvc',
      '-n',
      NS,
    ]);
    for (const name of pvcsBefore) {
      const pvc = pvcsAfter.items.find((p) => p.metadata.name === name);
      expect(pvc?.status.phase, `PVC ${name} after the app is deleted`).toBe('Bound');
    }
  });
});
