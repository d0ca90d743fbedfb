// Memos of the reconciler: our own recent writes (to tell a stale cache from drift) and the
// plan of each app generation (validation and builders are pure, so they run once).
import { toModel } from '../api/model.ts';
import type { AppModel, ModelOptions } from '../api/model.ts';
import { validateApp } from '../api/validate.ts';
import type { FieldError } from '../api/validate.ts';
import { buildAll, withHolds } from '../tiers/index.ts';
import type { Holds } from '../tiers/index.ts';
import type { K8sObject } from '../tiers/shared/chart.ts';
import { withSpecHash } from './diff.ts';
import type { CachedApp } from './project.ts';

/**
 * Our writes of the last few seconds. Informer caches trail the API server by a moment; a
 * reconcile that runs in between must not take the old cached object for drift and write it
 * again. Entries expire quickly: they only bridge that moment.
 */
export class Recent {
  private readonly entries = new Map<
    string,
    { hash: string; rv: string; until: number; value?: unknown }
  >();
  private nextSweep = 0;
  constructor(private readonly ttlMs = 30_000) {}

  /** `ttlMs` overrides the default lifetime for this entry. */
  set(key: string, hash: string, rv: string, value?: unknown, ttlMs = this.ttlMs): void {
    const now = Date.now();
    this.entries.set(key, {
      hash,
      rv,
      until: now + ttlMs,
      ...(value !== undefined ? { value } : {}),
    });
    // Swept once per lifetime: an entry never read again (every write of every app, statuses
    // included) would otherwise stay, and the memo would grow with the apps, not the writes.
    if (now >= this.nextSweep) {
      this.nextSweep = now + this.ttlMs;
      this.sweep();
    }
  }

  get(key: string): { hash: string; rv: string; value?: unknown } | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (Date.now() > e.until) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Entries held, expired ones not yet swept included. */
  get size(): number {
    return this.entries.size;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [k, e] of this.entries) if (now > e.until) this.entries.delete(k);
  }
}

export type Plan =
  | { readonly ok: true; readonly model: AppModel; readonly desired: readonly K8sObject[] }
  | { readonly ok: false; readonly errors: readonly FieldError[] };

/**
 * validate -> model -> build -> spec hashes: pure, so computed once per app generation.
 * `holds`: what tiers keep rendering beyond the spec while the record needs it (Tier.hold,
 * e.g. the database's departing shards).
 */
export function planOf(app: CachedApp, options: ModelOptions = {}, holds: Holds = {}): Plan {
  const { name, namespace, uid, generation } = app.metadata;
  const validated = validateApp(
    {
      apiVersion: app.apiVersion,
      kind: app.kind,
      metadata: { name, namespace, uid, ...(generation !== undefined ? { generation } : {}) },
      spec: app.spec,
    },
    undefined,
    { stored: true },
  );
  if (!validated.ok) return { ok: false, errors: validated.errors };
  const model = withHolds(toModel(validated.app, options), holds);
  return { ok: true, model, desired: buildAll(model).map(withSpecHash) };
}

/**
 * Plans of recently reconciled apps. Pod and status events reconcile an app far more often
 * than its spec changes, and validation (CEL) plus the builders cost milliseconds; an app's
 * spec only changes with its generation. Bounded, so memory does not grow with every app.
 */
export class Plans {
  private readonly entries = new Map<
    string,
    { readonly generation: number | undefined; readonly holds: string; readonly plan: Plan }
  >();
  constructor(
    private readonly options: ModelOptions = {},
    private readonly capacity = 256,
  ) {}

  get(app: CachedApp, holds: Holds = {}): Plan {
    const key = app.metadata.uid;
    const held = JSON.stringify(holds);
    const hit = this.entries.get(key);
    if (
      hit &&
      hit.generation === app.metadata.generation &&
      hit.generation !== undefined &&
      hit.holds === held
    ) {
      this.entries.delete(key); // most recently used last
      this.entries.set(key, hit);
      return hit.plan;
    }
    const plan = planOf(app, this.options, holds);
    this.entries.set(key, { generation: app.metadata.generation, holds: held, plan });
    if (this.entries.size > this.capacity)
      this.entries.delete(this.entries.keys().next().value as string);
    return plan;
  }
}
