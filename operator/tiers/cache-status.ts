// Pure: the cache and session store's verdicts from the observed children. CacheReady and
// status.cache for the cache Redis (+ Sentinels), SessionsReady and status.sessions for the
// session store. A tier that is off reports nothing (its condition should be removed).
// Status True means "usable": a replicated cache that lost a replica but still has a master
// and a Sentinel quorum is True with reason Degraded.
import type { AppModel } from '../api/model.ts';
import type { Observed, ObservedObject, TierCondition, TierReport } from '../status/types.ts';
import { cacheNames } from './cache.ts';
import { APP_LABEL, TIER_LABEL } from './meta.ts';
import type { Tier } from './meta.ts';
import { SENTINEL_COUNT, SENTINEL_QUORUM } from './redis-config.ts';
import { sessionsNames } from './sessions.ts';

export const CACHE_READY = 'CacheReady';
export const SESSIONS_READY = 'SessionsReady';

export function cacheReport(app: AppModel, observed: Observed): TierReport[] {
  return [
    ...(app.cache ? [cacheTier(app, app.cache, observed)] : []),
    ...(app.sessions ? [sessionsTier(app, observed)] : []),
  ];
}

interface Workload {
  readonly kind: string;
  readonly name: string;
  readonly found: boolean;
  readonly desired: number;
  readonly replicas: number;
  readonly ready: number;
  /** Pods still on an older template (rollout in progress). */
  readonly outdated: boolean;
}

type Status = Record<string, unknown>;
const num = (v: unknown): number => (typeof v === 'number' ? v : 0);

function workload(observed: Observed, kind: string, name: string, desired: number): Workload {
  const o = find(observed, kind, name);
  const s: Status = o?.status ?? {};
  const generation = num((o?.metadata as { generation?: unknown } | undefined)?.generation);
  const outdated =
    o !== undefined &&
    (num(s['observedGeneration']) < generation || num(s['updatedReplicas']) < desired);
  return {
    kind,
    name,
    found: o !== undefined,
    desired,
    replicas: num(s['replicas']),
    ready: num(s['readyReplicas']),
    outdated,
  };
}

const find = (observed: Observed, kind: string, name: string): ObservedObject | undefined =>
  observed.objects.find((o) => o.kind === kind && o.metadata.name === name);

function missing(observed: Observed, wanted: ReadonlyArray<[string, string]>): string[] {
  return wanted.filter(([k, n]) => !find(observed, k, n)).map(([k, n]) => `${k} ${n}`);
}

const WAITING_PROBLEMS = new Set([
  'CrashLoopBackOff',
  'ImagePullBackOff',
  'ErrImagePull',
  'InvalidImageName',
  'CreateContainerConfigError',
  'CreateContainerError',
]);

/** The first pod of the tier that is stuck, as a reason and a message. */
export function podProblem(
  app: AppModel,
  observed: Observed,
  tier: Tier,
): { reason: string; message: string } | undefined {
  for (const pod of observed.pods) {
    const labels = pod.metadata.labels ?? {};
    if (labels[APP_LABEL] !== app.name || labels[TIER_LABEL] !== tier) continue;
    const status = (pod.status ?? {}) as {
      conditions?: Array<{ type?: string; status?: string; reason?: string; message?: string }>;
      containerStatuses?: Array<{
        name?: string;
        state?: { waiting?: { reason?: string; message?: string } };
      }>;
    };
    for (const c of status.containerStatuses ?? []) {
      const w = c.state?.waiting;
      if (w?.reason && WAITING_PROBLEMS.has(w.reason)) {
        return {
          reason: w.reason,
          message: `pod ${pod.metadata.name} container ${c.name ?? '?'}: ${w.reason}${w.message ? `: ${w.message}` : ''}`,
        };
      }
    }
    const sched = (status.conditions ?? []).find(
      (c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable',
    );
    if (sched) {
      return {
        reason: 'Unschedulable',
        message: `pod ${pod.metadata.name}: ${sched.message ?? 'unschedulable'}`,
      };
    }
  }
  return undefined;
}

const ratio = (w: Workload) => `${w.ready}/${w.desired}`;

const tierStatus = (w: Workload) => ({
  replicas: w.replicas,
  readyReplicas: w.ready,
  ready: ratio(w),
});

const condition = (
  type: string,
  status: TierCondition['status'],
  reason: string,
  message: string,
): TierCondition => ({ type, status, reason, message });

function cacheTier(
  app: AppModel,
  cache: NonNullable<AppModel['cache']>,
  observed: Observed,
): TierReport {
  const n = cacheNames(app);
  const replicated = cache.replicas > 0;
  const redis = workload(
    observed,
    replicated ? 'StatefulSet' : 'Deployment',
    n.cache,
    replicated ? cache.replicas + 1 : 1,
  );
  const sentinel = replicated
    ? workload(observed, 'StatefulSet', n.sentinel, SENTINEL_COUNT)
    : undefined;
  const report = (status: TierCondition['status'], reason: string, message: string) => ({
    condition: condition(CACHE_READY, status, reason, message),
    statusKey: 'cache',
    status: tierStatus(redis),
  });

  const absent = missing(observed, [
    ['Secret', n.auth],
    [redis.kind, redis.name],
    ...(sentinel ? [[sentinel.kind, sentinel.name] as [string, string]] : []),
  ]);
  if (absent.length > 0) return report('False', 'Creating', `waiting for ${absent.join(', ')}`);

  const counts =
    `${ratio(redis)} Redis pods ready` +
    (sentinel ? `, ${ratio(sentinel)} Sentinels ready (quorum ${SENTINEL_QUORUM})` : '');
  const usable = redis.ready >= 1 && (!sentinel || sentinel.ready >= SENTINEL_QUORUM);
  if (!usable) {
    const problem = podProblem(app, observed, 'cache');
    if (problem) return report('False', problem.reason, `${counts}; ${problem.message}`);
    if (sentinel && sentinel.ready < SENTINEL_QUORUM && redis.ready >= 1)
      return report('False', 'NoSentinelQuorum', `${counts}: no failover and no master discovery`);
    return report('False', 'NotReady', counts);
  }
  const allReady =
    redis.ready >= redis.desired && (!sentinel || sentinel.ready >= sentinel.desired);
  if (!allReady) return report('True', 'Degraded', counts);
  if (redis.outdated || sentinel?.outdated)
    return report('True', 'Updating', `${counts}; rolling out`);
  return report('True', 'Ready', counts);
}

function sessionsTier(app: AppModel, observed: Observed): TierReport {
  const n = sessionsNames(app);
  const redis = workload(observed, 'StatefulSet', n.sessions, 1);
  const report = (status: TierCondition['status'], reason: string, message: string) => ({
    condition: condition(SESSIONS_READY, status, reason, message),
    statusKey: 'sessions',
    status: tierStatus(redis),
  });
  const absent = missing(observed, [
    ['Secret', n.auth],
    ['StatefulSet', n.sessions],
  ]);
  if (absent.length > 0) return report('False', 'Creating', `waiting for ${absent.join(', ')}`);
  const counts = `${ratio(redis)} session Redis pods ready`;
  if (redis.ready < 1) {
    const problem = podProblem(app, observed, 'sessions');
    if (problem) return report('False', problem.reason, `${counts}; ${problem.message}`);
    return report('False', 'NotReady', counts);
  }
  if (redis.outdated) return report('True', 'Updating', `${counts}; rolling out`);
  return report('True', 'Ready', counts);
}
