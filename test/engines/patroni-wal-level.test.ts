// wal_level logical and failover slots on a shard bootstrapped by an earlier operator with
// wal_level replica (issue 27: a bucket move streams from the source by logical
// replication). The engine harness, real Patroni + Postgres 17 from our image: the new
// StatefulSet (its pod template records the restart-only parameters) rolls the shard as any
// rollout does, replicas first, then a switchover, while a writer writes all along. Then a
// failover slot, as a move's subscription creates it, is synchronized to the standbys and
// is still there on the primary after a switchover (Patroni leaves it alone).
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RESTART_ANNOTATION } from '../../operator/tiers/database/statefulset.ts';
import { appDatabaseName } from '../../operator/tiers/database/names.ts';
import { dropStraySlotsSql, straySlotsSql } from '../../operator/tiers/database/resharding-sql.ts';
import type { ClusterAccess } from '../../operator/tiers/tier.ts';
import type { K8sObject } from '../../operator/tiers/shared/chart.ts';
import { eventually, sql, startDatabase } from './patroni-harness.ts';
import type { Harness, Member } from './patroni-harness.ts';
import { operatorAccess, startKubelet } from './patroni-kubelet.ts';
import type { Kubelet } from './patroni-kubelet.ts';
import { restartRollout, settled, switchTo } from './patroni-rollout-scenarios.ts';

type Json = Record<string, unknown>;

/** patroni.yml as the operator rendered it before: wal_level replica, no slot sync. */
function replicaLevelYml(text: string): string {
  const config = yaml.load(text) as { bootstrap: { dcs: Json } };
  const dcs = config.bootstrap.dcs;
  const params = (dcs['postgresql'] as { parameters: Json }).parameters;
  params['wal_level'] = 'replica';
  delete params['sync_replication_slots'];
  delete dcs['ignore_slots'];
  return yaml.dump(config, { lineWidth: -1, noRefs: true });
}

/** The StatefulSet as rendered before: its pod template without the restart annotation. */
function withoutRestartAnnotation(objects: K8sObject[]): K8sObject[] {
  return objects.map((o) => {
    if (o.kind !== 'StatefulSet') return o;
    const copy = structuredClone(o) as K8sObject & {
      spec: { template: { metadata: { annotations?: Record<string, string> } } };
    };
    delete copy.spec.template.metadata.annotations?.[RESTART_ANNOTATION];
    return copy;
  });
}

const walLevels = (h: Harness) =>
  Promise.all(
    h.members.map(async (m) => {
      const [row] = await sql<{ w: string; pending: string }>(
        m.pgPort,
        "SELECT current_setting('wal_level') AS w," +
          ' (SELECT count(*) FROM pg_settings WHERE pending_restart) AS pending',
      );
      return `${m.name} ${row?.w} pending=${row?.pending}`;
    }),
  );

/** Named as a move's slot is (resharding-sql.ts slotName), so straySlotsSql finds its copies. */
const SLOT = 'scalable_move_probe';

describe('wal_level logical on a shard bootstrapped with replica: a rolling restart, then failover slots', () => {
  let h: Harness;
  let kubelet: Kubelet;
  let cluster: ClusterAccess;
  let database: string;
  const numbers: Record<string, unknown> = {};

  beforeAll(async () => {
    h = await startDatabase('pg-wal', { replicasPerShard: 2, synchronous: true }, [], {
      rendered: { patroniYml: replicaLevelYml, objects: withoutRestartAnnotation },
    });
    await settled(h);
    cluster = await operatorAccess(h);
    kubelet = startKubelet(h);
    database = appDatabaseName(h.app);
  });

  afterAll(async ({}, suite) => {
    await kubelet?.stop();
    await h?.stop(suite);
    console.log(`[patroni-wal-level] measured: ${JSON.stringify(numbers)}`);
  });

  it('rolls every member to wal_level logical, replicas first then one switchover: no write lost', async () => {
    expect(await walLevels(h)).toEqual(h.members.map((m) => `${m.name} replica pending=0`));
    const out = await restartRollout(h, cluster);
    numbers['rollout'] = {
      ...out,
      writes: out.writes.map((w) => `${w.action} ${w.kind} ${w.name}`),
      heldWrites: out.heldWrites.map((w) => `${w.action} ${w.kind} ${w.name}`),
    };
    // Before Patroni's config had wal_level logical, the step deleted no pod.
    expect(out.heldWrites).toEqual([]);
    expect(out.configWrites).toEqual(['Updated ConfigMap shop-db-0-config']);
    const deleted = out.writes.filter((w) => w.kind === 'Pod').map((w) => w.name);
    expect(new Set(deleted).size).toBe(3);
    expect(out.writes.map((w) => w.kind)).toEqual(['Pod', 'Pod', 'ConfigMap', 'Pod']);
    const [oldPrimary] = out.primaries;
    // The old primary went last, once it no longer was one: never restarted in place.
    expect(out.writes[3]?.name).toBe(oldPrimary);
    expect(out.guarded.slice(0, 2).map((g) => g.primaries)).toEqual([[oldPrimary], [oldPrimary]]);
    expect(out.guarded[2]?.primaries).not.toContain(oldPrimary);
    expect(out.promotions).toBe(1);
    expect(out.acked).toBeGreaterThan(0);
    expect(out.lost).toBe(0);
    await eventually(
      'every member on wal_level logical, nothing pending a restart',
      async () => {
        const levels = await walLevels(h).catch(() => []);
        return levels.join() === h.members.map((m) => `${m.name} logical pending=0`).join()
          ? true
          : undefined;
      },
      60_000,
      1000,
    );
  }, 600_000);

  it('a failover slot reaches every standby and survives a switchover', async () => {
    const primary = await settled(h);
    await sql(
      primary.pgPort,
      "SELECT pg_create_logical_replication_slot($1, 'pgoutput', false, false, true)",
      [SLOT],
      database,
    );
    const standbys = h.members.filter((m) => m !== primary);
    // The slot sync worker persists a slot once the primary's has moved past the standby's
    // position: move it on, as a subscriber confirming would.
    await eventually(
      `${SLOT} synchronized (persistent) on every standby`,
      async () => {
        await sql(
          primary.pgPort,
          'SELECT pg_replication_slot_advance($1, pg_current_wal_lsn())',
          [SLOT],
          database,
        ).catch(() => undefined);
        const synced = await Promise.all(
          standbys.map((m: Member) =>
            sql<{ n: string }>(
              m.pgPort,
              'SELECT count(*) AS n FROM pg_replication_slots' +
                ' WHERE slot_name = $1 AND synced AND NOT temporary AND failover',
              [SLOT],
            ).catch(() => [{ n: '0' }]),
          ),
        );
        return synced.every((r) => r[0]?.n === '1') ? true : undefined;
      },
      180_000,
      1000,
    );
    // The switchover goes to the synchronous standby, once Patroni names one (right after
    // the rollout its -sync key may still be empty: switchTo would then ask for no member).
    const target = await eventually('a synchronous standby named in shop-db-0-sync', async () => {
      const sync = JSON.parse(
        h.kubectl(['-n', h.ns, 'get', 'configmap', 'shop-db-0-sync', '-o', 'json']),
      ) as { metadata: { annotations?: Record<string, string> } };
      const named = (sync.metadata.annotations?.['sync_standby'] ?? '').split(',');
      return standbys.find((m) => named.includes(m.name));
    });
    await switchTo(h, target);
    // The new primary (a former standby) has the slot, usable: not invalidated; and the
    // primary Patroni runs keeps it (a slot Patroni does not manage and no one uses it
    // would be dropped on its loop: ignore_slots).
    const slotOn = (m: Member) =>
      sql<{ failover: boolean; reason: string | null; db: string }>(
        m.pgPort,
        'SELECT failover, invalidation_reason AS reason, database AS db' +
          ' FROM pg_replication_slots WHERE slot_name = $1',
        [SLOT],
      );
    const after = await settled(h);
    expect(after.name).toBe(target.name);
    expect(await slotOn(after)).toEqual([{ failover: true, reason: null, db: database }]);
    // A write after the switchover, then the slot decodes from where it was.
    await sql(after.pgPort, 'SELECT pg_logical_emit_message(true, $1, $2)', ['probe', 'x']);
    const advanced = await sql<{ lsn: string }>(
      after.pgPort,
      'SELECT end_lsn::text AS lsn FROM pg_replication_slot_advance($1, pg_current_wal_lsn())',
      [SLOT],
      database,
    );
    expect(advanced[0]?.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    numbers['slotAfterSwitchover'] = {
      newPrimary: after.name,
      slots: await Promise.all(
        h.members.map(async (m) => ({
          member: m.name,
          rows: await sql(
            m.pgPort,
            'SELECT slot_name, synced, temporary, failover FROM pg_replication_slots' +
              " WHERE slot_type = 'logical'",
          ).catch((e: Error) => e.message),
        })),
      ),
    };
    await sql(after.pgPort, 'SELECT pg_drop_replication_slot($1)', [SLOT], database);
    // Dropped on the primary (a subscription's DROP does that), the synced copies go with it,
    // but the old primary kept its own: what a move's clean-up drops on every member.
    const stray = (m: Member) =>
      sql<{ n: number }>(m.pgPort, straySlotsSql(), [], database).then((r) => r[0]?.n ?? -1);
    expect(await stray(primary)).toBe(1);
    expect(await stray(after)).toBe(0); // a primary has none by definition
    for (const m of h.members)
      await sql(m.pgPort, dropStraySlotsSql(), [], database).catch(() => undefined);
    await eventually(
      'no move slot left on any member',
      async () => {
        const left = await Promise.all(
          h.members.map((m) =>
            sql<{ n: string }>(
              m.pgPort,
              "SELECT count(*) AS n FROM pg_replication_slots WHERE slot_name LIKE 'scalable%'",
            ).then((r) => r[0]?.n),
          ),
        );
        return left.every((n) => n === '0') ? true : undefined;
      },
      60_000,
      1000,
    );
  }, 600_000);
});
