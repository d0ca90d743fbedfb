// The reconciler's side of the tier hooks (tiers/tier.ts): adjust desired objects from live
// ones, and the finalizers of tiers whose data needs a clean-up.
import type { AppModel } from '../api/model.ts';
import { TIERS, tierOf } from '../tiers/index.ts';
import type { K8sObject } from '../tiers/shared/chart.ts';
import type { Observed, ObservedObject } from '../tiers/shared/report.ts';
import type { HookWrite, LiveView, ObjectRef, Tier } from '../tiers/tier.ts';
import { clusterAccess } from './cluster-access.ts';
import { withSpecHash } from './diff.ts';
import { finalizerHooks, setFinalizers } from './finalizers.ts';
import { materialize, materializePod, objectKey } from './project.ts';
import type { CachedApp, CachedChild } from './project.ts';
import type { ReconcileContext } from './context.ts';

export const keyOfObj = (o: K8sObject, namespace: string): string =>
  objectKey(o.apiVersion, o.kind, o.metadata.namespace ?? namespace, o.metadata.name);

/** Each tier's adjust hook, given the live objects; re-hashed where it changed something. */
export function adjusted(
  model: AppModel,
  desired: readonly K8sObject[],
  live: ReadonlyMap<string, CachedChild>,
  status: Readonly<Record<string, unknown>>,
): K8sObject[] {
  const view: LiveView = {
    object: (o: K8sObject): ObservedObject | undefined => {
      const cur = live.get(keyOfObj(o, model.namespace));
      return cur ? materialize(cur) : undefined;
    },
    status,
  };
  let out = [...desired];
  for (const tier of TIERS) {
    const adjust = tier.hooks?.adjust;
    if (!adjust) continue;
    const mine = out.filter((o) => tierOf(o) === tier);
    if (mine.length === 0) continue;
    const next = adjust(model, mine, view);
    const swap = new Map(mine.map((o, i) => [o, next[i] ?? o]));
    out = out.map((o) => {
      const n = swap.get(o);
      return n === undefined || n === o ? o : withSpecHash(n);
    });
  }
  return out;
}

/** The app's children and pods as the status functions and hooks see them. */
export function observe(ctx: ReconcileContext, app: CachedApp): Observed {
  const { name, namespace } = app.metadata;
  return {
    objects: ctx.children(namespace, name).map(materialize),
    pods: ctx.pods(namespace, name).map(materializePod),
    missingApis: [],
  };
}

/**
 * Tiers' finalizers follow their `wanted`: added before anything is applied, dropped after
 * pruning when no longer wanted. Only the app's deletion runs a clean-up (reconcile.ts):
 * switching a data tier off keeps its data, and the finalizer with it.
 */
export async function ensureFinalizer(
  ctx: ReconcileContext,
  app: CachedApp,
  model: AppModel,
  phase: 'before' | 'after',
): Promise<number> {
  const held = new Set(app.metadata.finalizers ?? []);
  if (phase === 'before') {
    const add = finalizerHooks()
      .filter((f) => f.wanted(model) === true && !held.has(f.name))
      .map((f) => f.name);
    if (add.length === 0) return 0;
    await setFinalizers(ctx.client, app, { add });
    return 1;
  }
  const remove = finalizerHooks()
    .filter((f) => f.wanted(model) === false && held.has(f.name))
    .map((f) => f.name);
  if (remove.length === 0) return 0;
  await setFinalizers(ctx.client, app, { remove });
  return 1;
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * After apply and prune: each tier's afterApply (state outside its objects that depends on
 * the spec alone: once per generation, again after Recent's TTL, not on every pod event),
 * then its step (work it orders over many pod events). Failures are reported, not thrown.
 */
export async function runTierHooks(
  ctx: ReconcileContext,
  key: string,
  app: CachedApp,
  model: AppModel,
  desired: readonly K8sObject[],
  observed: Observed,
): Promise<{ changes: HookWrite[]; failed: (ObjectRef & { error: string })[] }> {
  const changes: HookWrite[] = [];
  const failed: (ObjectRef & { error: string })[] = [];
  const generation = String(app.metadata.generation ?? '');
  const cluster = clusterAccess(ctx.client);
  const run = async (tier: Tier, hook: string, fn: () => Promise<readonly HookWrite[]>) => {
    try {
      changes.push(...(await fn()));
      return true;
    } catch (err) {
      failed.push({
        apiVersion: '',
        kind: 'hook',
        name: `${tier.name} ${hook}`,
        error: errorText(err),
      });
      return false;
    }
  };
  for (const tier of TIERS) {
    const hooks = tier.hooks;
    if (!hooks || !desired.some((o) => tierOf(o) === tier)) continue;
    const memo = `after|${tier.name}|${key}`;
    const { afterApply, step } = hooks;
    if (afterApply && ctx.recent.get(memo)?.hash !== generation)
      if (await run(tier, 'after-apply', () => afterApply(model, cluster)))
        ctx.recent.set(memo, generation, '');
    if (step) await run(tier, 'step', () => step(model, observed, cluster));
  }
  return { changes, failed };
}
