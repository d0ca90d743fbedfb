// Failover scenarios that must not cost an acknowledged write (issue 25): real Patroni and
// Postgres on loopback (patroni-harness.ts), with the operator's lock watch running as the
// operator runs it (failover-operator.ts). In every scenario a writer on every member commits
// single-row INSERTs through the fault and records each acknowledged id; after the dust
// settles (one primary taking writes, every other member a streaming replica) the test
// asserts that the final primary holds every acknowledged id and that no two members
// acknowledged writes at the same time. The longest time without an acknowledged write is
// recorded for bench:failover, never asserted.
import { setTimeout as sleep } from 'node:timers/promises';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { syncPatroniConfig } from '../../operator/tiers/database/dcs-sync.ts';
import { PRIMARY_ROLE, REPLICA_ROLE, ROLE_LABEL } from '../../operator/tiers/database/names.ts';
import { RolloutGate } from '../../operator/tiers/database/rollout-gate.ts';
import { readLock, stepRollouts } from '../../operator/tiers/database/rollout-step.ts';
import { planShard, shardView } from '../../operator/tiers/database/rollout.ts';
import type { Observed, ObservedObject } from '../../operator/tiers/shared/report.ts';
import type { ClusterAccess } from '../../operator/tiers/tier.ts';
import type { StallProxy } from '../integration/stall-proxy.ts';
import { recordForBench } from './bench-record.ts';
import {
  Writers,
  createWritesTable,
  killPostgres,
  overlappingPrimaries,
  settled,
  startCanceller,
  syncStandbyRecorded,
  syncStandbysOf,
} from './failover-faults.ts';
import { startOperatorWatch } from './failover-operator.ts';
import type { OperatorWatch } from './failover-operator.ts';
import { operatorAccess } from './patroni-kubelet.ts';
import { appModel, eventually, sql, startDatabase } from './patroni-harness.ts';
import type { Harness, HarnessOptions, Member, TaskOutcome } from './patroni-harness.ts';
import { newTemplateRevision } from './patroni-rollout-scenarios.ts';

const numbers: Record<string, number> = {};
afterAll(() => {
  console.log(`[patroni-failover] measured: ${JSON.stringify(numbers)}`);
  recordForBench('patroni-failover', numbers);
});

const s3 = (ms: number) => Number((ms / 1000).toFixed(3));
/** An API outage as long as a control-plane upgrade's: 3 leases at ttl 20, 2 at ttl 30. */
const OUTAGE_MS = 60_000;

interface Stand {
  readonly h: Harness;
  readonly primary: Member;
  readonly watch: OperatorWatch;
  readonly writers: Writers;
  /** The app's spec.database as the API server would hold it; tests may change it. */
  database: Record<string, unknown>;
}

/**
 * A shard (primary + replicasPerShard replicas, 2 unless given) bootstrapped, the watch and
 * the writers running.
 */
async function stand(
  prefix: string,
  database: Record<string, unknown>,
  opts: HarnessOptions = {},
  hooks: Parameters<typeof startOperatorWatch>[2] = {},
): Promise<Stand> {
  const spec: Record<string, unknown> = { replicasPerShard: 2, ...database };
  const h = await startDatabase(prefix, spec, [], opts);
  // Stopped here if the stand never stands: no caller holds it to stop it.
  const s: Stand = {
    h,
    primary: undefined as unknown as Member,
    database: spec,
    watch: undefined as unknown as OperatorWatch,
    writers: undefined as unknown as Writers,
  };
  try {
    await standUp(s, hooks);
    return s;
  } catch (err) {
    await teardown(s, { name: prefix, result: { state: 'fail' } });
    throw err;
  }
}

/** Waits for the shard to settle, creates the writes table, starts the watch and writers. */
async function standUp(s: Stand, hooks: Parameters<typeof startOperatorWatch>[2]): Promise<void> {
  const { h, database: spec } = s;
  const n = Number(spec['replicasPerShard']);
  const primary = await eventually(
    `a primary and ${n} streaming replicas`,
    async () => {
      const p = h.primaryOf(0);
      const replicas = h.pods().filter((x) => x.metadata.labels?.[ROLE_LABEL] === REPLICA_ROLE);
      if (!p || replicas.length !== n) return undefined;
      const rows = await sql<{ sync_state: string }>(
        p.pgPort,
        "SELECT sync_state FROM pg_stat_replication WHERE state = 'streaming'",
      ).catch(() => []);
      const syncOk = !spec['synchronous'] || rows.some((r) => r.sync_state === 'sync');
      return rows.length === n && syncOk ? p : undefined;
    },
    180_000,
    500,
  );
  if (spec['synchronous']) await syncStandbyRecorded(h);
  await createWritesTable(primary);
  (s as { primary: Member }).primary = primary;
  (s as { watch: OperatorWatch }).watch = await startOperatorWatch(h, () => s.database, hooks);
  (s as { writers: Writers }).writers = new Writers(h.members);
  await eventually('writes acknowledged', async () =>
    s.writers.acks.length > 20 ? true : undefined,
  );
}

/** After the fault: settle, stop writing, check every acknowledged id and the overlap. */
async function verdict(s: Stand) {
  const final = await settled(s.h, []);
  await s.writers.stop();
  const { lost } = await settled(s.h, s.writers.acks);
  return { final: final.primary, lost, overlap: overlappingPrimaries(s.writers.acks) };
}

async function teardown(s: Stand | undefined, outcome: TaskOutcome): Promise<void> {
  await s?.writers?.stop();
  await s?.watch?.stop();
  await s?.h.stop(outcome);
}

const timelineOf = async (m: Member) =>
  (
    await sql<{ tli: string }>(
      m.pgPort,
      'SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) AS tli',
    )
  )[0]?.tli;

/** The ttl Patroni runs with (its live `<scope>-config`). */
function liveTtl(h: Harness): number {
  const cm = JSON.parse(
    h.kubectl(['-n', h.ns, 'get', 'configmap', 'shop-db-0-config', '-o', 'json']),
  ) as { metadata: { annotations?: Record<string, string> } };
  const ttl = Number(
    (JSON.parse(cm.metadata.annotations?.['config'] ?? '{}') as { ttl?: unknown }).ttl,
  );
  if (!Number.isFinite(ttl) || ttl <= 0) throw new Error('no ttl in shop-db-0-config');
  return ttl;
}

/** The shard's pods and StatefulSet as the API server has them: what the operator's cache holds. */
function apiObserved(h: Harness): Observed {
  const items = (what: string) =>
    (JSON.parse(h.kubectl(['-n', h.ns, 'get', what, '-o', 'json'])) as { items: ObservedObject[] })
      .items;
  return {
    objects: items('statefulsets').map((o) => ({
      ...o,
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
    })),
    pods: items('pods').map((o) => ({ ...o, apiVersion: 'v1', kind: 'Pod' })),
    missingApis: [],
  };
}

/** A vitest task outcome for a test that threw (the harness keeps its logs then). */
const outcomeOf = (err: unknown): TaskOutcome =>
  err === undefined ? {} : { result: { state: 'fail' } };

/** Runs a scenario on a stand it starts, and tears the stand down however the scenario ends. */
async function onStand(start: () => Promise<Stand>, body: (s: Stand) => Promise<void>) {
  let s: Stand | undefined;
  let failure: unknown;
  try {
    s = await start();
    await body(s);
  } catch (err) {
    failure = err;
    throw err;
  } finally {
    await teardown(s, outcomeOf(failure));
  }
}

/** kill -9 of the stand's primary; then the first write a survivor acknowledged after it. */
async function killPrimary(s: Stand) {
  const p = s.primary;
  const t0 = performance.now();
  s.h.killMember(p);
  const promoted = await eventually(
    'a write acknowledged by a survivor',
    async () => s.writers.acks.find((a) => a.member !== p.name && a.ackedAt > t0) ?? undefined,
    120_000,
    100,
  );
  return { p, t0, promoted };
}

describe.sequential('failover scenarios: no acknowledged write lost, one primary at a time', () => {
  it('sync: kill -9 of the primary: released by the operator, the standby takes over, nothing lost', async () => {
    await onStand(
      () => stand('fo-kill', { synchronous: true }),
      async (s) => {
        const { p, t0, promoted } = await killPrimary(s);
        // The operator released the dead primary's lock (its lease had 20 s to run) and fenced
        // its pod, which kept its primary label.
        expect(s.watch.released.map((r) => r.leader)).toEqual([p.name]);
        await eventually('the dead primary fenced', async () =>
          s?.watch.fenced.includes(p.name) ? true : undefined,
        );
        // The kubelet restarts the crashed container: it rejoins as a replica.
        s.h.startMember(p);
        const v = await verdict(s);
        // What the bench reports this as: the failoverSeconds the shard ran with.
        numbers['syncKillFailoverSecondsSpec'] = s.h.app.database?.failoverSeconds ?? NaN;
        numbers['syncKillFirstWriteOnNewPrimarySeconds'] = s3(promoted.ackedAt - t0);
        numbers['syncKillAcked'] = s.writers.acks.length;
        numbers['syncKillLost'] = v.lost.length;
        expect(v.lost).toEqual([]);
        expect(v.overlap).toEqual([]);
        expect(v.final.name).toBe(promoted.member);
      },
    );
  }, 600_000);

  // A crash of the synchronous primary's Postgres under a live Patroni (what the kubelet's
  // instant restart of a killed container also comes to: a Patroni holding the lock, its
  // Postgres down). Patroni keeps renewing the lock, so the operator has nothing to release;
  // with primary_start_timeout 0 Patroni hands the lock to the synchronous standby instead
  // of starting Postgres again in place (with Patroni's default 300 it restarts in place).
  it('sync: kill -9 of the primary’s Postgres (Patroni lives on): the synchronous standby takes over, nothing lost, no release', async () => {
    await onStand(
      () => stand('fo-crash', { synchronous: true }),
      async (s) => {
        const p = s.primary;
        const standbys = syncStandbysOf(s.h);
        const t0 = performance.now();
        killPostgres(p);
        const v = await verdict(s);
        expect(v.final.name, `the primary after ${p.name}'s Postgres was killed`).not.toBe(p.name);
        expect(standbys, 'the synchronous standby at the kill').toContain(v.final.name);
        expect(v.lost).toEqual([]);
        expect(v.overlap).toEqual([]);
        // Patroni's own doing: the lock was renewed throughout and handed over by its holder.
        expect(s.watch.released).toEqual([]);
        const first = s.writers.acks.find((a) => a.member === v.final.name && a.ackedAt > t0);
        numbers['syncCrashFirstWriteOnNewPrimarySeconds'] = first ? s3(first.ackedAt - t0) : NaN;
        numbers['syncCrashAcked'] = s.writers.acks.length;
        numbers['syncCrashLost'] = v.lost.length;
      },
    );
  }, 600_000);

  // The kubelet's view of the same crash: the whole container (fence.py, Patroni, Postgres)
  // killed and started again at once, its Patroni finding the lock still its own. The
  // operator may also release the lock if the restart is slow (counted, not asserted): either
  // way the synchronous standby is the new primary and nothing acknowledged is lost.
  it('sync: kill -9 of the primary’s container, started again at once as by the kubelet: the synchronous standby takes over, nothing lost', async () => {
    await onStand(
      () => stand('fo-restart', { synchronous: true }),
      async (s) => {
        const p = s.primary;
        const standbys = syncStandbysOf(s.h);
        const exited = p.container?.exited;
        const t0 = performance.now();
        s.h.killMember(p);
        await exited;
        s.h.startMember(p);
        const v = await verdict(s);
        expect(v.final.name, `the primary after ${p.name}'s container was killed`).not.toBe(p.name);
        expect(standbys, 'the synchronous standby at the kill').toContain(v.final.name);
        expect(v.lost).toEqual([]);
        expect(v.overlap).toEqual([]);
        const first = s.writers.acks.find((a) => a.member === v.final.name && a.ackedAt > t0);
        numbers['syncRestartFirstWriteOnNewPrimarySeconds'] = first ? s3(first.ackedAt - t0) : NaN;
        numbers['syncRestartReleasedByOperator'] = s.watch.released.length;
        numbers['syncRestartAcked'] = s.writers.acks.length;
        numbers['syncRestartLost'] = v.lost.length;
      },
    );
  }, 600_000);

  it('async: Patroni (not Postgres) frozen 12 s: no failover, the primary writes on', async () => {
    await onStand(
      () => stand('fo-async', { synchronous: false }),
      async (s) => {
        const p = s.primary;
        const before = await timelineOf(p);
        const t0 = performance.now();
        await s.h.pauseMember(p);
        await sleep(12_000);
        s.h.resumeMember(p);
        const v = await verdict(s);
        numbers['asyncFrozenLongestGapSeconds'] = s3(s.writers.longestGapMs(t0, t0 + 12_000));
        numbers['asyncFrozenLost'] = v.lost.length;
        expect(v.lost).toEqual([]);
        expect(v.overlap).toEqual([]);
        // Patroni's lease (30 s) outlasts the stall and the operator never releases an
        // asynchronous lock: the same primary, on the same timeline.
        expect(s.watch.released).toEqual([]);
        expect(v.final.name).toBe(p.name);
        expect(await timelineOf(p)).toBe(before);
      },
    );
  }, 600_000);

  it('sync: Patroni frozen 12 s, blocked commits cancelled: fenced in the pod, then failed over', async () => {
    await onStand(
      () => stand('fo-sync', { synchronous: true }),
      async (s) => {
        const p = s.primary;
        const canceller = startCanceller(s.h);
        const t0 = performance.now();
        await s.h.pauseMember(p);
        await sleep(12_000);
        s.h.resumeMember(p);
        const v = await verdict(s);
        await canceller.stop();
        const firstOnNew = s.writers.acks.find((a) => a.member === v.final.name && a.ackedAt > t0);
        numbers['syncFrozenLongestGapSeconds'] = s3(s.writers.longestGapMs(t0, t0 + 12_000));
        numbers['syncFrozenFirstWriteOnNewPrimarySeconds'] = s3((firstOnNew?.ackedAt ?? NaN) - t0);
        numbers['syncFrozenCancelledCommits'] = canceller.cancelled();
        numbers['syncFrozenLost'] = v.lost.length;
        expect(v.lost).toEqual([]);
        expect(v.overlap).toEqual([]);
        // The fast path: the pod's fence stopped the silent primary's Postgres, the operator
        // released its lock, the synchronous standby took over.
        expect(readFileSync(p.log, 'utf8')).toMatch(/fence: Patroni did not renew its leader lock/);
        expect(s.watch.released.map((r) => r.leader)).toEqual([p.name]);
        expect(v.final.name).not.toBe(p.name);
      },
    );
  }, 600_000);

  it("sync: the primary's API requests delayed 3.5 s for 30 s: it stays primary (failsafe)", async () => {
    await onStand(
      () => stand('fo-slow', { synchronous: true }, { apiProxies: true }),
      async (s) => {
        const p = s.primary;
        const before = await timelineOf(p);
        const proxy = s.h.apiProxyOf(p);
        if (!proxy) throw new Error('no API proxy');
        const t0 = performance.now();
        proxy.delay(3500);
        await sleep(30_000);
        proxy.delay(0);
        const v = await verdict(s);
        numbers['apiDelayedLongestGapSeconds'] = s3(s.writers.longestGapMs(t0, t0 + 30_000));
        numbers['apiDelayedLost'] = v.lost.length;
        expect(v.lost).toEqual([]);
        expect(v.overlap).toEqual([]);
        // Its renewals time out, but failsafe_mode keeps it while its members answer, they do
        // not promote, and its standby still streams, so the operator leaves its lock alone.
        expect(s.watch.released).toEqual([]);
        expect(v.final.name).toBe(p.name);
        expect(await timelineOf(p)).toBe(before);
      },
    );
  }, 600_000);

  // Availability is part of safety (issue 25, item 7): an API server every member loses for
  // a minute (a control-plane upgrade; here each Patroni's own proxy answers nothing, then
  // drops every connection as a restarted API server would) must
  // not make the primary read-only. failsafe_mode keeps it while its members answer on
  // Patroni's REST API; the pod's fence is fed on each failsafe confirmation; the operator,
  // which still sees the API server and a lock that has gone silent, must not release it
  // (its standby's pod still says it streams). Writers keep being acknowledged by the same
  // primary, on the same timeline, more than a lease into the outage.
  for (const synchronous of [true, false]) {
    const mode = synchronous ? 'sync' : 'async';
    it(`${mode}: the API server unreachable for every member for 60 s: the primary keeps taking writes (failsafe), no release`, async () => {
      await onStand(
        () => stand(`fo-outage-${mode}`, { synchronous }, { apiProxies: true }),
        async (s) => {
          const p = s.primary;
          const before = await timelineOf(p);
          const proxies = s.h.members.map((m) => s.h.apiProxyOf(m));
          if (proxies.some((x) => x === undefined)) throw new Error('no API proxy');
          const ttl = liveTtl(s.h);
          if (OUTAGE_MS < 1.5 * ttl * 1000)
            throw new Error(`an outage shorter than 1.5 x ttl ${ttl}`);
          const t0 = performance.now();
          for (const x of proxies) x?.stall();
          await sleep(OUTAGE_MS);
          const t1 = performance.now();
          // The API server is back: what was in flight to it died with it (cut: nothing sent
          // into the outage is served late), new connections go through.
          for (const x of proxies) {
            x?.cut();
            x?.heal();
          }
          const v = await verdict(s);
          const during = s.writers.acks.filter((a) => a.ackedAt > t0 && a.ackedAt < t1);
          // Past a whole lease: the lock has expired for anyone who could read it.
          const late = during.filter((a) => a.ackedAt > t0 + ttl * 1000);
          numbers[`${mode}ApiOutageLongestGapSeconds`] = s3(s.writers.longestGapMs(t0, t1));
          numbers[`${mode}ApiOutageAckedDuring`] = during.length;
          numbers[`${mode}ApiOutageLost`] = v.lost.length;
          expect(v.lost).toEqual([]);
          expect(v.overlap).toEqual([]);
          // Writes acknowledged by the primary alone, still more than a lease in (without
          // failsafe_mode Patroni demotes as its first renewal fails: retry_timeout).
          expect(new Set(during.map((a) => a.member))).toEqual(new Set([p.name]));
          expect(late.length).toBeGreaterThan(0);
          expect(s.watch.released).toEqual([]);
          expect(v.final.name).toBe(p.name);
          expect(await timelineOf(p)).toBe(before);
        },
      );
    }, 600_000);
  }

  it('sync: the operator leader dies right after releasing a lock: the next one fences', async () => {
    let s: Stand | undefined;
    let failure: unknown;
    let restarting: Promise<void> | undefined;
    try {
      s = await stand(
        'fo-restart',
        { synchronous: true },
        {},
        {
          // The leader dies the moment its release is written: whatever it meant to do next
          // is lost with it.
          onRelease: () => {
            restarting ??= s?.watch.restart();
          },
        },
      );
      const p = s.primary;
      const t0 = performance.now();
      s.h.killMember(p);
      await eventually('the lock released', async () =>
        s?.watch.released.length ? true : undefined,
      );
      await restarting;
      // The new instance fences from the release recorded on the lock, not after a lease.
      await eventually('the dead primary fenced', async () =>
        s?.watch.fenced.includes(p.name) ? true : undefined,
      );
      // The event is recorded after the delete, in the background: awaited, then exact.
      const fencedEvents = await eventually('the PrimaryFenced event', async () => {
        const events = await s?.watch.events('PrimaryFenced');
        return events?.length ? events : undefined;
      });
      expect(fencedEvents).toEqual([
        expect.stringMatching(new RegExp(`^shop-db-0: pod ${p.name} .*its lock was released`)),
      ]);
      const promoted = s.h.primaryOf(0);
      expect(promoted?.name).not.toBe(p.name);
      await eventually(
        'the primary Service on the new primary alone',
        async () =>
          JSON.stringify(s?.h.endpointsOf('shop-db-0')) === JSON.stringify([promoted?.name])
            ? true
            : undefined,
        30_000,
        500,
      );
      // The kubelet restarts the crashed container: it rejoins as a replica.
      s.h.startMember(p);
      const v = await verdict(s);
      const firstOnNew = s.writers.acks.find((a) => a.member === v.final.name && a.ackedAt > t0);
      numbers['restartFirstWriteOnNewPrimarySeconds'] = s3((firstOnNew?.ackedAt ?? NaN) - t0);
      numbers['restartLost'] = v.lost.length;
      expect(v.lost).toEqual([]);
      expect(v.overlap).toEqual([]);
    } catch (err) {
      failure = err;
      throw err;
    } finally {
      await teardown(s, outcomeOf(failure));
    }
  }, 600_000);

  it('sync: a rollout step right after a lock-release failover never touches the new primary', async () => {
    // A primary and its synchronous standby, a rollout pending (every pod on the old
    // revision). The operator's step runs on the pods as the API server has them (its cache
    // and its fresh reads alike): right after the release the dead primary's pod still says
    // primary and Ready (its readiness probe has not failed yet), so a plan from the labels
    // alone restarts the only replica: the standby that is taking over.
    const gate = new RolloutGate();
    const steps: { when: string; labelsSay: string; lock: string; writes: string[] }[] = [];
    let s: Stand | undefined;
    let cluster: ClusterAccess | undefined;
    let slowed: StallProxy | undefined;
    const stepNow = async (when: string) => {
      if (!s || !cluster) throw new Error('no stand');
      const observed = apiObserved(s.h);
      // What the labels alone would have the step do, and the lock it reads.
      const a = planShard(shardView(s.h.app, 0, observed.objects[0], observed.pods)).action;
      const lock = await readLock(s.h.app, 'shop-db-0', cluster);
      const writes = await stepRollouts(s.h.app, observed, cluster, gate);
      steps.push({
        when,
        labelsSay: a.type === 'deletePod' ? `delete ${a.pod}` : a.type,
        lock: `${lock.holder ?? 'free'}${lock.releasing ? ', release in flight' : ''}`,
        writes: writes.map((w) => `${w.action} ${w.kind} ${w.name}`),
      });
    };
    let failure: unknown;
    try {
      s = await stand(
        'fo-roll',
        { synchronous: true, replicasPerShard: 1 },
        { apiProxies: true },
        {
          // The step the release's events bring, before anything else moves: the standby's
          // API requests are held back meanwhile (3 s each way, a loaded API server as it
          // sees it), so it takes the lock and relabels the pods only once the step is done,
          // whatever the machine's load makes the step's own reads take.
          afterRelease: async () => {
            slowed?.delay(3000);
            try {
              await stepNow('right after the release');
            } finally {
              slowed?.delay(0);
            }
          },
        },
      );
      cluster = await operatorAccess(s.h);
      const h = s.h;
      const p = s.primary;
      const standby = h.members.find((m) => m !== p);
      if (!standby) throw new Error('no standby');
      const uidOf = (name: string) =>
        (apiObserved(h).pods.find((x) => x.metadata.name === name)?.metadata as { uid?: string })
          ?.uid;
      const standbyUid = uidOf(standby.name);
      newTemplateRevision(h, 'test/rollout');
      await eventually('every pod on the old revision', async () => {
        const o = apiObserved(h);
        const view = shardView(h.app, 0, o.objects[0], o.pods);
        return view.updateRevision !== undefined &&
          view.members.length === 2 &&
          view.members.every((m) => m.revision !== view.updateRevision)
          ? true
          : undefined;
      });
      // The control: with the lock where the labels say, the step would restart the standby.
      const o = apiObserved(h);
      const lock = await readLock(h.app, 'shop-db-0', cluster);
      expect(lock.holder).toBe(p.name);
      expect(
        planShard({ ...shardView(h.app, 0, o.objects[0], o.pods), lock }).action,
      ).toMatchObject({ type: 'deletePod', pod: standby.name });

      slowed = h.apiProxyOf(standby);
      if (!slowed) throw new Error('no API proxy');
      s.h.killMember(p);
      await eventually('the lock released', async () =>
        s?.watch.released.length ? true : undefined,
      );
      // The reconciles the takeover's pod events bring, until the lock holder is the one pod
      // labelled primary and the dead one is fenced.
      const promoted = await eventually(
        'the new primary labelled, the old one fenced',
        async () => {
          const held = (await readLock(h.app, 'shop-db-0', cluster!)).holder;
          const labelled = h
            .pods()
            .filter((x) => x.metadata.labels?.[ROLE_LABEL] === PRIMARY_ROLE)
            .map((x) => x.metadata.name);
          if (held && labelled.join() === held && s?.watch.fenced.includes(p.name)) return held;
          await stepNow('during the takeover');
          return undefined;
        },
        120_000,
        200,
      );
      expect(promoted).toBe(standby.name);
      // Right after the release the labels still name the dead primary and its pod is Ready:
      // from them alone the step would restart the standby that is taking over.
      expect(steps[0]).toEqual({
        when: 'right after the release',
        labelsSay: `delete ${standby.name}`,
        lock: 'free, release in flight',
        writes: [],
      });
      expect(steps.flatMap((x) => x.writes).filter((w) => w.endsWith(` ${standby.name}`))).toEqual(
        [],
      );
      expect(uidOf(standby.name)).toBe(standbyUid);
      // The kubelet restarts the crashed container: it rejoins as a replica.
      s.h.startMember(p);
      const v = await verdict(s);
      expect(v.final.name).toBe(standby.name);
      numbers['rolloutAfterFailoverLost'] = v.lost.length;
      expect(v.lost).toEqual([]);
      expect(v.overlap).toEqual([]);
    } catch (err) {
      failure = err;
      throw err;
    } finally {
      console.log(`[patroni-failover] rollout steps around the failover: ${JSON.stringify(steps)}`);
      await teardown(s, outcomeOf(failure));
    }
  }, 600_000);

  it('sync: failoverSeconds lowered while the primary stalls: no release before Patroni reloaded', async () => {
    await onStand(
      () => stand('fo-lower', { synchronous: true, failoverSeconds: 30 }),
      async (s) => {
        const p = s.primary;
        const canceller = startCanceller(s.h);
        const t0 = performance.now();
        await s.h.pauseMember(p);
        // The spec goes from 30 to 10 and the operator writes the new timings into Patroni's
        // live configuration at once; the frozen primary cannot load them.
        s.database = { ...s.database, failoverSeconds: 10 };
        const access = await operatorAccess(s.h);
        await syncPatroniConfig(appModel(s.h.ns, s.database), access);
        const promoted = await eventually(
          'a new primary (Patroni’s own lease)',
          async () => {
            const n = s?.h.primaryOf(0);
            return n && n.name !== p.name ? n : undefined;
          },
          120_000,
          500,
        );
        s.h.resumeMember(p);
        const v = await verdict(s);
        await canceller.stop();
        numbers['loweredFirstWriteOnNewPrimarySeconds'] = s3(
          (s.writers.acks.find((a) => a.member === promoted.name && a.ackedAt > t0)?.ackedAt ??
            NaN) - t0,
        );
        numbers['loweredLost'] = v.lost.length;
        expect(v.lost).toEqual([]);
        expect(v.overlap).toEqual([]);
        // The primary never renewed with the new ttl: the operator did not act on timings
        // Patroni was not running; the old lease (30 s) did, after the fence (15 s).
        expect(s.watch.released).toEqual([]);
        expect(s.h.roleOf(v.final.name)).toBe(PRIMARY_ROLE);
      },
    );
  }, 600_000);

  // An asynchronous kill -9 fails over on Patroni's lease alone, and a replica promoted then
  // may lack what it had not received (the async bound, RPO > 0), so the loss is counted (for
  // bench:failover's asynchronous column), not asserted; one primary at a time and no release
  // by the operator are. Runs in every test run: a skipped case asserts nothing.
  it('async: kill -9 of the primary fails over on Patroni’s lease, one primary at a time, no release (the loss counted)', async () => {
    await onStand(
      () => stand('fo-async-kill', { synchronous: false }),
      async (s) => {
        const { p, t0, promoted } = await killPrimary(s);
        s.h.startMember(p);
        const v = await verdict(s);
        numbers['asyncKillFirstWriteOnNewPrimarySeconds'] = s3(promoted.ackedAt - t0);
        numbers['asyncKillAcked'] = s.writers.acks.length;
        numbers['asyncKillLost'] = v.lost.length;
        expect(v.overlap).toEqual([]);
        expect(s.watch.released).toEqual([]);
      },
    );
  }, 600_000);

  // The negative control of the kill -9 cases (issue 35): the writers and settled() above must
  // be able to see an acknowledged write lost. The standby's replication stream is held back
  // (its connection to the primary forwards nothing) while the primary's writer goes on, then
  // the primary is killed. On an asynchronous shard the primary has acknowledged writes its
  // standby never received; Patroni promotes the standby all the same (its lag within the
  // rendered maximum_lag_on_failover, 1 MiB), and the same checker must report exactly those
  // writes lost. On a synchronous shard the same fault holds the commits back instead of
  // acknowledging them: nothing acknowledged is lost.
  for (const synchronous of [false, true]) {
    const mode = synchronous ? 'sync' : 'async';
    const outcome = synchronous
      ? 'the commits wait, nothing acknowledged is lost'
      : 'the checker reports the writes only the primary held (negative control)';
    it(`${mode}: the standby's stream held back, then kill -9 of the primary: ${outcome}`, async () => {
      await onStand(
        () => stand(`fo-lag-${mode}`, { synchronous, replicasPerShard: 1 }, { pgProxies: true }),
        async (s) => {
          const p = s.primary;
          const standby = s.h.members.find((m) => m !== p);
          const stream = s.h.pgProxyOf(p);
          if (!standby || !stream) throw new Error('no standby or no Postgres proxy');
          const tHeld = performance.now();
          stream.stall();
          const afterHold = () =>
            s.writers.acks.filter((a) => a.member === p.name && a.ackedAt > tHeld);
          // The fault at work: the primary's WAL moves on, the standby's does not; an
          // asynchronous primary acknowledges on, a synchronous one's commit waits.
          const lagBytes = async () => {
            const [r] = await sql<{ lsn: string }>(
              standby.pgPort,
              'SELECT pg_last_wal_receive_lsn()::text AS lsn',
            );
            const [d] = await sql<{ lag: string }>(
              p.pgPort,
              'SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::text AS lag',
              [r?.lsn],
            );
            return Number(d?.lag);
          };
          // The same wait in both modes (a build that made a synchronous shard acknowledge
          // without its standby fails at the verdict, not here): the primary's WAL ahead of
          // the standby's, and a commit waiting for the standby or 20 acknowledged since.
          const lag = await eventually(
            'the primary ahead of its standby, a commit waiting or 20 acknowledged',
            async () => {
              const [w] = await sql<{ n: string }>(
                p.pgPort,
                "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event = 'SyncRep'",
              );
              const pending = w?.n !== '0' || afterHold().length >= 20;
              const bytes = await lagBytes();
              return pending && bytes > 0 ? bytes : undefined;
            },
            60_000,
            100,
          );
          const ackedWhileHeld = afterHold().map((a) => a.id);
          const { p: killed, promoted } = await killPrimary(s);
          // The standby took over without what was held back: what the proxy still holds is
          // dropped with its connections, new ones go through.
          stream.cut();
          stream.heal();
          expect(killed.name).toBe(p.name);
          expect(promoted.member).toBe(standby.name);
          s.h.startMember(p);
          const v = await verdict(s);
          numbers[`${mode}HeldStreamLagBytesAtKill`] = lag;
          numbers[`${mode}HeldStreamAckedWhileHeld`] = ackedWhileHeld.length;
          numbers[`${mode}HeldStreamLost`] = v.lost.length;
          expect(v.final.name).toBe(standby.name);
          expect(v.overlap).toEqual([]);
          if (synchronous) {
            expect(v.lost).toEqual([]);
          } else {
            // The loss is seen, and it is the fault's: writes the old primary acknowledged
            // after its standby's stream was held back.
            expect(v.lost.length).toBeGreaterThan(0);
            const lateOnOld = new Set(afterHold().map((a) => a.id));
            expect(v.lost.filter((id) => !lateOnOld.has(id))).toEqual([]);
            expect(s.watch.released).toEqual([]);
          }
        },
      );
    }, 600_000);
  }
});
