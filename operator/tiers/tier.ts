// What a tier is: everything the operator knows about one part of the chapter's architecture
// (web, cache, database, ...) behind one small interface. The reconciler, the status
// computation, the CLI and the app wiring only ever iterate the registry (index.ts) and call
// these members; none of them names a tier.
//
// Adding a tier:
// 1. a folder operator/tiers/<name>/ with build.ts (pure builders), status.ts (its verdict)
//    and index.ts exporting one `Tier`; tests and golden files beside them;
// 2. one line in the registry (index.ts), at its place in apply order.
// Its `sections` name the spec sections it renders: a unit test fails when a section that
// renders objects has no tier, or when an object's tier label is not its tier's name.
// Hooks are optional: reach for one only when the state a tier must keep lives outside the
// objects it builds (see the database tier: shard-map hold, Patroni's config, data clean-up).
// A tier that must act on events between reconciles owns a watch (watch.ts; the database
// tier's lease watch), and declares its own metrics there.
import type { AppModel } from '../api/model.ts';
import type { SpecSection } from '../api/sections.ts';
import type { K8sObject } from './shared/chart.ts';
import type { TierName } from './shared/meta.ts';
import type { Observed, ObservedObject, TierReport } from './shared/report.ts';
import type { ClusterAccess } from '../ports/cluster-access.ts';
import type { TierWatch } from './watch.ts';

export { ConflictError } from '../ports/cluster-access.ts';
export type { ClusterAccess } from '../ports/cluster-access.ts';

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    configMapKeyRef?: { name: string; key: string };
    fieldRef?: { fieldPath: string };
  };
}

/** What a tier gives every app pod (web and workers). Passwords only via secretKeyRef. */
export interface AppWiring {
  readonly env: EnvVar[];
  readonly volumes: Record<string, unknown>[];
  readonly volumeMounts: Record<string, unknown>[];
}

export interface ObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
}

/** A write a hook made, for the log line and the app's events ("Updated ConfigMap x"). */
export interface HookWrite {
  readonly action: 'Created' | 'Updated' | 'Deleted';
  readonly kind: string;
  readonly name: string;
  readonly why?: string;
}

/** The app as hooks see it when it may be half gone (deletion) or its spec invalid. */
export interface AppRef {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
}

/** What is live, as the adjust hook sees it: the cached objects and the app's last status. */
export interface LiveView {
  /** The live counterpart of a desired object (same kind and name). */
  object(obj: K8sObject): ObservedObject | undefined;
  /** The app's .status as last written (e.g. a record the tier keeps there). */
  readonly status: Readonly<Record<string, unknown>>;
}

export interface TierHooks {
  /**
   * Before apply: the tier's desired objects given what is live (pure). For state the
   * cluster holds that a builder cannot know, e.g. bucket ranges already published.
   */
  adjust?(app: AppModel, desired: readonly K8sObject[], live: LiveView): K8sObject[];
  /**
   * After apply and prune, once per app generation: state the tier keeps outside its own
   * objects in step with the spec. Returns the writes it made.
   */
  afterApply?(app: AppModel, cluster: ClusterAccess): Promise<readonly HookWrite[]>;
  /**
   * After apply and prune, on every reconcile: one step of work the tier orders itself over
   * many pod events (e.g. a rolling restart, replica before primary). Decides from `observed`
   * alone, so it costs nothing when there is nothing to do; idempotent.
   */
  step?(app: AppModel, observed: Observed, cluster: ClusterAccess): Promise<readonly HookWrite[]>;
  /** Data clean-up behind a finalizer on the app. */
  finalizer?: {
    readonly name: string;
    /**
     * Whether the app should hold the finalizer now; undefined keeps what it holds (e.g. a
     * data section switched off: the data stays, and so does the promise to delete it).
     */
    wanted(app: AppModel): boolean | undefined;
    /** One step of the clean-up; true when done and the finalizer may go. */
    cleanUp(app: AppRef, observed: Observed, cluster: ClusterAccess): Promise<boolean>;
  };
}

/** A child object as a tier's hold reads it. */
export interface HeldChild {
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly annotations?: Readonly<Record<string, string>>;
  };
}

export interface Tier {
  /** The value of its objects' scalable.dev/tier label. */
  readonly name: TierName;
  /** The spec sections it renders (the registry test checks every section has a tier). */
  readonly sections: readonly SpecSection[];
  /** Its condition type, e.g. CacheReady. */
  readonly conditionType: string;
  /**
   * Pure: the tier's objects, or none when it is off (then its objects are pruned).
   * `wiring` is what app pods get from every tier (index.ts computes it once per build).
   */
  build(app: AppModel, wiring: AppWiring): K8sObject[];
  /** What it hands app pods: env, volumes. */
  wiring?(app: AppModel): Partial<AppWiring>;
  /**
   * Pure: its condition and .status fields. `wanted` are the desired objects the cluster
   * serves (those of a missing optional API are left out).
   */
  report(app: AppModel, observed: Observed, wanted: readonly ObjectRef[]): TierReport;
  /**
   * Pure: when the tier was on and is now off, what it kept (data is never deleted by
   * switching a tier off) and how to delete it by hand; undefined when it keeps nothing.
   */
  retained?(app: AppModel): string | undefined;
  readonly hooks?: TierHooks;
  /**
   * Pure: what the tier must keep rendering beyond its spec while the app's record still needs
   * it (the database tier: departing shards until their buckets have moved out). `of` reads it
   * from the app's status and its cached children as a number (0: nothing; the plan is keyed
   * by it), `apply` renders the model with it.
   */
  readonly hold?: {
    of(
      app: string,
      status: Readonly<Record<string, unknown>>,
      children: readonly HeldChild[],
    ): number;
    apply(model: AppModel, held: number): AppModel;
  };
  /** Long-lived watches the runtime runs for this tier (see watch.ts). */
  readonly watches?: readonly TierWatch[];
}
