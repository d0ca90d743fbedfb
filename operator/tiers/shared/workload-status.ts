// Status helpers for tiers that run their own workloads (the Redis tiers, and those to come):
// how many pods of a Deployment or StatefulSet are ready, what is missing, and the first pod
// that is stuck, as a reason a user can act on.
import type { AppModel } from '../../api/model.ts';
import { APP_LABEL, TIER_LABEL } from './meta.ts';
import type { TierName } from './meta.ts';
import { findObject } from './report.ts';
import type { Observed } from './report.ts';

export interface Workload {
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

export function workload(
  observed: Observed,
  kind: string,
  name: string,
  desired: number,
): Workload {
  const o = findObject(observed, kind, name);
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

export function missing(observed: Observed, wanted: ReadonlyArray<[string, string]>): string[] {
  return wanted.filter(([k, n]) => !findObject(observed, k, n)).map(([k, n]) => `${k} ${n}`);
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
  tier: TierName,
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

export const ratio = (w: Workload) => `${w.ready}/${w.desired}`;

export const tierStatus = (w: Workload) => ({
  replicas: w.replicas,
  readyReplicas: w.ready,
  ready: ratio(w),
});
