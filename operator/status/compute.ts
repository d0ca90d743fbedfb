// Status as a pure function of the model, the desired objects, what the reconcile did and
// what it observed: tier conditions, then Ready / Progressing / Degraded over them.
// Never Ready after a failed apply, and never Ready while a tier the spec asks for is not
// serving: an optional API that is missing (Gateway API for ingress.gateway, KEDA for queue
// workers, the Prometheus Operator for monitoring) makes that tier APIUnavailable, naming the
// API, and Ready False with it, so `kubectl wait --for=condition=Ready` does not pass on a
// half-served spec. Tiers the spec does not ask for build nothing and say nothing.
import type { AppModel } from '../api/model.ts';
import type { FieldError } from '../api/validate.ts';
import { formatError } from '../api/validate.ts';
import { TIERS, tierOf } from '../tiers/index.ts';
import type { K8sObject } from '../tiers/shared/chart.ts';
import { IF_SERVED_ANNOTATION } from '../tiers/shared/meta.ts';
import { condition } from '../tiers/shared/report.ts';
import type { Observed, TierCondition } from '../tiers/shared/report.ts';
import type { ObjectRef, Tier } from '../tiers/tier.ts';

export interface ApplyOutcome {
  /** Objects whose apply or create failed, with the error. */
  readonly failed: readonly (ObjectRef & { readonly error: string })[];
  /**
   * Objects skipped because the cluster does not serve their kind, or refused to list it;
   * `why` says which (default: not served).
   */
  readonly skipped: readonly (ObjectRef & { readonly why?: string })[];
}

export interface ComputedStatus {
  readonly conditions: readonly TierCondition[];
  /** Tier parts of .status (web, cache, url, ...). */
  readonly fields: Readonly<Record<string, unknown>>;
  readonly ready: boolean;
}

const refOf = (o: K8sObject): ObjectRef => ({
  apiVersion: o.apiVersion,
  kind: o.kind,
  name: o.metadata.name,
});
const sameRef = (a: ObjectRef, b: ObjectRef): boolean => a.kind === b.kind && a.name === b.name;

/** Each tier with objects to show reports on those the cluster serves, in registry order. */
export function computeStatus(
  app: AppModel,
  desired: readonly K8sObject[],
  observed: Observed,
  outcome: ApplyOutcome,
  /** Condition types of the status written before: which tiers were there. */
  previous: readonly string[] = [],
  tiers: readonly Tier[] = TIERS,
): ComputedStatus {
  const fields: Record<string, unknown> = {};
  const tierConditions: TierCondition[] = [];
  const tierDegraded: { reason: string; message: string }[] = [];
  for (const tier of tiers) {
    const mine = desired.filter((o) => tierOf(o, tiers) === tier).map(refOf);
    if (mine.length === 0) {
      // Switched off: say what stays, as long as the tier said anything before.
      const kept = previous.includes(tier.conditionType) ? tier.retained?.(app) : undefined;
      if (kept) tierConditions.push(condition(tier.conditionType, 'False', 'DataRetained', kept));
      continue;
    }
    const skipped = outcome.skipped.filter((s) => mine.some((m) => sameRef(m, s)));
    const present = mine.filter((m) => !skipped.some((s) => sameRef(m, s)));
    // Skipped objects that have a fallback (IF_SERVED_ANNOTATION) leave nothing missing.
    const missing = skipped.filter(
      (s) =>
        !desired.some(
          (o) => sameRef(refOf(o), s) && o.metadata.annotations?.[IF_SERVED_ANNOTATION] === 'true',
        ),
    );
    const report = tier.report(app, observed, present);
    Object.assign(fields, report.fields);
    if (report.degraded) tierDegraded.push(report.degraded);
    if (missing.length > 0 && report.condition.status === 'True') {
      tierConditions.push(
        condition(tier.conditionType, 'False', 'APIUnavailable', skippedMessage(missing)),
      );
    } else if (missing.length > 0 && report.condition.reason === 'APIUnavailable') {
      // The tier's own words (what to install) after exactly which kinds were skipped and why:
      // an API group may be served with only some of its kinds, or refused to the operator.
      tierConditions.push(
        condition(
          tier.conditionType,
          'False',
          'APIUnavailable',
          `${skippedMessage(missing)}; ${report.condition.message}`,
        ),
      );
    } else tierConditions.push(report.condition);
  }

  const failed = outcome.failed;
  const notReady = tierConditions.filter((c) => c.status !== 'True' && c.reason !== 'DataRetained');
  const unavailableConds = notReady.filter((c) => c.reason === 'APIUnavailable');
  // Nothing the operator can do moves these: installing the API does.
  const waiting = notReady.filter((c) => c.reason !== 'APIUnavailable');
  const ready = failed.length === 0 && notReady.length === 0;
  const failMsg = failed
    .slice(0, 5)
    .map((f) => `${f.kind} ${f.name}: ${f.error}`)
    .join('; ');
  const first = waiting[0];
  const readyCond = ready
    ? condition('Ready', 'True', 'AllTiersReady', 'every tier is ready')
    : failed.length > 0
      ? condition('Ready', 'False', 'ApplyFailed', failMsg)
      : first
        ? condition('Ready', 'False', `${first.type.replace(/Ready$/, '')}NotReady`, first.message)
        : condition(
            'Ready',
            'False',
            'APIUnavailable',
            unavailableConds.map((c) => `${c.type}: ${c.message}`).join('; '),
          );
  const progressing =
    failed.length > 0
      ? condition('Progressing', 'False', 'ApplyFailed', failMsg)
      : ready
        ? condition('Progressing', 'False', 'Stable', 'every object is applied and ready')
        : waiting.length === 0
          ? condition(
              'Progressing',
              'False',
              'APIUnavailable',
              'every object the cluster can serve is applied; waiting for an API to be installed',
            )
          : condition(
              'Progressing',
              'True',
              'Reconciling',
              waiting.map((c) => c.type).join(', ') + ' not ready yet',
            );
  const degraded =
    failed.length > 0
      ? condition('Degraded', 'True', 'ApplyFailed', failMsg)
      : unavailableConds.length > 0
        ? condition(
            'Degraded',
            'True',
            'APIUnavailable',
            unavailableConds.map((c) => c.message).join('; '),
          )
        : tierDegraded[0]
          ? condition(
              'Degraded',
              'True',
              tierDegraded[0].reason,
              tierDegraded.map((d) => d.message).join('; '),
            )
          : condition('Degraded', 'False', 'AsExpected', 'no failures');
  return { conditions: [readyCond, progressing, degraded, ...tierConditions], fields, ready };
}

/** "<api> <why>: skipped <kind> <name>, ..." per reason, the API named in each. */
function skippedMessage(skipped: ApplyOutcome['skipped']): string {
  const byWhy = new Map<string, string[]>();
  for (const s of skipped) {
    const why = `${s.apiVersion} ${s.kind}: ${s.why ?? 'not served by this cluster'}`;
    byWhy.set(why, [...(byWhy.get(why) ?? []), s.name]);
  }
  return [...byWhy].map(([why, names]) => `${why}: skipped ${names.join(', ')}`).join('; ');
}

/** Status of an app the operator cannot act on: terminal until the spec changes. */
export function invalidSpecStatus(errors: readonly FieldError[]): ComputedStatus {
  const message = errors.map(formatError).join('; ');
  return {
    conditions: [
      condition('Ready', 'False', 'InvalidSpec', message),
      condition('Progressing', 'False', 'InvalidSpec', 'waiting for a valid spec'),
      condition('Degraded', 'True', 'InvalidSpec', message),
    ],
    fields: {},
    ready: false,
  };
}
