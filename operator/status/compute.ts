// Status as a pure function of the model, the desired objects, what the reconcile did and
// what it observed: tier conditions, then Ready / Progressing / Degraded over them.
// Never Ready after a failed apply.
import type { AppModel } from '../api/model.ts';
import type { FieldError } from '../api/validate.ts';
import { formatError } from '../api/validate.ts';
import type { K8sObject } from '../tiers/chart.ts';
import { CACHE_READY, SESSIONS_READY, cacheReport } from '../tiers/cache-status.ts';
import { databaseReport, shardMapStatus } from '../tiers/database/status.ts';
import { TIER_LABEL } from '../tiers/meta.ts';
import { condition } from './conditions.ts';
import { genericReport } from './generic.ts';
import { ingressReport, urlOf } from './ingress.ts';
import { tierConditionType } from './tier-names.ts';
import type { Observed, TierCondition, TierReport } from './types.ts';
import { webReport } from './web.ts';

export interface ObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
}

export interface ApplyOutcome {
  /** Objects whose apply or create failed, with the error. */
  readonly failed: readonly (ObjectRef & { readonly error: string })[];
  /** Objects skipped because their API is not served by the cluster. */
  readonly skipped: readonly ObjectRef[];
}

export interface ComputedStatus {
  readonly conditions: readonly TierCondition[];
  /** Tier parts of .status (web, cache, url, ...). */
  readonly fields: Readonly<Record<string, unknown>>;
  readonly ready: boolean;
}

export type TierReporter = (app: AppModel, observed: Observed) => TierReport;

const pick =
  (type: string): TierReporter =>
  (app, observed) => {
    const report = cacheReport(app, observed).find((r) => r.condition.type === type);
    return report ?? { condition: condition(type, 'Unknown', 'NoReport', `no ${type} verdict`) };
  };

/** Tiers with a status function of their own; the others get the generic one. */
export const TIER_REPORTERS: Readonly<Record<string, TierReporter>> = {
  web: webReport,
  cache: pick(CACHE_READY),
  sessions: pick(SESSIONS_READY),
  database: databaseReport,
};

const refOf = (o: K8sObject): ObjectRef => ({
  apiVersion: o.apiVersion,
  kind: o.kind,
  name: o.metadata.name,
});
const tierOf = (o: K8sObject): string => o.metadata.labels?.[TIER_LABEL] ?? 'web';

export function computeStatus(
  app: AppModel,
  desired: readonly K8sObject[],
  observed: Observed,
  outcome: ApplyOutcome,
  reporters: Readonly<Record<string, TierReporter>> = TIER_REPORTERS,
): ComputedStatus {
  const tiers = [...new Set(['web', ...desired.map(tierOf)])];
  const skippedTiers = new Map<string, ObjectRef[]>();
  for (const s of outcome.skipped) {
    const obj = desired.find((d) => d.kind === s.kind && d.metadata.name === s.name);
    const tier = obj ? tierOf(obj) : 'web';
    skippedTiers.set(tier, [...(skippedTiers.get(tier) ?? []), s]);
  }
  const fields: Record<string, unknown> = {};
  const tierConditions: TierCondition[] = [];
  let unavailable = false;
  for (const tier of tiers) {
    const wanted = desired.filter((d) => tierOf(d) === tier).map(refOf);
    const skipped = skippedTiers.get(tier) ?? [];
    const present = wanted.filter(
      (w) => !skipped.some((s) => s.kind === w.kind && s.name === w.name),
    );
    const reporter = reporters[tier];
    const report =
      reporter !== undefined
        ? reporter(app, observed)
        : tier === 'ingress'
          ? ingressReport(app, observed, present)
          : genericReport(tier, observed, present);
    if (report.statusKey && report.status) fields[report.statusKey] = report.status;
    if (skipped.length > 0 && report.condition.status === 'True') {
      unavailable = true;
      const apis = [...new Set(skipped.map((s) => s.apiVersion))].join(', ');
      tierConditions.push(
        condition(
          tierConditionType(tier),
          'False',
          'APIUnavailable',
          `${apis} not served by this cluster: skipped ${skipped.map((s) => `${s.kind} ${s.name}`).join(', ')}`,
        ),
      );
    } else tierConditions.push(report.condition);
  }
  const url = urlOf(app, observed);
  if (url) fields['url'] = url;
  const shardMap = app.database ? shardMapStatus(app, observed) : undefined;
  if (shardMap) fields['shardMap'] = shardMap;

  const failed = outcome.failed;
  const notReady = tierConditions.filter(
    (c) => c.status !== 'True' && c.reason !== 'APIUnavailable',
  );
  const ready = failed.length === 0 && notReady.length === 0;
  const failMsg = failed
    .slice(0, 5)
    .map((f) => `${f.kind} ${f.name}: ${f.error}`)
    .join('; ');
  const first = notReady[0];
  const readyCond = ready
    ? condition(
        'Ready',
        'True',
        'AllTiersReady',
        unavailable ? 'ready; some optional APIs are missing' : 'every tier is ready',
      )
    : failed.length > 0
      ? condition('Ready', 'False', 'ApplyFailed', failMsg)
      : condition(
          'Ready',
          'False',
          `${first?.type.replace(/Ready$/, '') ?? 'Tier'}NotReady`,
          first?.message ?? '',
        );
  const progressing =
    failed.length > 0
      ? condition('Progressing', 'False', 'ApplyFailed', failMsg)
      : ready
        ? condition('Progressing', 'False', 'Stable', 'every object is applied and ready')
        : condition(
            'Progressing',
            'True',
            'Reconciling',
            notReady.map((c) => c.type).join(', ') + ' not ready yet',
          );
  const unavailableConds = tierConditions.filter((c) => c.reason === 'APIUnavailable');
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
        : condition('Degraded', 'False', 'AsExpected', 'no failures');
  return { conditions: [readyCond, progressing, degraded, ...tierConditions], fields, ready };
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
