// The database tier's step hook: carries out what the rollout planner (rollout.ts) decides,
// one action per shard per reconcile. Pod events bring the next reconcile, so a rollout
// advances as fast as pods become ready, and stops wherever a member is not.
//
// The switchover goes through Patroni's own DCS, not its REST API: Patroni's Kubernetes DCS
// reads a manual failover request from the annotations `leader`, `member` (and optional
// `scheduled_at`) of the ConfigMap `<scope>-failover` (patroni/dcs/kubernetes.py,
// _cluster_loader + manual_failover; the same in 3.0 and 4.x). The leader named in `leader`
// demotes itself gracefully and the `member` takes over (ha.py,
// process_manual_failover_from_leader); a request naming another leader is dropped, so a
// stale view never moves the primary twice. The operator needs no network path to the pods.
import type { AppModel } from '../../api/model.ts';
import type { Observed, ObservedObject } from '../shared/report.ts';
import { ConflictError } from '../tier.ts';
import type { ClusterAccess, HookWrite } from '../tier.ts';
import { leaderRecordOf } from './lease-break.ts';
import { DATABASE_LABEL, SCOPE_LABEL, shardIndexes, shardName } from './names.ts';
import { chooseCandidate, lockViewOf, planShard, sameAction, shardView } from './rollout.ts';
import type { LockView, RolloutAction, ShardView } from './rollout.ts';
import { rolloutGate } from './rollout-gate.ts';
import { dcsConfigMapName, restartParametersLag } from './patroni-config.ts';
import type { RolloutGate } from './rollout-gate.ts';

type Json = Record<string, unknown>;

export const failoverConfigMapName = (scope: string): string => `${scope}-failover`;
export const syncConfigMapName = (scope: string): string => `${scope}-sync`;
/** Patroni's leader lock: annotation `leader` names the member holding it. */
export const leaderConfigMapName = (scope: string): string => `${scope}-leader`;

const annotationsOf = (o: Json | undefined): Record<string, string> =>
  ((o?.['metadata'] as Json | undefined)?.['annotations'] ?? {}) as Record<string, string>;

/** Patroni's lock, config and sync keys of a shard as the API server has them now. */
export async function readLock(
  app: AppModel,
  scope: string,
  cluster: ClusterAccess,
  wallNowMs = Date.now(),
): Promise<LockView> {
  const read = async (name: string) => {
    const cm = await cluster.get('v1', 'ConfigMap', app.namespace, name);
    return cm ? leaderRecordOf(cm) : undefined;
  };
  const [leader, config, sync] = await Promise.all([
    read(leaderConfigMapName(scope)),
    read(`${scope}-config`),
    read(syncConfigMapName(scope)),
  ]);
  return lockViewOf(leader, config, sync, app.database?.synchronous ?? false, wallNowMs);
}

/** The lock is as it was when the step was planned (same holder, still no release). */
const sameLock = (a: LockView, b: LockView): boolean =>
  a.holder === b.holder &&
  a.releasing === b.releasing &&
  a.synchronous === b.synchronous &&
  a.syncStandbys.join(',') === b.syncStandbys.join(',');

/** The pods and StatefulSet of a shard as the API server has them now (not the cache). */
async function freshView(app: AppModel, shard: number, cluster: ClusterAccess): Promise<ShardView> {
  const scope = shardName(app, shard);
  const [sts, pods] = await Promise.all([
    cluster.get('apps/v1', 'StatefulSet', app.namespace, scope),
    cluster.list(
      'v1',
      'Pod',
      app.namespace,
      `${DATABASE_LABEL}=${app.name},${SCOPE_LABEL}=${scope}`,
    ),
  ]);
  return shardView(
    app,
    shard,
    sts as ObservedObject | undefined,
    pods as unknown as ObservedObject[],
  );
}

/** The labels Patroni lists its ConfigMaps by: without them it would never see the request. */
const patroniLabels = (app: AppModel, scope: string) => ({
  [DATABASE_LABEL]: app.name,
  [SCOPE_LABEL]: scope,
});

async function requestSwitchover(
  app: AppModel,
  scope: string,
  action: Extract<RolloutAction, { type: 'switchover' }>,
  cluster: ClusterAccess,
): Promise<HookWrite[]> {
  const name = failoverConfigMapName(scope);
  const cm = await cluster.get('v1', 'ConfigMap', app.namespace, name);
  const pending = annotationsOf(cm);
  if (pending['leader'] || pending['member']) return []; // Patroni has not taken it up yet
  // Patroni moves the leader lock, and clears the request, before the pods' role labels
  // follow: labels still naming the old primary would make a second, stale request (Patroni
  // drops it, but it is a write for nothing). The lock is read after the request key: the
  // new leader clears the key only once it holds the lock, so a key read empty after that
  // is followed by a lock read that names the new leader (read the other way round, the
  // engine test under load wrote a second request 1.4 s after the lock had moved). Patroni
  // takes a request only from the leader it names.
  const lock = await readLock(app, scope, cluster);
  if (lock.holder !== action.from || lock.releasing) return [];
  const member = chooseCandidate(
    action.candidates,
    lock.synchronous ? lock.syncStandbys : undefined,
  );
  if (!member) return []; // no synchronous standby among the candidates yet
  const annotations = { leader: action.from, member };
  const why = `switchover ${action.from} -> ${member}: ${action.why}`;
  if (cm) {
    const rv = (cm['metadata'] as Json | undefined)?.['resourceVersion'];
    // scheduled_at null: a stale schedule must not delay this one.
    await cluster.mergePatch('v1', 'ConfigMap', app.namespace, name, {
      metadata: { resourceVersion: rv, annotations: { ...annotations, scheduled_at: null } },
    });
    return [{ action: 'Updated', kind: 'ConfigMap', name, why }];
  }
  await cluster.create('v1', 'ConfigMap', app.namespace, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace: app.namespace, labels: patroniLabels(app, scope), annotations },
  });
  return [{ action: 'Created', kind: 'ConfigMap', name, why }];
}

/**
 * Carries out one action, each write under a precondition on what the plan saw: the pod's
 * uid and resourceVersion (a pod relabelled, e.g. by a promotion, or replaced since is not
 * deleted), the StatefulSet's resourceVersion, the leader Patroni names in a switchover.
 * A failed precondition is no write; the change that failed it brings the next reconcile.
 */
async function execute(
  app: AppModel,
  scope: string,
  action: RolloutAction,
  cluster: ClusterAccess,
): Promise<HookWrite[]> {
  try {
    switch (action.type) {
      case 'deletePod':
        await cluster.delete(
          'v1',
          'Pod',
          app.namespace,
          action.pod,
          action.uid,
          undefined,
          action.resourceVersion,
        );
        return [{ action: 'Deleted', kind: 'Pod', name: action.pod, why: action.why }];
      case 'scaleDown':
        await cluster.mergePatch('apps/v1', 'StatefulSet', app.namespace, scope, {
          metadata: action.resourceVersion ? { resourceVersion: action.resourceVersion } : {},
          spec: { replicas: action.replicas },
        });
        return [{ action: 'Updated', kind: 'StatefulSet', name: scope, why: action.why }];
      case 'switchover':
        return await requestSwitchover(app, scope, action, cluster);
      default:
        return [];
    }
  } catch (err) {
    if (err instanceof ConflictError) return [];
    throw err;
  }
}

async function restartConfigLags(
  app: AppModel,
  shard: number,
  cluster: ClusterAccess,
): Promise<boolean> {
  const cm = await cluster.get('v1', 'ConfigMap', app.namespace, dcsConfigMapName(app, shard));
  return restartParametersLag(cm ? annotationsOf(cm)['config'] : undefined);
}

const acts = (a: RolloutAction) =>
  a.type === 'deletePod' || a.type === 'switchover' || a.type === 'scaleDown';

/** One rollout step per shard that has one; nothing (and no request) when all are idle. */
export async function stepRollouts(
  app: AppModel,
  observed: Observed,
  cluster: ClusterAccess,
  gate: RolloutGate = rolloutGate,
): Promise<HookWrite[]> {
  if (!app.database) return [];
  const appKey = `${app.namespace}/${app.name}`;
  const planned = shardIndexes(app).map((shard) => {
    const scope = shardName(app, shard);
    const sts = observed.objects.find((o) => o.kind === 'StatefulSet' && o.metadata.name === scope);
    return { shard, scope, view: shardView(app, shard, sts, observed.pods) };
  });
  const cachedActs = planned.some((p) => acts(planShard(p.view).action));
  if (!cachedActs) {
    gate.leave(appKey);
    return [];
  }
  // One app rolls at a time (rollout-gate.ts); this one waits for a later reconcile.
  if (!gate.tryEnter(appKey)) return [];
  const writes: HookWrite[] = [];
  for (const { shard, scope, view } of planned) {
    if (!acts(planShard(view).action)) continue;
    // The lock first: the plan waits unless its holder is the labelled primary and no
    // release is in flight (rollout.ts, lockBlocks).
    const lock = await readLock(app, scope, cluster);
    const cached = planShard({ ...view, lock }).action;
    if (!acts(cached)) continue;
    // The informer cache can lag a pod event: act only when the API server's view agrees.
    const fresh = planShard({ ...(await freshView(app, shard, cluster)), lock }).action;
    if (!sameAction(cached, fresh)) continue;
    // The lock again, right before the write: a takeover since the plan stops it.
    const now = await readLock(app, scope, cluster);
    if (!sameLock(lock, now)) continue;
    // A member restarted while Patroni's dynamic config still has the old restart-only
    // parameters (its sync failed or is not through yet) would come back up to date by its
    // pod and with the old values: no deletion until the config has them (dcs-sync.ts).
    if (fresh.type === 'deletePod' && (await restartConfigLags(app, shard, cluster))) continue;
    writes.push(...(await execute(app, scope, fresh, cluster)));
  }
  return writes;
}
