// The tier registry: every tier, in the order its objects are applied (and rendered). The
// reconciler, the status computation, the CLI and the app wiring iterate this list and name
// no tier. To add a tier, see tier.ts: one folder, one line here.
import type { AppModel } from '../api/model.ts';
import { cacheTier } from './cache/index.ts';
import { databaseTier } from './database/index.ts';
import { ingressTier } from './ingress/index.ts';
import { monitoringTier } from './monitoring/index.ts';
import { poolerTier } from './pooler/index.ts';
import { queueTier } from './queue/index.ts';
import { sessionsTier } from './sessions/index.ts';
import type { K8sObject } from './shared/chart.ts';
import { baseWiring, mergeWiring } from './shared/app-wiring.ts';
import { TIER_LABEL } from './shared/meta.ts';
import type { AppWiring, HeldChild, Tier } from './tier.ts';
import { webTier } from './web/index.ts';

export const TIERS: readonly Tier[] = [
  cacheTier,
  sessionsTier,
  databaseTier,
  poolerTier,
  queueTier,
  webTier,
  ingressTier,
  monitoringTier,
];

/** What every app pod gets: the app's identity, then each tier's part, in registry order. */
export function appWiring(app: AppModel): AppWiring {
  return mergeWiring([baseWiring(app), ...TIERS.map((t) => t.wiring?.(app) ?? {})]);
}

export function buildAll(app: AppModel): K8sObject[] {
  const wiring = appWiring(app);
  return TIERS.flatMap((t) => t.build(app, wiring));
}

/** The tier an object belongs to, by its label (objects without one are the web tier's). */
export function tierOf(obj: K8sObject, tiers: readonly Tier[] = TIERS): Tier | undefined {
  const name = obj.metadata.labels?.[TIER_LABEL] ?? 'web';
  return tiers.find((t) => t.name === name);
}

/** What each tier holds beyond the spec (tier name -> its hold; none when nothing is held). */
export type Holds = Readonly<Record<string, number>>;

export function holdsOf(
  app: string,
  status: Readonly<Record<string, unknown>>,
  children: readonly HeldChild[],
): Holds {
  const out: Record<string, number> = {};
  for (const t of TIERS) {
    const held = t.hold?.of(app, status, children) ?? 0;
    if (held > 0) out[t.name] = held;
  }
  return out;
}

/** The model each tier's hold renders. */
export const withHolds = (model: AppModel, holds: Holds): AppModel =>
  TIERS.reduce((m, t) => {
    const held = holds[t.name];
    return t.hold && held ? t.hold.apply(m, held) : m;
  }, model);
