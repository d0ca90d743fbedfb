// Kubernetes API conventions for conditions: a transition time that moves only when the
// status moves, and the generation the condition was computed for. Pure.
import type { ConditionStatus, TierCondition } from '../tiers/shared/report.ts';

export interface Condition {
  readonly type: string;
  readonly status: ConditionStatus;
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration?: number;
  readonly lastTransitionTime: string;
}

const MAX_MESSAGE = 1024;

const clip = (message: string): string =>
  message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message;

/** New conditions with lastTransitionTime kept from `previous` where the status is unchanged. */
export function withTransitions(
  previous: readonly Partial<Condition>[] | undefined,
  next: readonly TierCondition[],
  now: string,
  generation: number | undefined,
): Condition[] {
  const before = new Map((previous ?? []).map((c) => [c.type, c]));
  return next.map((c) => {
    const old = before.get(c.type);
    const kept = old && old.status === c.status && typeof old.lastTransitionTime === 'string';
    return {
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: clip(c.message),
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
      lastTransitionTime: kept ? (old.lastTransitionTime as string) : now,
    };
  });
}
