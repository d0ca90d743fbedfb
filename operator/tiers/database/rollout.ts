// The rollout planner: from what is observed of one shard (its StatefulSet and pods), the
// ONE next thing the operator should do. Pure, so every case is a unit test.
//
// Why the operator rolls shards itself (updateStrategy OnDelete): the StatefulSet controller
// restarts pods in ordinal order wherever Patroni's primary is, so a rollout could cost two
// failovers per shard. Here the order is: outdated replicas one at a time (only while every
// other member is ready), then a Patroni switchover to an up-to-date ready replica, then the
// old primary, now a replica. Scale-downs remove the highest ordinals: when the primary holds
// one of them it is switched over to a surviving ordinal first, and only then are replicas
// lowered (the adjust hook never lowers them through apply, see holdReplicas).
import type { AppModel } from '../../api/model.ts';
import type { K8sObject } from '../shared/chart.ts';
import type { ObservedObject } from '../shared/report.ts';
import { PATRONI_TTL_FLOOR, releaseInFlight } from './lease-break.ts';
import type { LeaderRecord } from './lease-break.ts';
import {
  DATABASE_LABEL,
  PRIMARY_ROLE,
  REPLICA_ROLE,
  ROLE_LABEL,
  SCOPE_LABEL,
  shardName,
} from './names.ts';

/** The StatefulSet controller's label: the revision a pod was created from. */
export const REVISION_LABEL = 'controller-revision-hash';

export interface Member {
  readonly name: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
  readonly ordinal: number;
  readonly revision?: string;
  readonly role?: string;
  readonly ready: boolean;
  readonly deleting: boolean;
}

/**
 * Patroni's live state of a shard, read from its ConfigMaps just before a step acts (never
 * from the cache): who holds the leader lock, whether a release by the operator is in
 * flight, and the synchronous standbys when synchronous mode is on.
 */
export interface LockView {
  /** The member named by `<scope>-leader`; undefined while the lock is free. */
  readonly holder: string | undefined;
  /** A release recorded on the lock within the last two leases (lease-break.ts). */
  readonly releasing: boolean;
  /** Live synchronous_mode: Patroni switches over only to a member named here. */
  readonly synchronous: boolean;
  /** `<scope>-sync`'s standbys, when it names the holder; else none are known. */
  readonly syncStandbys: readonly string[];
}

/**
 * The lock view from Patroni's ConfigMaps as read from the API server (leaderRecordOf): the
 * live synchronous_mode when the config says, else the spec's; the standbys of a `-sync`
 * key only when it names the lock holder (else they belong to an earlier primary).
 */
export function lockViewOf(
  leader: LeaderRecord | undefined,
  config: LeaderRecord | undefined,
  sync: LeaderRecord | undefined,
  specSynchronous: boolean,
  wallNowMs: number,
): LockView {
  const holder = leader?.leader;
  const ttl = config?.config?.ttl ?? PATRONI_TTL_FLOOR;
  return {
    holder,
    releasing: releaseInFlight(leader?.released, ttl, wallNowMs),
    synchronous: config?.config?.synchronous_mode ?? specSynchronous,
    syncStandbys:
      holder !== undefined && sync?.leader === holder ? [...(sync.syncStandbys ?? [])] : [],
  };
}

export interface ShardView {
  readonly scope: string;
  /**
   * The lock as Patroni has it. Every action needs it (the planner waits without it): the
   * lock, not a role label that can lag a failover, says which member is the primary.
   */
  readonly lock?: LockView;
  /** replicasPerShard + 1, from the spec. */
  readonly desiredReplicas: number;
  /** The live StatefulSet's spec.replicas; undefined when it does not exist yet. */
  readonly liveReplicas?: number;
  /** status.updateRevision, only when the controller has seen the latest spec. */
  readonly updateRevision?: string;
  /** The live StatefulSet's resourceVersion. */
  readonly resourceVersion?: string;
  readonly members: readonly Member[];
}

export type RolloutAction =
  | { readonly type: 'none' }
  | { readonly type: 'wait'; readonly why: string }
  | {
      readonly type: 'deletePod';
      readonly pod: string;
      readonly uid?: string;
      /** The pod as the plan saw it: a relabel or restart since makes the delete conflict. */
      readonly resourceVersion?: string;
      readonly why: string;
    }
  | {
      readonly type: 'switchover';
      readonly from: string;
      /** Ready replicas that may take over, best first. */
      readonly candidates: readonly string[];
      readonly why: string;
    }
  | {
      readonly type: 'scaleDown';
      readonly replicas: number;
      /** The StatefulSet as the plan saw it: the patch conflicts if it changed since. */
      readonly resourceVersion?: string;
      readonly why: string;
    };

export interface ShardPlan {
  /** Rolling or waiting to scale down: the shard is not where the spec wants it. */
  readonly busy: boolean;
  readonly action: RolloutAction;
}

const IDLE: ShardPlan = { busy: false, action: { type: 'none' } };

const labelsOf = (o: ObservedObject | K8sObject) => o.metadata.labels ?? {};

export function isReadyPod(pod: ObservedObject): boolean {
  const conditions = (pod.status?.['conditions'] ?? []) as Array<{
    type?: string;
    status?: string;
  }>;
  return conditions.some((c) => c.type === 'Ready' && c.status === 'True');
}

/** The pods of one shard, by the labels Patroni selects its members by. */
export function shardPods(
  app: AppModel,
  shard: number,
  pods: readonly ObservedObject[],
): ObservedObject[] {
  const scope = shardName(app, shard);
  return pods.filter(
    (p) => labelsOf(p)[DATABASE_LABEL] === app.name && labelsOf(p)[SCOPE_LABEL] === scope,
  );
}

function memberOf(scope: string, pod: ObservedObject): Member | undefined {
  const suffix = pod.metadata.name.slice(scope.length + 1);
  if (!pod.metadata.name.startsWith(`${scope}-`) || !/^\d+$/.test(suffix)) return undefined;
  const labels = labelsOf(pod);
  const meta = pod.metadata as {
    uid?: string;
    resourceVersion?: string;
    deletionTimestamp?: string;
  };
  return {
    name: pod.metadata.name,
    ...(meta.uid ? { uid: meta.uid } : {}),
    ...(meta.resourceVersion ? { resourceVersion: meta.resourceVersion } : {}),
    ordinal: Number(suffix),
    ...(labels[REVISION_LABEL] ? { revision: labels[REVISION_LABEL] } : {}),
    ...(labels[ROLE_LABEL] ? { role: labels[ROLE_LABEL] } : {}),
    ready: isReadyPod(pod),
    deleting: meta.deletionTimestamp !== undefined,
  };
}

/** What the planner needs of a shard, from the live StatefulSet (if any) and the pods. */
export function shardView(
  app: AppModel,
  shard: number,
  statefulSet: ObservedObject | undefined,
  pods: readonly ObservedObject[],
): ShardView {
  const scope = shardName(app, shard);
  const spec = statefulSet?.['spec'] as { replicas?: number } | undefined;
  const status = statefulSet?.status as
    { observedGeneration?: number; updateRevision?: string } | undefined;
  const stsMeta = statefulSet?.metadata as
    { generation?: number; resourceVersion?: string } | undefined;
  const generation = stsMeta?.generation;
  // An updateRevision from before the latest spec change would call new pods outdated.
  const current =
    status?.updateRevision !== undefined &&
    (generation === undefined || (status.observedGeneration ?? 0) >= generation);
  return {
    scope,
    desiredReplicas: (app.database?.replicasPerShard ?? 0) + 1,
    ...(statefulSet ? { liveReplicas: spec?.replicas ?? 1 } : {}),
    ...(stsMeta?.resourceVersion ? { resourceVersion: stsMeta.resourceVersion } : {}),
    ...(current ? { updateRevision: status.updateRevision } : {}),
    members: shardPods(app, shard, pods)
      .map((p) => memberOf(scope, p))
      .filter((m): m is Member => m !== undefined)
      .sort((a, b) => a.ordinal - b.ordinal),
  };
}

const names = (ms: readonly Member[]) => ms.map((m) => m.name).join(', ');

/** Replicas that may take over from `primary`: ready, labelled replica, best first. */
function candidatesFor(
  members: readonly Member[],
  primary: Member,
  keep: (m: Member) => boolean,
  updateRevision: string | undefined,
): string[] {
  return members
    .filter((m) => m !== primary && m.ready && !m.deleting && m.role === REPLICA_ROLE && keep(m))
    .sort(
      (a, b) =>
        Number(b.revision === updateRevision) - Number(a.revision === updateRevision) ||
        a.ordinal - b.ordinal,
    )
    .map((m) => m.name);
}

/**
 * Why the lock forbids any step now, if it does. The lock, not the role label, names the
 * primary: after a failover by lock release the labels lag (the old primary may be frozen
 * and never relabel itself), so a step planned from labels alone could restart or scale
 * away the member that just took over. A release in flight (recorded on the lock by the
 * operator) means a takeover and a fence are under way: nothing moves until they are done.
 */
export function lockBlocks(lock: LockView, primary: Member): string | undefined {
  if (lock.holder === undefined) return 'the leader lock is free: a failover is under way';
  if (lock.holder !== primary.name)
    return `the leader lock is held by ${lock.holder}, not by the labelled primary ${primary.name}`;
  if (lock.releasing) return 'a release of the leader lock by the operator is in flight';
  return undefined;
}

const deleteMember = (m: Member, why: string): RolloutAction => ({
  type: 'deletePod',
  pod: m.name,
  ...(m.uid ? { uid: m.uid } : {}),
  ...(m.resourceVersion ? { resourceVersion: m.resourceVersion } : {}),
  why,
});

/**
 * A scale-down of a synchronous shard keeps a synchronous standby: it goes ahead only once
 * Patroni names a ready member that survives it (else the shard would be left with no member
 * Patroni may promote until it names another). Patroni keeps its current synchronous standby
 * while that one stays connected, so when it sits on an ordinal that goes, it is restarted
 * (as a rollout restarts any replica; commits wait for a loop, none is acknowledged unsafely)
 * while a surviving replica is ready: Patroni then names a survivor and keeps it. Only a
 * ready one is restarted: its replacement, still starting, streams nothing, and Patroni
 * names a survivor within a loop (restarting it again would be a restart for nothing).
 * Undefined when the scale-down may go ahead. Scaling to the primary alone keeps no standby
 * (asked for).
 */
export function syncStandbyAction(
  lock: LockView | undefined,
  current: readonly Member[],
  primary: Member,
  desired: number,
): RolloutAction | undefined {
  if (!lock?.synchronous || desired < 2) return undefined;
  const survivors = current.filter(
    (m) => m !== primary && m.ordinal < desired && m.ready && !m.deleting,
  );
  if (survivors.some((m) => lock.syncStandbys.includes(m.name))) return undefined;
  const goingSync = current.find(
    (m) =>
      m !== primary &&
      m.ordinal >= desired &&
      m.ready &&
      !m.deleting &&
      lock.syncStandbys.includes(m.name),
  );
  if (goingSync && survivors.length > 0)
    return deleteMember(
      goingSync,
      `the synchronous standby ${goingSync.name} is on an ordinal the scale-down removes: ` +
        `restarting it so Patroni names one of ${names(survivors)}`,
    );
  return {
    type: 'wait',
    why: `waiting for Patroni to name a synchronous standby below ordinal ${desired} (now: ${
      lock.syncStandbys.join(', ') || 'none'
    })`,
  };
}

/**
 * The one next step for a shard; `busy` says whether it is rolling or scaling down. The step
 * hook always passes the live lock (view.lock) and every action waits on it; without one
 * (the status, from the cache) the plan only describes what is next.
 */
export function planShard(view: ShardView): ShardPlan {
  const { liveReplicas, desiredReplicas, updateRevision } = view;
  if (liveReplicas === undefined) return IDLE;
  // Pods above the live replicas are on their way out; they take no part.
  const current = view.members.filter((m) => m.ordinal < liveReplicas);
  const outdated =
    updateRevision === undefined ? [] : current.filter((m) => m.revision !== updateRevision);
  const scaleDown = desiredReplicas < liveReplicas;
  if (!scaleDown && outdated.length === 0) return IDLE;
  const busy = (action: RolloutAction): ShardPlan => ({ busy: true, action });

  const primaries = current.filter((m) => m.role === PRIMARY_ROLE && !m.deleting);
  if (primaries.length > 1)
    return busy({ type: 'wait', why: `more than one pod labelled primary: ${names(primaries)}` });
  const primary = primaries[0];
  if (!primary || !primary.ready)
    return busy({ type: 'wait', why: 'waiting for Patroni to elect a ready primary' });
  const blocked = view.lock && lockBlocks(view.lock, primary);
  if (blocked) return busy({ type: 'wait', why: blocked });
  const notReady = current.filter((m) => !m.ready || m.deleting);
  const missing = liveReplicas - current.length;
  const allReady = notReady.length === 0 && missing === 0;
  const waitReady = busy({
    type: 'wait',
    why:
      notReady.length > 0
        ? `waiting for ${names(notReady)} to be ready`
        : `waiting for ${missing} pod(s) to be created`,
  });

  if (scaleDown) {
    // Removing replicas that are not ready is harmless once the primary and a synchronous
    // standby survive.
    if (primary.ordinal < desiredReplicas) {
      const sync = syncStandbyAction(view.lock, current, primary, desiredReplicas);
      if (sync) return busy(sync);
      return busy({
        type: 'scaleDown',
        replicas: desiredReplicas,
        ...(view.resourceVersion ? { resourceVersion: view.resourceVersion } : {}),
        why: `the primary ${primary.name} survives; removing ordinals >= ${desiredReplicas}`,
      });
    }
    if (!allReady) return waitReady;
    const lock = view.lock;
    const candidates = candidatesFor(
      current,
      primary,
      (m) =>
        m.ordinal < desiredReplicas && (!lock?.synchronous || lock.syncStandbys.includes(m.name)),
      updateRevision,
    );
    // Patroni hands over only to a synchronous standby: one that survives, or none yet.
    if (candidates.length === 0 && lock?.synchronous) {
      const sync = syncStandbyAction(lock, current, primary, desiredReplicas);
      if (sync) return busy(sync);
    }
    if (candidates.length === 0)
      return busy({
        type: 'wait',
        why: `no ready replica below ordinal ${desiredReplicas} to take over from ${primary.name}`,
      });
    return busy({
      type: 'switchover',
      from: primary.name,
      candidates,
      why: `scale-down to ${desiredReplicas} would remove the primary ${primary.name}`,
    });
  }

  if (!allReady) return waitReady;
  const outdatedReplicas = outdated.filter((m) => m !== primary);
  const next = outdatedReplicas.at(-1); // highest ordinal first, as the controller would
  if (next)
    return busy(
      deleteMember(
        next,
        `replica on an old revision (${outdated.length} of ${liveReplicas} pods to update)`,
      ),
    );
  // Only the primary is left on the old revision.
  const candidates = candidatesFor(
    current,
    primary,
    (m) => m.revision === updateRevision,
    updateRevision,
  );
  if (candidates.length > 0)
    return busy({
      type: 'switchover',
      from: primary.name,
      candidates,
      why: `every replica is updated; the primary ${primary.name} is next`,
    });
  if (current.length === 1)
    return busy(deleteMember(primary, 'the only member: no replica to hand over to'));
  return busy({ type: 'wait', why: `no updated ready replica to take over from ${primary.name}` });
}

/**
 * In synchronous mode Patroni switches over only to a synchronous standby (it clears any
 * other request), so the candidates narrow to those; else the planner's order stands.
 */
export function chooseCandidate(
  candidates: readonly string[],
  syncStandbys: readonly string[] | undefined,
): string | undefined {
  if (syncStandbys === undefined) return candidates[0];
  return candidates.find((c) => syncStandbys.includes(c));
}

/** The same action: the step acts only when the API server's view agrees with the cache. */
export function sameAction(a: RolloutAction, b: RolloutAction): boolean {
  if (a.type !== b.type) return false;
  if (a.type === 'deletePod' && b.type === 'deletePod') return a.pod === b.pod && a.uid === b.uid;
  if (a.type === 'switchover' && b.type === 'switchover') return a.from === b.from;
  if (a.type === 'scaleDown' && b.type === 'scaleDown') return a.replicas === b.replicas;
  return true;
}

/**
 * The StatefulSet to apply, given the live one: replicas are never lowered through apply,
 * since the controller would remove the highest ordinals wherever the primary is. The step
 * lowers them once the primary is on a surviving ordinal (planShard's scaleDown).
 */
export function holdReplicas(desired: K8sObject, live: ObservedObject | undefined): K8sObject {
  const want = (desired['spec'] as { replicas?: number } | undefined)?.replicas;
  const have = (live?.['spec'] as { replicas?: number } | undefined)?.replicas;
  if (want === undefined || have === undefined || have <= want) return desired;
  return { ...desired, spec: { ...(desired['spec'] as object), replicas: have } };
}
