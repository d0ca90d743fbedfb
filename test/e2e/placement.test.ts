// Where the members of a replicated data set run, and a node lost under them (issue 34), on
// kind's three workers in three zones: the sample app with 2 shards x (primary + 2 replicas,
// synchronous) and a cache of a master, 2 replicas and 3 Sentinels. First, every shard's
// members, the cache's Redis pods and its Sentinels each on nodes of their own (a ScheduleAnyway
// spread once put two of a shard's three members on one node). Then the node under a shard
// primary stopped (`docker stop`: its kubelet, containerd and every pod gone at once): a
// replica takes the writes with none acknowledged lost, the app says Degraded, the web tier
// keeps answering from the other nodes; the node started again: the old primary rejoins as a
// replica, every member streaming, the app Ready, no human involved. Times are recorded,
// never asserted on.
import { describe, expect, it } from 'vitest';
import { run } from '../../devcluster/exec.ts';
import { seconds, useSampleApp } from './support/app.ts';
import { OPERATOR_NAMESPACE } from './support/cluster.ts';
import {
  appConditions,
  cloneWebPod,
  eventually,
  getJson,
  kubectl,
  podReady,
  pods,
  waitAppReady,
  type Condition,
  type Pod,
} from './support/kube.ts';
import { leader } from './support/operator.ts';
import {
  postgresFrom,
  primaryOf as primaries,
  requestSwitchover,
  type WriterResult,
} from './support/postgres.ts';
import { startTraffic, type TrafficResult } from './support/traffic.ts';
import { record } from './support/results.ts';

const SHARDS = 2;
/** A primary and two replicas per shard, and a cache master with two replicas: one a node. */
const MEMBERS = 3;
const app = useSampleApp({
  namespace: 'e2e-placement',
  tiers: {
    database: {
      shards: SHARDS,
      replicasPerShard: MEMBERS - 1,
      synchronous: true,
      shardKey: 'user_id',
    },
    cache: { memory: '64Mi', replicas: MEMBERS - 1 },
  },
});
const { namespace: NS, name: APP } = app;
const { sql, startWriter } = postgresFrom(NS, app.client);
const shardSelector = (shard: number) => `scalable.dev/cluster=${APP}-db-${shard}`;

/** Each replicated set of the app, by the selector of its pods. */
const SETS: readonly { name: string; selector: string }[] = [
  ...Array.from({ length: SHARDS }, (_, shard) => ({
    name: `shard ${shard}`,
    selector: shardSelector(shard),
  })),
  ...['cache', 'cache-sentinel'].map((component) => ({
    name: component,
    selector: `scalable.dev/app=${APP},scalable.dev/tier=cache,app.kubernetes.io/component=${component}`,
  })),
];

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

const rowCount = async (host: string, table: string, pod: string): Promise<number> => {
  const [row] = (await sql(host, `SELECT count(*)::int AS n FROM ${table}`, pod)) as {
    n: number;
  }[];
  return row?.n ?? 0;
};

/** At least `n` rows, retried while the Service still sends connections to a dead primary. */
const rowsAtLeast = (host: string, table: string, n: number, pod: string): Promise<number> =>
  eventually(
    `${n} rows in ${table} through ${host}`,
    async () => {
      const got = await rowCount(host, table, pod);
      return got >= n ? got : undefined;
    },
    240_000,
    500,
  );

/** Of `ids`, those `host`'s table does not hold. */
async function missing(host: string, table: string, ids: readonly number[], pod: string) {
  const [row] = (await sql(
    host,
    `SELECT coalesce(array_agg(id), '{}') AS ids FROM ${table}`,
    pod,
  )) as { ids: number[] }[];
  const held = new Set(row?.ids ?? []);
  return ids.filter((id) => !held.has(id));
}

const nodeOf = async (ns: string, pod: string): Promise<string> =>
  (await getJson<Pod>(['get', 'pod', pod, '-n', ns])).spec.nodeName ?? '';

/** Ready, Degraded and the tier conditions that are not plain True, as one line. */
const said = (conditions: readonly Condition[]): string =>
  conditions
    .filter(
      (c) =>
        ['Ready', 'Degraded'].includes(c.type) ||
        c.status !== 'True' ||
        /Degraded/.test(c.reason ?? ''),
    )
    .map((c) => `${c.type}=${c.status} (${c.reason}: ${c.message})`)
    .join('; ');

/**
 * Every member of `set` scheduled and Ready. The app's Ready=True needs a primary per shard,
 * not every member (DatabaseReady says ReplicasDegraded meanwhile); a run saw the local-path
 * helper pod of one volume fail to start and the provisioner retry a minute later.
 */
const membersReady = (set: { name: string; selector: string }): Promise<Pod[]> =>
  eventually(
    `${set.name}: ${MEMBERS} members scheduled and Ready`,
    async () => {
      const all = await pods(NS, set.selector);
      if (all.length === MEMBERS && all.every((p) => p.spec.nodeName && podReady(p))) return all;
      throw new Error(
        all
          .map(
            (p) =>
              `${p.metadata.name}@${p.spec.nodeName ?? 'unscheduled'}${podReady(p) ? '' : ' (not ready)'}`,
          )
          .join(', '),
      );
    },
    600_000,
    2000,
  );

describe('members of a replicated data set on kind', () => {
  it('placement: each shard’s Postgres members, the cache’s Redis pods and its Sentinels run on nodes of their own', async () => {
    await waitAppReady(NS, APP);
    for (const set of SETS) {
      const members = await membersReady(set);
      const nodes = members.map((p) => `${p.metadata.name}@${p.spec.nodeName ?? ''}`);
      expect(
        new Set(members.map((p) => p.spec.nodeName)).size,
        `${set.name} on distinct nodes: ${nodes.join(', ')}`,
      ).toBe(MEMBERS);
    }
  });

  it('node loss: the node under a shard primary stopped (docker stop) -> a replica takes the writes, none acknowledged lost, the app says Degraded, the web keeps answering; started again -> the old primary rejoins as a replica and the app is whole', async () => {
    await waitAppReady(NS, APP);
    for (const set of SETS) await membersReady(set);
    // The operator leader, the writer and the web client stay on a node that keeps running:
    // the case is of the data plane (losing the operator leader is issue 34's item 4).
    const opLeader = await eventually('an operator leader', leader, 120_000, 1000);
    const safeNode = await nodeOf(OPERATOR_NAMESPACE, opLeader);
    const pick = async () => {
      for (let shard = 0; shard < SHARDS; shard++) {
        const [p] = await primaries(NS, APP, shard);
        if (p && p.spec.nodeName && p.spec.nodeName !== safeNode) return { shard, pod: p };
      }
      return undefined;
    };
    let target = await pick();
    if (!target) {
      // Every primary on the leader's node: move shard 0's to a replica (on another node, as
      // members now are) through Patroni's DCS, as a rollout's switchover does.
      const [p] = await primaries(NS, APP, 0);
      const replica = (await pods(NS, shardSelector(0))).find(
        (x) => x.metadata.name !== p?.metadata.name && x.spec.nodeName !== safeNode,
      );
      if (!p || !replica) throw new Error('shard 0 has no primary and replica');
      await requestSwitchover(NS, APP, 0, p.metadata.name, replica.metadata.name);
      target = await eventually('shard 0 primary moved off the leader node', pick, 120_000, 1000);
      await waitAppReady(NS, APP);
    }
    const { shard, pod: old } = target;
    const node = old.spec.nodeName ?? '';
    const host = `${APP}-db-${shard}.${NS}.svc`;
    const table = 'e2e_node_loss';
    const CLIENT = 'shop-node-loss-client';
    await cloneWebPod(NS, APP, CLIENT, { 'scalable.dev/app': APP }, { nodeName: safeNode });
    await sql(
      host,
      `DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (id int PRIMARY KEY)`,
      CLIENT,
    );
    const web = await startTraffic(NS, CLIENT, `http://${APP}-web.${NS}.svc/healthz`, 200);
    const writer = await startWriter(host, table, CLIENT);
    let result: WriterResult | undefined;
    let stoppedAt = 0;
    let startedAt = 0;
    let promoted: Pod | undefined;
    let degraded = '';
    let running = true;
    try {
      await rowsAtLeast(host, table, 200, CLIENT);
      stoppedAt = Date.now();
      await run('docker', ['stop', node]);
      running = false;
      record({
        name: 'node loss: docker stop of the node',
        value: seconds(Date.now() - stoppedAt),
      });
      promoted = await eventually(
        `a replica of shard ${shard} labelled primary`,
        async () =>
          (await primaries(NS, APP, shard)).find(
            (x) => x.metadata.name !== old.metadata.name && x.spec.nodeName !== node,
          ),
        300_000,
        250,
      );
      const promotedAt = Date.now();
      record({
        name: 'node loss: node under the primary stopped -> replica labelled primary',
        value: seconds(promotedAt - stoppedAt),
        note: `${old.metadata.name} on ${node} -> ${promoted.metadata.name}`,
      });
      // The dust settles: 200 more writes acknowledged by the new primary.
      const now = await rowsAtLeast(host, table, 0, CLIENT);
      await rowsAtLeast(host, table, now + 200, CLIENT);
      // Honest: the app says it runs short (Degraded, or not Ready) while the node is away.
      degraded = await eventually(
        'the app saying Degraded or not Ready while the node is stopped',
        async () => {
          const conditions = await appConditions(NS, APP);
          const d = conditions.find((c) => c.type === 'Degraded');
          const r = conditions.find((c) => c.type === 'Ready');
          if (d?.status === 'True' || r?.status === 'False') return said(conditions);
          throw new Error(said(conditions));
        },
        300_000,
        2000,
      );
      console.log(`[e2e] node loss: while ${node} is stopped the app says: ${degraded}`);
      // The web tier answers from the other nodes: a request answered after the promotion.
      expect(await web.answeredAfter(promotedAt), 'web answers with the node stopped').toBe(true);
    } finally {
      result = await writer.stop().catch(() => undefined);
      if (!running) {
        startedAt = Date.now();
        await run('docker', ['start', node]);
      }
    }
    expect(result, 'the writer ran').toBeDefined();
    const acked = result?.acked ?? [];
    record({
      name: 'node loss: node stopped -> first acknowledged write on the new primary',
      value: seconds((result?.gap.to ?? 0) - stoppedAt),
      note: `longest pause ${seconds(result?.gap.ms ?? 0)} s, ${result?.failures ?? 0} failed attempts, ${acked.length} acknowledged`,
    });
    expect(acked.length, 'acknowledged writes').toBeGreaterThanOrEqual(400);
    // Synchronous: every acknowledged id is on the new primary.
    expect(
      await sql(
        host,
        'SELECT host(inet_server_addr()) AS ip, pg_is_in_recovery() AS standby',
        CLIENT,
      ),
      `${host} reaches the new primary ${promoted?.metadata.name}`,
    ).toEqual([{ ip: promoted?.status.podIP, standby: false }]);
    expect(await missing(host, table, acked, CLIENT), 'acknowledged ids lost').toEqual([]);
    expect(degraded, 'what the app said with the node stopped').toMatch(
      /Degraded=True|Ready=False/,
    );

    // The node back: the kubelet up again, the old primary a streaming replica of the new one.
    await eventually(
      `node ${node} Ready again`,
      async () => {
        const n = await getJson<{ status: { conditions: Condition[] } }>(['get', 'node', node]);
        const ready = n.status.conditions.find((c) => c.type === 'Ready');
        if (ready?.status === 'True') return true;
        throw new Error(`Ready ${ready?.status} (${ready?.reason}: ${ready?.message})`);
      },
      300_000,
      2000,
    );
    record({
      name: 'node loss: docker start -> node Ready',
      value: seconds(Date.now() - startedAt),
    });
    const members = await eventually(
      `shard ${shard}: ${old.metadata.name} back as a streaming replica, every member Ready`,
      async () => {
        const all = await pods(NS, shardSelector(shard));
        const back = all.find((p) => p.metadata.name === old.metadata.name);
        const replicas = all.filter((p) => roleOf(p) === 'replica');
        if (
          all.length === MEMBERS &&
          all.every(podReady) &&
          all.filter((p) => roleOf(p) === 'master').length === 1 &&
          replicas.length === MEMBERS - 1 &&
          replicas.every(streaming) &&
          back &&
          roleOf(back) === 'replica'
        )
          return all;
        throw new Error(
          all
            .map(
              (p) =>
                `${p.metadata.name}@${p.spec.nodeName}: ${roleOf(p) ?? 'no role'}, ${podReady(p) ? 'ready' : 'not ready'}${streaming(p) ? ', streaming' : ''}`,
            )
            .join('; '),
        );
      },
      600_000,
      2000,
    );
    record({
      name: 'node loss: docker start -> old primary a streaming replica, every member Ready',
      value: seconds(Date.now() - startedAt),
    });
    // The old primary holds every acknowledged id (read on it, through its own name).
    const oldHost = `${old.metadata.name}.${APP}-db-${shard}-hl.${NS}.svc`;
    await eventually(`every acknowledged id on ${old.metadata.name}`, async () =>
      (await missing(oldHost, table, acked, CLIENT)).length === 0 ? true : undefined,
    );
    expect(
      await sql(oldHost, 'SELECT pg_is_in_recovery() AS standby', CLIENT),
      `${old.metadata.name} a standby`,
    ).toEqual([{ standby: true }]);
    await waitAppReady(NS, APP);
    // The stopped node's other pods (another shard's member, a Sentinel) come back in their
    // own time: wait for the app to be whole, not only Ready.
    await eventually(
      'the app Ready and not Degraded',
      async () => {
        const whole = await appConditions(NS, APP);
        if (whole.find((c) => c.type === 'Degraded')?.status === 'False') return true;
        throw new Error(said(whole));
      },
      600_000,
      2000,
    );
    record({
      name: 'node loss: docker start -> the app Ready and not Degraded',
      value: seconds(Date.now() - startedAt),
    });
    // Every replicated set back on nodes of its own.
    for (const set of SETS) {
      const back = (await pods(NS, set.selector)).filter(podReady);
      expect(new Set(back.map((p) => p.spec.nodeName)).size, set.name).toBe(MEMBERS);
    }
    const traffic: TrafficResult = await web.stop();
    record({
      name: 'node loss: web requests through the stop and the start',
      value: traffic.failed,
      unit: 'failed',
      note: `${traffic.ok} answered; first failures ${traffic.failures
        .slice(0, 5)
        .map((f) => `${seconds(f.at - stoppedAt)} s ${f.what}`)
        .join(', ')}`,
    });
    expect(traffic.lastOk, 'web answered after the node started again').toBeGreaterThan(startedAt);
    console.log(
      `[e2e] node loss: shard ${shard} after: ${members.map((p) => `${p.metadata.name}@${p.spec.nodeName} ${roleOf(p) ?? '-'}`).join(', ')}`,
    );
    await kubectl(['delete', 'pod', CLIENT, '-n', NS, '--wait=false']);
  });
});
