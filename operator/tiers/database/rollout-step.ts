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
import type { ClusterAccess, HookWrite } from '../tier.ts';
import { DATABASE_LABEL, SCOPE_LABEL, shardIndexes, shardName } from './names.ts';
import { chooseCandidate, planShard, sameAction, shardView } from './rollout.ts';
import type { RolloutAction } from './rollout.ts';
import { rolloutGate } from './rollout-gate.ts';
import type { RolloutGate } from './rollout-gate.ts';

type Json = Record<string, unknown>;

export const failoverConfigMapName = (scope: string): string => `${scope}-failover`;
export const syncConfigMapName = (scope: string): string => `${scope}-sync`;
/** Patroni's leader lock: annotation `leader` names the member holding it. */
export const leaderConfigMapName = (scope: string): string => `${scope}-leader`;

const annotationsOf = (o: Json | undefined): Record<string, string> =>
  ((o?.['metadata'] as Json | undefined)?.['annotations'] ?? {}) as Record<string, string>;

/** The pods and StatefulSet of a shard as the API server has them now (not the cache). */
async function freshView(app: AppModel, shard: number, cluster: ClusterAccess) {
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

/** Synchronous standbys Patroni has named (`<scope>-sync`), when synchronous mode is on. */
async function syncStandbys(
  app: AppModel,
  scope: string,
  cluster: ClusterAccess,
): Promise<string[] | undefined> {
  if (!app.database?.synchronous) return undefined;
  const sync = await cluster.get('v1', 'ConfigMap', app.namespace, syncConfigMapName(scope));
  const value = annotationsOf(sync)['sync_standby'] ?? '';
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
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
  // follow: labels still naming the old primary would make a second, stale request (seen
  // in the engine test under load; Patroni drops it, but it is a write for nothing).
  const lock = await cluster.get('v1', 'ConfigMap', app.namespace, leaderConfigMapName(scope));
  if (annotationsOf(lock)['leader'] !== action.from) return [];
  const member = chooseCandidate(action.candidates, await syncStandbys(app, scope, cluster));
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

async function execute(
  app: AppModel,
  scope: string,
  action: RolloutAction,
  cluster: ClusterAccess,
): Promise<HookWrite[]> {
  switch (action.type) {
    case 'deletePod':
      await cluster.delete('v1', 'Pod', app.namespace, action.pod, action.uid);
      return [{ action: 'Deleted', kind: 'Pod', name: action.pod, why: action.why }];
    case 'scaleDown':
      await cluster.mergePatch('apps/v1', 'StatefulSet', app.namespace, scope, {
        spec: { replicas: action.replicas },
      });
      return [{ action: 'Updated', kind: 'StatefulSet', name: scope, why: action.why }];
    case 'switchover':
      return requestSwitchover(app, scope, action, cluster);
    default:
      return [];
  }
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
    return { shard, scope, cached: planShard(shardView(app, shard, sts, observed.pods)).action };
  });
  if (!planned.some((p) => acts(p.cached))) {
    gate.leave(appKey);
    return [];
  }
  // One app rolls at a time (rollout-gate.ts); this one waits for a later reconcile.
  if (!gate.tryEnter(appKey)) return [];
  const writes: HookWrite[] = [];
  for (const { shard, scope, cached } of planned) {
    if (!acts(cached)) continue;
    // The informer cache can lag a pod event: act only when the API server's view agrees.
    const fresh = planShard(await freshView(app, shard, cluster)).action;
    if (!sameAction(cached, fresh)) continue;
    writes.push(...(await execute(app, scope, fresh, cluster)));
  }
  return writes;
}
