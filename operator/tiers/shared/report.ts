// What tiers' status functions see and return. Status is a pure function of the model and
// the observed children, so it is unit-tested without a cluster.
import type { K8sObject } from './chart.ts';

/** A child object as the informer cache holds it: trimmed, with its status. */
export type ObservedObject = K8sObject & { status?: Record<string, unknown> };

export interface Observed {
  /** Children of the app (every kind the operator owns), with status. */
  readonly objects: readonly ObservedObject[];
  /** Pods of the app (label scalable.dev/app), with labels and readiness. */
  readonly pods: readonly ObservedObject[];
  /** API groups that are not served by this cluster (e.g. keda.sh). */
  readonly missingApis: readonly string[];
  /** The app's status as last written (parts other writers own, e.g. status.resharding). */
  readonly appStatus?: Readonly<Record<string, unknown>>;
}

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface TierCondition {
  readonly type: string;
  readonly status: ConditionStatus;
  readonly reason: string;
  readonly message: string;
}

/** One tier's verdict: its condition (e.g. CacheReady) and its parts of .status. */
export interface TierReport {
  readonly condition: TierCondition;
  /** Merged into .status, e.g. { cache: {...} } or { database: {...}, shardMap: {...} }. */
  readonly fields?: Readonly<Record<string, unknown>>;
  /** Something is wrong that does not stop the tier serving: the app's Degraded says so. */
  readonly degraded?: { readonly reason: string; readonly message: string };
}

export const condition = (
  type: string,
  status: ConditionStatus,
  reason: string,
  message: string,
): TierCondition => ({ type, status, reason, message });

export const findObject = (
  observed: Observed,
  kind: string,
  name: string,
): ObservedObject | undefined =>
  observed.objects.find((o) => o.kind === kind && o.metadata.name === name);
