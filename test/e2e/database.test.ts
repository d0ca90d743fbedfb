// The database tier on kind: Postgres, 2 shards x (primary + 1 synchronous replica) managed by
// Patroni. One primary per shard behind -rw, a replica behind -ro, the shard map; then, with no
// other e2e file's app left on the cluster (their timings would otherwise be someone else's
// load), a primary pod deleted and the node under a primary frozen, every acknowledged write
// kept; last, the app deleted and its volumes kept. Failovers are timed into the results file,
// never asserted on. The app: the sample app with this database.
import { beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../devcluster/exec.ts';
import { quietCluster, seconds, useSampleApp } from './support/app.ts';
import { OPERATOR_NAMESPACE } from './support/cluster.ts';
import {
  apply,
  cloneWebPod,
  eventually,
  getJson,
  kubectl,
  podReady,
  pods,
  waitAppReady,
  type List,
  type Meta,
  type Pod,
} from './support/kube.ts';
import { leader } from './support/operator.ts';
import { postgresFrom, primaryOf as primaries, type WriterResult } from './support/postgres.ts';
import { record } from './support/results.ts';

const app = useSampleApp({
  namespace: 'e2e-database',
  tiers: { database: { shards: 2, replicasPerShard: 1, synchronous: true, shardKey: 'user_id' } },
});
const { namespace: NS, name: APP, client: CLIENT } = app;
const { sql, writeRows } = postgresFrom(NS, CLIENT);
const primaryOf = (shard: number): Promise<Pod[]> => primaries(NS, APP, shard);

describe('the database on kind', () => {
  it('database: Patroni elects one primary per shard; -rw reaches it, -ro a replica; a row written via -rw is read via -ro', async () => {
    // Every tier ready again (a cold run once caught a replica restarting after the first Ready).
    await waitAppReady(NS, APP);
    for (const shard of [0, 1]) {
      const primaries = await eventually(`one primary in shard ${shard}`, async () => {
        const p = await primaryOf(shard);
        return p.length === 1 ? p : undefined;
      });
      expect(primaries).toHaveLength(1);
      const rw = `${APP}-db-${shard}.${NS}.svc`;
      const ro = `${APP}-db-${shard}-ro.${NS}.svc`;
      expect(await sql(rw, 'SELECT pg_is_in_recovery() AS standby')).toEqual([{ standby: false }]);
      expect(await sql(ro, 'SELECT pg_is_in_recovery() AS standby')).toEqual([{ standby: true }]);
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
    // Every bucket maps to a running shard, with no gap or overlap.
    const covered = map.ranges.reduce((n, r) => n + (r.to - r.from), 0);
    expect(covered).toBe(map.buckets);
    for (const r of map.ranges) expect(running).toContain(`${APP}-db-${r.shard}`);
    for (const s of sts.items)
      expect(s.status.readyReplicas, `${s.metadata.name} ready pods`).toBe(2);
  });

  describe('failovers, with no other e2e file on the cluster', () => {
    beforeAll(() => quietCluster([NS]));

    it('database: deleting a primary pod -> the replica is promoted, writes resume, 1,000 acknowledged writes all kept', async () => {
      const host = `${APP}-db-0.${NS}.svc`;
      const [old] = await primaryOf(0);
      if (!old) throw new Error('no primary in shard 0');
      await sql(
        host,
        'DROP TABLE IF EXISTS e2e_writes; CREATE TABLE e2e_writes (id int PRIMARY KEY)',
      );
      // The writer: 1,000 inserts, each retried until acknowledged.
      const writer = writeRows(host, 'e2e_writes', 1000);
      await eventually(
        '200 writes before the primary is deleted',
        async () => {
          const [row] = (await sql(host, 'SELECT count(*)::int AS n FROM e2e_writes')) as {
            n: number;
          }[];
          return (row?.n ?? 0) >= 200 ? true : undefined;
        },
        120_000,
        500,
      );
      const deletedAt = Date.now();
      await kubectl(['delete', 'pod', old.metadata.name, '-n', NS, '--wait=false']);
      const promoted = await eventually(
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
      const result = await writer;
      record({
        name: 'failover: Postgres longest pause between acknowledged writes',
        value: seconds(result.gap.ms),
        note: `${result.failures} failed attempts retried`,
      });
      expect(result.acked).toBe(1000);
      const [count] = (await sql(
        host,
        'SELECT count(*)::int AS n, min(id) AS lo, max(id) AS hi FROM e2e_writes',
      )) as {
        n: number;
        lo: number;
        hi: number;
      }[];
      expect(count, 'rows on the new primary').toEqual({ n: 1000, lo: 1, hi: 1000 });
      // The old primary comes back as a replica of the new one.
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
      expect(
        await sql(`${APP}-db-0-ro.${NS}.svc`, 'SELECT count(*)::int AS n FROM e2e_writes'),
      ).toEqual([{ n: 1000 }]);
    });

    it('database: the node under a primary frozen (docker pause) -> the operator releases its lock and fences its pod, the replica takes the writes, none acknowledged is lost', async () => {
      await waitAppReady(NS, APP);
      const nodeOf = async (ns: string, pod: string) =>
        (await getJson<Pod>(['get', 'pod', pod, '-n', ns])).spec.nodeName ?? '';
      // The operator leader and the writer stay on a node that keeps running.
      const opLeader = await eventually('an operator leader', leader, 120_000, 1000);
      const safeNode = await nodeOf(OPERATOR_NAMESPACE, opLeader);
      const pick = async () => {
        for (const shard of [0, 1]) {
          const [p] = await primaryOf(shard);
          if (p && p.spec.nodeName !== safeNode) return { shard, pod: p };
        }
        return undefined;
      };
      let target = await pick();
      if (!target) {
        // Both primaries share the leader's node: move shard 0's to its replica (elsewhere, as
        // the pods spread over zones) through Patroni's DCS, as a rollout's switchover does.
        const [p] = await primaryOf(0);
        const replica = (await pods(NS, `scalable.dev/cluster=${APP}-db-0`)).find(
          (x) => x.metadata.name !== p?.metadata.name,
        );
        if (!p || !replica) throw new Error('shard 0 has no primary and replica');
        await apply({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: {
            name: `${APP}-db-0-failover`,
            namespace: NS,
            labels: { 'scalable.dev/database': APP, 'scalable.dev/cluster': `${APP}-db-0` },
            annotations: { leader: p.metadata.name, member: replica.metadata.name },
          },
        });
        target = await eventually('shard 0 primary moved off the leader node', pick, 120_000, 1000);
        await waitAppReady(NS, APP);
      }
      const { shard, pod: old } = target;
      const frozenNode = old.spec.nodeName ?? '';
      const host = `${APP}-db-${shard}.${NS}.svc`;
      const WRITER = 'shop-writer';
      await cloneWebPod(NS, APP, WRITER, { 'scalable.dev/app': APP }, { nodeName: safeNode });
      await sql(
        host,
        'DROP TABLE IF EXISTS e2e_freeze; CREATE TABLE e2e_freeze (id int PRIMARY KEY)',
        WRITER,
      );
      // 800 inserts through the primary Service from a node that keeps running; the longest gap
      // between acknowledgements is the outage.
      const writer = writeRows(host, 'e2e_freeze', 800, WRITER);
      await eventually(
        '200 writes before the node is frozen',
        async () => {
          const [row] = (await sql(host, 'SELECT count(*)::int AS n FROM e2e_freeze', WRITER)) as {
            n: number;
          }[];
          return (row?.n ?? 0) >= 200 ? true : undefined;
        },
        120_000,
        500,
      );
      const frozenAt = Date.now();
      await run('docker', ['pause', frozenNode]);
      let result: WriterResult;
      try {
        const promoted = await eventually(
          'the replica labelled primary',
          async () => {
            const p = (await primaryOf(shard)).find((x) => x.metadata.name !== old.metadata.name);
            return p;
          },
          120_000,
          250,
        );
        record({
          name: 'failover: node frozen under the primary -> replica labelled primary',
          value: seconds(Date.now() - frozenAt),
          note: `${old.metadata.name} on ${frozenNode} -> ${promoted.metadata.name}`,
        });
        result = await writer;
      } finally {
        await run('docker', ['unpause', frozenNode]);
      }
      record({
        name: 'failover: node frozen under the primary -> first acknowledged write via the Service',
        value: seconds(result.gap.to - frozenAt),
        note: `longest pause ${seconds(result.gap.ms)} s, ${result.failures} failed attempts retried`,
      });
      expect(result.acked).toBe(800);
      // The operator did it (Patroni's own lease runs 20 s), and told the app's events.
      const reasons = (
        await getJson<List<{ reason: string }>>([
          'get',
          'events',
          '-n',
          NS,
          '--field-selector',
          `involvedObject.name=${APP}`,
        ])
      ).items.map((e) => e.reason);
      expect(reasons).toContain('PrimaryLockReleased');
      expect(reasons).toContain('PrimaryFenced');
      // Every acknowledged row is on the new primary; the old one comes back as its replica.
      // Read from the writer's node: the client pod may sit on the node just thawed, whose
      // Service rules are stale for a moment (a run saw ECONNREFUSED to the ClusterIP there).
      const [count] = (await sql(
        host,
        'SELECT count(*)::int AS n, min(id) AS lo, max(id) AS hi FROM e2e_freeze',
        WRITER,
      )) as { n: number; lo: number; hi: number }[];
      expect(count, 'rows on the new primary').toEqual({ n: 800, lo: 1, hi: 800 });
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
