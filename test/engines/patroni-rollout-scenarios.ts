// The two database-rollout scenarios, on the engine harness with real Patroni: shared by the
// engine test (which asserts what happened) and `npm run bench:rollout` (which records the
// timings in BENCHMARKS.md). Each returns what it observed; neither asserts.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { AppModel } from '../../operator/api/model.ts';
import { buildDatabase } from '../../operator/tiers/database/build.ts';
import { syncPatroniConfig } from '../../operator/tiers/database/dcs-sync.ts';
import { PRIMARY_ROLE, REPLICA_ROLE, ROLE_LABEL } from '../../operator/tiers/database/names.ts';
import { planShard, shardView } from '../../operator/tiers/database/rollout.ts';
import type { ClusterAccess } from '../../operator/tiers/tier.ts';
import { appModel, eventually, sql, superuserClientConfig } from './patroni-harness.ts';
import type { Harness, Member } from './patroni-harness.ts';
import {
  applyStatefulSet,
  drive,
  longestGap,
  observe,
  pvcOf,
  startWriter,
  step,
} from './patroni-kubelet.ts';
import type { Kubelet, TimedWrite } from './patroni-kubelet.ts';
import { syncStandbysOf } from './failover-faults.ts';

export const TABLE = 'rollout_writes';

/**
 * What Postgres itself said at the moment the step was about to delete a pod or lower the
 * StatefulSet: the members that answered as primaries (pg_is_in_recovery() false).
 */
export interface GuardedWrite {
  readonly what: string;
  readonly primaries: readonly string[];
}

export interface Outcome {
  readonly writes: readonly TimedWrite[];
  /** Every pod deletion and StatefulSet change, with the primaries when it was sent. */
  readonly guarded: readonly GuardedWrite[];
  readonly switchovers: number;
  /** Promotions seen by Postgres: timeline increments on the final primary. */
  readonly promotions: number;
  /** Every primary the shard had, in order, sampled while it ran. */
  readonly primaries: readonly string[];
  readonly acked: number;
  /** Acknowledged writes missing on the final primary afterwards. */
  readonly lost: number;
  readonly writeErrors: number;
  /** Longest time without an acknowledged write over the whole scenario (ms). */
  readonly maxWriteGapMs: number;
  readonly durationMs: number;
}

export async function connectMember(m: Member): Promise<pg.Client> {
  const c = new pg.Client({
    ...superuserClientConfig(m.pgPort),
    // As sql(): under load the TLS handshake alone took over 1 s, every attempt, for a minute
    // (the primary logged "could not accept SSL connection: Connection reset by peer").
    connectionTimeoutMillis: 3000,
    query_timeout: 5000,
  });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

export async function timeline(m: Member): Promise<number> {
  const rows = await sql<{ tli: string }>(
    m.pgPort,
    'SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) AS tli',
  );
  return parseInt(rows[0]?.tli ?? '0', 16);
}

/** A primary and every replica labelled and streaming, table created. */
export async function settled(h: Harness, app: AppModel = h.app): Promise<Member> {
  const perShard = (app.database?.replicasPerShard ?? 0) + 1;
  const p = await eventually(
    `a primary and ${perShard - 1} replicas labelled and streaming`,
    async () => {
      const roles = h.pods().map((x) => x.metadata.labels?.[ROLE_LABEL]);
      const primary = h.primaryOf(0);
      if (!primary || roles.filter((r) => r === REPLICA_ROLE).length !== perShard - 1) return;
      const rows = await sql(
        primary.pgPort,
        "SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'",
      ).catch(() => []);
      return rows.length === perShard - 1 ? primary : undefined;
    },
    180_000,
    500,
  );
  await sql(p.pgPort, `CREATE TABLE IF NOT EXISTS ${TABLE} (id bigint PRIMARY KEY)`);
  return p;
}

/**
 * Asks every member's Postgres whether it is a primary, over connections kept open (and
 * reopened in the background when a member restarts), so the answer takes a round trip, not
 * a TLS handshake: the probe must not give Patroni the seconds it needs to finish a
 * switchover it was only just asked for. An open connection that breaks means its server
 * went away (stopped, demoting): no primary. A member not reachable yet is asked again until
 * it answers or refuses connections.
 */
interface PrimaryProbe {
  primaries(): Promise<string[]>;
  close(): Promise<void>;
}

function primaryProbe(h: Harness): PrimaryProbe {
  const open = new Map<string, pg.Client>();
  const connecting = new Map<string, Promise<void>>();
  let closed = false;
  const reconnect = (m: Member): Promise<void> => {
    let p = connecting.get(m.name);
    if (!p) {
      p = connectMember(m)
        .then((c) => {
          if (closed) return void c.end();
          open.set(m.name, c);
        })
        .finally(() => connecting.delete(m.name));
      connecting.set(m.name, p);
    }
    return p;
  };
  const keeper = setInterval(() => {
    for (const m of h.members) if (!open.has(m.name)) reconnect(m).catch(() => undefined);
  }, 250);
  const isPrimary = async (m: Member): Promise<boolean | undefined> => {
    const c = open.get(m.name);
    if (!c) {
      // Not connected: refused means not serving; anything else, ask again.
      return reconnect(m).then(
        () => undefined,
        (e: { code?: string }) =>
          /^(ECONNREFUSED|57P0[123])$/.test(e.code ?? '') ? false : undefined,
      );
    }
    try {
      return (
        (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]?.r === false
      );
    } catch (e) {
      open.delete(m.name);
      await c.end().catch(() => undefined);
      // A slow answer is no answer: ask again. Anything else: the server went away.
      return /timeout/i.test((e as Error).message) ? undefined : false;
    }
  };
  return {
    async primaries() {
      const answers = await Promise.all(
        h.members.map(async (m) => {
          const primary = await eventually(
            `${m.name} to say whether it is a primary`,
            async () => isPrimary(m),
            60_000,
            100,
          );
          return primary ? m.name : undefined;
        }),
      );
      return answers.filter((n) => n !== undefined);
    },
    async close() {
      closed = true;
      clearInterval(keeper);
      await Promise.allSettled([...connecting.values()]);
      await Promise.all([...open.values()].map((c) => c.end().catch(() => undefined)));
    },
  };
}

/**
 * The operator's ClusterAccess, asking Postgres who is primary right before each pod deletion
 * and StatefulSet change goes out: "the old primary's pod goes only after the switchover"
 * is then a fact about the database at that moment, not an order of API requests.
 */
function guarding(probe: PrimaryProbe, cluster: ClusterAccess, log: GuardedWrite[]): ClusterAccess {
  return {
    ...cluster,
    async delete(apiVersion, kind, namespace, name, ...preconditions) {
      if (kind !== 'Pod')
        return cluster.delete(apiVersion, kind, namespace, name, ...preconditions);
      const primaries = await probe.primaries();
      // Every argument on, the step's uid and resourceVersion preconditions included: a pod
      // Patroni patched since the step read it (it does on every loop while its LSN moves)
      // is not deleted (ConflictError), and that attempt is no deletion to log.
      await cluster.delete(apiVersion, kind, namespace, name, ...preconditions);
      log.push({ what: `delete Pod ${name}`, primaries });
    },
    async mergePatch(apiVersion, kind, namespace, name, body) {
      if (kind !== 'StatefulSet')
        return cluster.mergePatch(apiVersion, kind, namespace, name, body);
      const replicas = (body['spec'] as { replicas?: number } | undefined)?.replicas;
      const primaries = await probe.primaries();
      // Under the step's resourceVersion precondition: logged once it went through.
      const out = await cluster.mergePatch(apiVersion, kind, namespace, name, body);
      log.push({
        what: `patch StatefulSet ${name}${replicas === undefined ? '' : ` replicas=${replicas}`}`,
        primaries,
      });
      return out;
    },
  };
}

/** The planner is idle and every member ready: the shard is where the spec wants it. */
async function arrived(h: Harness, app: AppModel): Promise<boolean> {
  const o = await observe(h);
  const sts = o.objects.find((x) => x.kind === 'StatefulSet');
  const view = shardView(app, 0, sts, o.pods);
  const ready = view.members.filter((m) => m.ordinal < (view.liveReplicas ?? 0));
  return (
    !planShard(view).busy &&
    view.updateRevision !== undefined &&
    ready.length === view.liveReplicas &&
    ready.every((m) => m.ready && m.revision === view.updateRevision)
  );
}

/** Runs `body` with a writer on and the primary sampled; counts what it cost. */
async function measured(
  h: Harness,
  app: AppModel,
  body: () => Promise<TimedWrite[]>,
): Promise<Omit<Outcome, 'primaries' | 'guarded'> & { primaries: string[] }> {
  const primary = await settled(h);
  const before = await timeline(primary);
  const max = await sql<{ id: string }>(
    primary.pgPort,
    `SELECT coalesce(max(id), 0) AS id FROM ${TABLE}`,
  );
  const writer = startWriter(h, TABLE, connectMember, Number(max[0]?.id) + 1);
  const primaries: string[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const p = h
        .pods()
        .filter((x) => x.metadata.labels?.[ROLE_LABEL] === PRIMARY_ROLE)
        .map((x) => x.metadata.name)
        .join('+');
      if (p && primaries.at(-1) !== p) primaries.push(p);
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  const t0 = performance.now();
  let t1 = t0;
  let writes: TimedWrite[];
  try {
    await eventually('a first acknowledged write', async () =>
      writer.acked.length > 0 ? true : undefined,
    );
    writes = await body();
    // Keep writing a moment on the final primary, then stop.
    await eventually(
      'writes after the change',
      async () => (writer.ackedAt.some((t) => t > performance.now() - 500) ? true : undefined),
      60_000,
      100,
    );
  } finally {
    // On a failure too: a writer left running would load the next case's primary.
    await writer.stop();
    t1 = performance.now();
    sampling = false;
    await sampler;
  }
  const final = await settled(h, app);
  const rows = await sql<{ n: string }>(
    final.pgPort,
    `SELECT count(*) AS n FROM ${TABLE} WHERE id = ANY($1::bigint[])`,
    [writer.acked],
  );
  return {
    writes,
    switchovers: writes.filter((w) => w.kind === 'ConfigMap').length,
    promotions: (await timeline(final)) - before,
    primaries,
    acked: writer.acked.length,
    lost: writer.acked.length - Number(rows[0]?.n),
    writeErrors: writer.errors,
    maxWriteGapMs: Math.round(longestGap(writer.ackedAt, t0, t1)),
    durationMs: Math.round(t1 - t0),
  };
}

/** A pod template change of shard 0 (what a new image would be): a new StatefulSet revision. */
export function newTemplateRevision(h: Harness, annotation: string): void {
  h.kubectl([
    '-n',
    h.ns,
    'patch',
    'statefulset',
    'shop-db-0',
    '--type=merge',
    '-p',
    JSON.stringify({
      spec: { template: { metadata: { annotations: { [annotation]: String(Date.now()) } } } },
    }),
  ]);
}

/** A pod template change (what a new image would be): the operator rolls the shard. */
export async function rollout(h: Harness, operator: ClusterAccess): Promise<Outcome> {
  const guarded: GuardedWrite[] = [];
  const probe = primaryProbe(h);
  const cluster = guarding(probe, operator, guarded);
  const out = await measured(h, h.app, async () => {
    newTemplateRevision(h, 'bench/rollout');
    await eventually('the StatefulSet on a new revision', async () => {
      const o = await observe(h);
      const view = shardView(h.app, 0, o.objects[0], o.pods);
      return view.updateRevision !== undefined &&
        view.members.some((m) => m.revision !== view.updateRevision)
        ? true
        : undefined;
    });
    return drive(h.app, h, cluster, () => arrived(h, h.app));
  }).finally(() => probe.close());
  return { ...out, guarded };
}

/** A switchover request in Patroni's DCS (`shop-db-0-failover`), as the operator writes it. */
export function requestSwitchover(h: Harness, leader: string, member: string): void {
  h.kubectl(
    ['apply', '--server-side', '--field-manager=test', '--force-conflicts', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'shop-db-0-failover',
        namespace: h.ns,
        labels: { 'scalable.dev/database': 'shop', 'scalable.dev/cluster': 'shop-db-0' },
        annotations: { leader, member },
      },
    }),
  );
}

/**
 * Moves the primary to `to` through the same DCS request the operator uses. In synchronous
 * mode Patroni switches over only to the synchronous standby, so it hops through that one
 * until `to` is (which one Patroni picks after a hop is its choice).
 */
export async function switchTo(h: Harness, to: Member): Promise<void> {
  for (let hop = 0; hop < 8; hop++) {
    const from = h.primaryOf(0);
    if (from === to) return settled(h).then(() => undefined);
    if (!from) throw new Error('no primary');
    let member = to.name;
    if (h.app.database?.synchronous) {
      const sync = JSON.parse(
        h.kubectl(['-n', h.ns, 'get', 'configmap', 'shop-db-0-sync', '-o', 'json']),
      ) as { metadata: { annotations?: Record<string, string> } };
      const standbys = (sync.metadata.annotations?.['sync_standby'] ?? '').split(',');
      member = standbys.includes(to.name) ? to.name : (standbys[0] ?? to.name);
    }
    requestSwitchover(h, from.name, member);
    await eventually(
      `${member} primary`,
      async () => (h.primaryOf(0)?.name === member ? true : undefined),
      90_000,
      500,
    );
    await settled(h);
  }
  throw new Error(`could not move the primary to ${to.name}`);
}

export interface ScaleDownOutcome extends Outcome {
  /** spec.replicas right after the lowered spec was applied (held until the switchover). */
  readonly heldReplicas: number;
  readonly finalReplicas: number;
  /**
   * The removed ordinal's PVC once garbage collection has acted on its pod's deletion (a
   * ConfigMap owned by that pod is gone): undefined when the PVC is gone, else its owners
   * (an owner is what would have it collected).
   */
  readonly pvcOwners: readonly string[] | undefined;
  /** The removed member's data directory (its volume, which goes with the PVC) has PG_VERSION. */
  readonly dataDirKept: boolean;
}

/** replicasPerShard 2 -> 1 while the primary holds ordinal 2, the one that goes. */
export async function scaleDown(
  h: Harness,
  operator: ClusterAccess,
  kubelet: Kubelet,
): Promise<ScaleDownOutcome> {
  const last = h.members.find((m) => m.name === 'shop-db-0-2');
  if (!last) throw new Error('no member shop-db-0-2');
  await switchTo(h, last);
  const guarded: GuardedWrite[] = [];
  const probe = primaryProbe(h);
  const cluster = guarding(probe, operator, guarded);
  const lowered = appModel(h.ns, { ...databaseSpec(h.app), replicasPerShard: 1 });
  // The control for the PVC check: an object the garbage collector deletes when the removed
  // pod goes. Once it is gone, the collector has acted on that pod's deletion.
  const pod = JSON.parse(h.kubectl(['-n', h.ns, 'get', 'pod', last.name, '-o', 'json'])) as {
    metadata: { uid: string };
  };
  const sentinel = `gc-sentinel-${last.name}`;
  h.kubectl(
    ['apply', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: sentinel,
        namespace: h.ns,
        ownerReferences: [
          { apiVersion: 'v1', kind: 'Pod', name: last.name, uid: pod.metadata.uid },
        ],
      },
    }),
  );
  let heldReplicas = -1;
  const out = await measured(h, lowered, async () => {
    const sts = buildDatabase(lowered).find((o) => o.kind === 'StatefulSet');
    if (!sts) throw new Error('no StatefulSet');
    applyStatefulSet(lowered, h, sts);
    heldReplicas = replicasOf(h);
    return drive(lowered, h, cluster, async () =>
      replicasOf(h) === 2 && !h.pods().some((p) => p.metadata.name === last.name)
        ? arrived(h, lowered)
        : false,
    );
  }).finally(() => probe.close());
  await eventually(
    'the garbage collector to delete what the removed pod owned',
    async () =>
      h.kubectl(['-n', h.ns, 'get', 'configmap', sentinel, '--ignore-not-found', '-o', 'name']) ===
      ''
        ? true
        : undefined,
    120_000,
    500,
  );
  const pvcs = JSON.parse(h.kubectl(['-n', h.ns, 'get', 'pvc', '-o', 'json'])) as {
    items: Array<{
      metadata: { name: string; ownerReferences?: Array<{ kind: string; name: string }> };
    }>;
  };
  const pvc = pvcs.items.find((p) => p.metadata.name === pvcOf(last));
  // Two whole passes of the kubelet stand-in after that list: a claim gone by then has had
  // its volume deleted.
  const from = kubelet.passes();
  await eventually('two kubelet passes', async () =>
    kubelet.passes() >= from + 2 ? true : undefined,
  );
  return {
    ...out,
    guarded,
    heldReplicas,
    finalReplicas: replicasOf(h),
    pvcOwners: pvc && (pvc.metadata.ownerReferences ?? []).map((o) => `${o.kind}/${o.name}`),
    dataDirKept:
      !kubelet.volumesDeleted.has(last.name) && existsSync(join(last.dataDir, 'PG_VERSION')),
  };
}

function replicasOf(h: Harness): number {
  return Number(
    h.kubectl(['-n', h.ns, 'get', 'statefulset', 'shop-db-0', '-o', 'jsonpath={.spec.replicas}']),
  );
}

function databaseSpec(app: AppModel): Record<string, unknown> {
  const db = app.database;
  if (!db) throw new Error('no database');
  return {
    replicasPerShard: db.replicasPerShard,
    deletionPolicy: db.deletionPolicy,
    synchronous: db.synchronous,
  };
}

export interface SyncScaleDownOutcome extends Outcome {
  /** `<scope>-sync`'s standbys as the StatefulSet was lowered. */
  readonly syncAtScaleDown: readonly string[] | undefined;
  readonly finalReplicas: number;
}

/**
 * replicasPerShard 2 -> 1 on a synchronous shard whose synchronous standby is shop-db-0-2,
 * the ordinal that goes (the primary on one that stays). The StatefulSet lowered first would
 * leave the shard, for a loop or more, with no member Patroni may promote.
 */
export async function syncScaleDown(
  h: Harness,
  operator: ClusterAccess,
): Promise<SyncScaleDownOutcome> {
  const last = 'shop-db-0-2';
  /** The current primary's synchronous standbys (a `-sync` of an earlier primary names none). */
  const standbys = async (): Promise<string[]> =>
    eventually('the primary and its synchronous standby', async () => {
      const p = h.primaryOf(0);
      const cm = JSON.parse(
        h.kubectl(['-n', h.ns, 'get', 'configmap', 'shop-db-0-sync', '-o', 'json']),
      ) as { metadata: { annotations?: Record<string, string> } };
      const named = syncStandbysOf(h);
      return p && cm.metadata.annotations?.['leader'] === p.name && named.length > 0
        ? named
        : undefined;
    });
  const first = await settled(h);
  if (first.name === last) {
    // In synchronous mode Patroni hands over only to the synchronous standby.
    const [standby] = await standbys();
    if (!standby) throw new Error('no synchronous standby');
    requestSwitchover(h, last, standby);
    await eventually(`${standby} primary`, async () =>
      h.primaryOf(0)?.name === standby ? true : undefined,
    );
    await settled(h);
  }
  // Patroni keeps its synchronous standby while it stays connected: restart the other
  // replica (its pod deleted: the kubelet stand-in stops and starts its Patroni) until
  // Patroni names shop-db-0-2.
  for (let i = 0; i < 4 && !(await standbys()).includes(last); i++) {
    const [standby] = await standbys();
    if (standby && standby !== h.primaryOf(0)?.name)
      h.kubectl(['-n', h.ns, 'delete', 'pod', standby, '--wait=false']);
    await eventually(`${last} named synchronous standby`, async () =>
      (await standbys()).includes(last) ? true : undefined,
    ).catch(() => undefined);
    await settled(h);
  }
  if (!(await standbys()).includes(last)) throw new Error(`${last} never synchronous standby`);
  const guarded: GuardedWrite[] = [];
  const probe = primaryProbe(h);
  let syncAtScaleDown: string[] | undefined;
  const cluster = guarding(
    probe,
    {
      ...operator,
      async mergePatch(apiVersion, kind, namespace, name, body) {
        const sync = kind === 'StatefulSet' ? syncStandbysOf(h) : undefined;
        const out = await operator.mergePatch(apiVersion, kind, namespace, name, body);
        if (sync) syncAtScaleDown = sync;
        return out;
      },
    },
    guarded,
  );
  const lowered = appModel(h.ns, { ...databaseSpec(h.app), replicasPerShard: 1 });
  const out = await measured(h, lowered, async () => {
    const sts = buildDatabase(lowered).find((o) => o.kind === 'StatefulSet');
    if (!sts) throw new Error('no StatefulSet');
    applyStatefulSet(lowered, h, sts);
    return drive(lowered, h, cluster, async () =>
      replicasOf(h) === 2 && !h.pods().some((p) => p.metadata.name === last)
        ? arrived(h, lowered)
        : false,
    );
  }).finally(() => probe.close());
  return { ...out, guarded, syncAtScaleDown, finalReplicas: replicasOf(h) };
}

export interface RestartOutcome extends Outcome {
  /** What one step wrote after the apply, before Patroni's dynamic config had the change. */
  readonly heldWrites: readonly TimedWrite[];
  /** What the operator's afterApply wrote (the `-config` annotation). */
  readonly configWrites: readonly string[];
}

/**
 * A change of the restart-only parameters as a new operator brings it to a running shard:
 * the StatefulSet applied with the new pod template (its restart annotation), one step
 * (which must wait: Patroni's config does not have the change yet), the afterApply that
 * writes Patroni's dynamic config, then the steps until the shard has rolled.
 */
export async function restartRollout(h: Harness, operator: ClusterAccess): Promise<RestartOutcome> {
  const guarded: GuardedWrite[] = [];
  const probe = primaryProbe(h);
  const cluster = guarding(probe, operator, guarded);
  let heldWrites: TimedWrite[] = [];
  let configWrites: string[] = [];
  const out = await measured(h, h.app, async () => {
    const sts = buildDatabase(h.app).find((o) => o.kind === 'StatefulSet');
    if (!sts) throw new Error('no StatefulSet rendered');
    applyStatefulSet(h.app, h, sts);
    await eventually('the StatefulSet on a new revision', async () => {
      const o = await observe(h);
      const view = shardView(h.app, 0, o.objects[0], o.pods);
      return view.updateRevision !== undefined &&
        view.members.some((m) => m.revision !== view.updateRevision)
        ? true
        : undefined;
    });
    // Steps until one got as far as a write: it read the live config three times (the lock
    // twice, then the restart parameters right before a deletion), or it wrote. A step
    // planned from a cache behind the API server stops earlier (rollout-step.ts).
    let configReads = 0;
    const counting: ClusterAccess = {
      ...cluster,
      async get(apiVersion, kind, namespace, name) {
        if (kind === 'ConfigMap' && name === 'shop-db-0-config') configReads++;
        return cluster.get(apiVersion, kind, namespace, name);
      },
    };
    const held: TimedWrite[] = [];
    await eventually(
      'a step that reached the deletion of a member',
      async () => {
        configReads = 0;
        for (const w of await step(h.app, h, counting)) held.push({ ...w, at: performance.now() });
        return held.length > 0 || configReads >= 3 ? true : undefined;
      },
      120_000,
      200,
    );
    heldWrites = held;
    configWrites = (await syncPatroniConfig(h.app, cluster)).map(
      (w) => `${w.action} ${w.kind} ${w.name}`,
    );
    return drive(h.app, h, cluster, () => arrived(h, h.app));
  }).finally(() => probe.close());
  return { ...out, guarded, heldWrites, configWrites };
}
