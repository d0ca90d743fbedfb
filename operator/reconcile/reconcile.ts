// reconcile(key): the one level-based function every event leads to.
// read the app -> validate + model -> build -> apply what differs -> prune what is no longer
// wanted -> observe -> status (pure) -> one /status patch -> events.
// A converged app costs reads from the caches only: no request at all.
import { computeStatus, invalidSpecStatus } from '../status/compute.ts';
import type { ApplyOutcome, ComputedStatus } from '../status/compute.ts';
import { withTransitions } from '../status/conditions.ts';
import type { K8sObject } from '../tiers/shared/chart.ts';
import type { Observed, ObservedObject } from '../tiers/shared/report.ts';
import { generatedKeysOf } from '../tiers/shared/secrets.ts';
import { holdsOf } from '../tiers/index.ts';
import {
  TLS_PUBLIC_ANNOTATION,
  TLS_UNLESS_SERVED_ANNOTATION,
  tlsDnsNamesOf,
} from '../tiers/shared/tls/objects.ts';
import { ROTATE_CA_ANNOTATION, issueInto, issuePlan, publicKeyOf } from './certificates.ts';
import type { HookWrite } from '../tiers/tier.ts';
import { clusterAccess } from './cluster-access.ts';
import type { KindAccess, ReconcileContext } from './context.ts';
import { SPEC_HASH_ANNOTATION, hashOf, stableStringify, whyApply } from './diff.ts';
import { finalizerHooks, setFinalizers } from './finalizers.ts';
import { adjusted, ensureFinalizer, keyOfObj, observe, runTierHooks } from './hooks.ts';
import { APP_KIND, kindOf, pathOf } from './kinds.ts';
import type { KindInfo } from './kinds.ts';
import { materialize, materializePod, objectKey, olderThan, projectChild } from './project.ts';
import type { CachedApp, CachedChild } from './project.ts';
import { mapLimit } from './map-limit.ts';
import { statusPatch } from './status-patch.ts';
import { isConflict, isForbidden } from '../ports/kube-api.ts';
import { applyObject, createOnce, deleteObject } from './writes.ts';

type Json = Record<string, unknown>;

/** waiting: a cache the desired objects need is still syncing; nothing was written. */
export type Outcome = 'gone' | 'invalid' | 'ready' | 'progressing' | 'waiting';

export interface ReconcileResult {
  readonly outcome: Outcome;
  /** Mutating requests this reconcile sent (objects and status; events not counted). */
  readonly writes: number;
}

/** An error that retrying cannot fix (the controller does not requeue it). */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';
}

/** Apply failures: retried with backoff after the status said so. */
export class ApplyFailedError extends Error {
  override readonly name = 'ApplyFailedError';
}

type Change = HookWrite;

const keyOfChild = (c: CachedChild): string =>
  objectKey(c.apiVersion, c.kind, c.metadata.namespace, c.metadata.name);

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export async function reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult> {
  const app = ctx.getApp(key);
  if (!app) return { outcome: 'gone', writes: 0 };
  const { name, namespace, uid } = app.metadata;
  if (app.metadata.deleting) {
    // Children go with the garbage collector; only a tier's data clean-up has work here.
    const held = finalizerHooks().filter((f) => app.metadata.finalizers?.includes(f.name));
    if (held.length === 0) return { outcome: 'gone', writes: 0 };
    const observed = observe(ctx, app);
    const done: string[] = [];
    for (const f of held)
      if (await f.cleanUp({ name, namespace, uid }, observed, clusterAccess(ctx.client)))
        done.push(f.name);
    if (done.length === 0) return { outcome: 'gone', writes: 0 };
    await setFinalizers(ctx.client, app, { remove: done });
    ctx.log.info({ app: key, finalizers: done }, 'data deleted (deletionPolicy: Delete)');
    return { outcome: 'gone', writes: 1 };
  }
  const target = { name, namespace, uid, resourceVersion: app.metadata.resourceVersion };
  const log = ctx.log.child({ app: key });

  // What the record still needs stays rendered (e.g. shards while `shards` shrinks past them).
  const plan = ctx.plans.get(
    app,
    holdsOf(name, previousStatus(ctx, app), ctx.children(namespace, name)),
  );
  if (!plan.ok) {
    const wrote = await writeStatus(ctx, app, invalidSpecStatus(plan.errors));
    if (wrote) {
      const message = invalidSpecStatus(plan.errors).conditions[0]?.message ?? '';
      log.warn({ errors: plan.errors }, 'invalid spec: waiting for a change');
      ctx.events.emit(target, 'Warning', 'InvalidSpec', message);
    }
    return { outcome: 'invalid', writes: wrote ? 1 : 0 };
  }
  const { model } = plan;
  const finalizerWrites = await ensureFinalizer(ctx, app, model, 'before');

  const cached = ctx.children(namespace, name);
  const live = new Map(cached.map((c) => [keyOfChild(c), c]));
  // Caches first: acting on a kind whose cache is still filling would re-apply what exists and
  // miss what to prune. Only this app waits (it is queued again when the cache syncs).
  const access = new Map<KindInfo, KindAccess>();
  for (const obj of plan.desired) {
    const info = kindOf(obj.apiVersion, obj.kind);
    if (info && !access.has(info)) access.set(info, ctx.access(info, key));
  }
  if ([...access.values()].some((a) => a.state === 'syncing'))
    return { outcome: 'waiting', writes: finalizerWrites };
  const desired = adjusted(model, plan.desired, live, previousStatus(ctx, app));
  const fresh = new Map<string, ObservedObject>();
  const changes: Change[] = [];
  const failed: ApplyOutcome['failed'][number][] = [];
  const skipped: ApplyOutcome['skipped'][number][] = [];

  // RoleBindings go last: they bind the ServiceAccounts applied with the first wave (Patroni's
  // binds the chart's ClusterRole, which the operator may bind but not hold). Everything else
  // goes in parallel.
  // Issued TLS Secrets wait for the ConfigMaps that record their public half.
  const issued = (o: K8sObject) => tlsDnsNamesOf(o).length > 0;
  const waves = [
    desired.filter((o) => o.kind !== 'RoleBinding' && !issued(o)),
    desired.filter((o) => o.kind === 'RoleBinding' || issued(o)),
  ];
  for (const wave of waves)
    await mapLimit(wave, ctx.concurrency, async (obj) => {
      const ref = { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name };
      const info = kindOf(obj.apiVersion, obj.kind);
      if (!info) {
        failed.push({
          ...ref,
          error: `the operator does not manage ${obj.apiVersion} ${obj.kind}`,
        });
        return;
      }
      const reach = access.get(info) ?? ctx.access(info, key);
      if (reach.state !== 'ready') {
        skipped.push({
          ...ref,
          why: reach.state === 'unavailable' ? reach.why : 'cache syncing',
        });
        return;
      }
      const k = keyOfObj(obj, namespace);
      const cur = live.get(k);
      try {
        const change = issued(obj)
          ? await ensureIssued(ctx, app, obj, k, namespace, live, fresh)
          : generatedKeysOf(obj).length > 0
            ? await ensureGenerated(ctx, info, obj, k, `${k}|${uid}`, cur, fresh)
            : await ensureApplied(ctx, info, obj, k, cur, fresh);
        if (change) changes.push(change);
      } catch (err) {
        failed.push({ ...ref, error: errorText(err) });
      }
    });

  const wanted = new Set(desired.map((o) => keyOfObj(o, namespace)));
  const pruned = new Set<string>();
  for (const child of cached) {
    const k = keyOfChild(child);
    if (wanted.has(k) || !mayPrune(child, uid)) continue;
    const info = kindOf(child.apiVersion, child.kind);
    // neverPruned: no such object can be unwanted, and RBAC holds no delete for it.
    if (!info || info.neverPruned) continue;
    try {
      await deleteObject(ctx.client, info, namespace, child.metadata.name, child.metadata.uid);
      pruned.add(k);
      changes.push({ action: 'Deleted', kind: child.kind, name: child.metadata.name });
    } catch (err) {
      failed.push({
        apiVersion: child.apiVersion,
        kind: child.kind,
        name: child.metadata.name,
        error: errorText(err),
      });
    }
  }

  const cleanupWrites = await ensureFinalizer(ctx, app, model, 'after');

  const objects: ObservedObject[] = [];
  for (const c of cached) {
    const k = keyOfChild(c);
    if (!pruned.has(k) && !fresh.has(k)) objects.push(materialize(c));
  }
  objects.push(...fresh.values());
  const observed: Observed = {
    objects,
    pods: ctx.pods(namespace, name).map(materializePod),
    missingApis: [...new Set(skipped.map((s) => s.apiVersion))],
    appStatus: previousStatus(ctx, app),
  };
  const hooked = await runTierHooks(ctx, key, app, model, desired, observed);
  changes.push(...hooked.changes);
  failed.push(...hooked.failed);

  for (const c of changes) {
    log.info(
      { kind: c.kind, name: c.name, ...(c.why ? { why: c.why } : {}) },
      `${c.action} ${c.kind} ${c.name}`,
    );
    ctx.onWrite?.(c.kind, c.action.toLowerCase() as 'created' | 'updated' | 'deleted');
  }
  for (const action of ['Created', 'Updated', 'Deleted'] as const) {
    const these = changes.filter((c) => c.action === action);
    if (these.length > 0) {
      ctx.events.emit(
        target,
        'Normal',
        action,
        `${action} ${these.map((c) => `${c.kind} ${c.name}`).join(', ')}`,
      );
    }
  }

  const previous = ((previousStatus(ctx, app)['conditions'] ?? []) as { type?: unknown }[]).map(
    (c) => String(c.type),
  );
  const status = computeStatus(model, desired, observed, { failed, skipped }, previous);
  const wroteStatus = await writeStatus(ctx, app, status);
  const writes = changes.length + (wroteStatus ? 1 : 0) + finalizerWrites + cleanupWrites;

  if (failed.length > 0) {
    const message = failed.map((f) => `${f.kind} ${f.name}: ${f.error}`).join('; ');
    ctx.events.emit(target, 'Warning', 'ApplyFailed', message);
    throw new ApplyFailedError(message);
  }
  return { outcome: status.ready ? 'ready' : 'progressing', writes };
}

async function ensureApplied(
  ctx: ReconcileContext,
  info: KindInfo,
  obj: K8sObject,
  key: string,
  cur: CachedChild | undefined,
  fresh: Map<string, ObservedObject>,
): Promise<Change | undefined> {
  const hash = obj.metadata.annotations?.[SPEC_HASH_ANNOTATION] ?? '';
  const why = whyApply(
    obj,
    cur ? { metadata: cur.metadata, body: JSON.parse(cur.body) as Json } : undefined,
  );
  if (why === undefined) return undefined;
  const mine = ctx.recent.get(key);
  // We wrote exactly this a moment ago and the cache has not caught up yet.
  if (
    mine &&
    mine.hash === hash &&
    (!cur ||
      cur.metadata.resourceVersion === mine.rv ||
      olderThan(cur.metadata.resourceVersion, mine.rv))
  ) {
    return undefined;
  }
  const res = await applyObject(ctx.client, info, obj);
  const rv = String((res['metadata'] as Json | undefined)?.['resourceVersion'] ?? '');
  ctx.recent.set(key, hash, rv);
  fresh.set(key, materialize(projectChild(res, obj.apiVersion, obj.kind)));
  return { action: cur ? 'Updated' : 'Created', kind: obj.kind, name: obj.metadata.name, why };
}

/**
 * Generated Secrets: created once with random values, never updated. Secrets are not
 * watched (kinds.ts createOnly), so existence comes from the create itself: 201 Created or
 * 409 AlreadyExists both mean "it exists", remembered for Recent's TTL so a burst of
 * reconciles sends one create. Status sees the declared object. Not pruned: without a list
 * the operator cannot find a Secret it no longer declares; the app's ownerReference removes
 * it with the app (and a database switched off with Retain keeps its credentials with its
 * volumes).
 */
/**
 * How long a generated Secret counts as known to exist. The operator cannot watch Secrets
 * (least privilege), so without this every resync would send one create per Secret, answered
 * 409; a Secret deleted by hand is created again within this time.
 */
const GENERATED_MEMO_MS = 10 * 60_000;

async function ensureGenerated(
  ctx: ReconcileContext,
  info: KindInfo,
  obj: K8sObject,
  key: string,
  // The memo is the app's (its uid in the key): an app deleted and created again under the
  // same name (or in a namespace created again) finds its Secrets gone and must create them,
  // not trust the earlier app's memo for ten minutes (pods stuck in CreateContainerConfigError).
  memo: string,
  cur: CachedChild | undefined,
  fresh: Map<string, ObservedObject>,
): Promise<Change | undefined> {
  const declared = () =>
    materialize(projectChild(obj as unknown as Json, obj.apiVersion, obj.kind));
  if (cur || ctx.recent.get(memo)) {
    fresh.set(key, cur ? materialize(cur) : declared());
    return undefined;
  }
  const res = await createOnce(ctx.client, info, obj);
  if (!res) {
    ctx.recent.set(memo, 'generated', '', undefined, GENERATED_MEMO_MS);
    fresh.set(key, declared());
    return undefined;
  }
  const rv = String((res['metadata'] as Json | undefined)?.['resourceVersion'] ?? '');
  ctx.recent.set(memo, 'generated', rv, undefined, GENERATED_MEMO_MS);
  fresh.set(key, materialize(projectChild(res, obj.apiVersion, obj.kind)));
  return { action: 'Created', kind: obj.kind, name: obj.metadata.name };
}

/** How long an issued certificate is trusted over a cache that has not seen its record. */
const ISSUED_MEMO_MS = 10 * 60_000;

/**
 * TLS Secrets (shared/tls/objects.ts): issued when the public ConfigMap, as cached, shows
 * no certificate, another CA's, other names, or one two thirds through its life. Like
 * generated Secrets they are never read back. Recent remembers the record's resourceVersion
 * after an issue: while the cache holds an older record, nothing is issued again.
 */
async function ensureIssued(
  ctx: ReconcileContext,
  app: CachedApp,
  obj: K8sObject,
  key: string,
  namespace: string,
  live: ReadonlyMap<string, CachedChild>,
  fresh: Map<string, ObservedObject>,
): Promise<Change | undefined> {
  const declared = () =>
    materialize(projectChild(obj as unknown as Json, obj.apiVersion, obj.kind));
  // cert-manager served: its Certificate fills this Secret; the operator issues nothing.
  const by = obj.metadata.annotations?.[TLS_UNLESS_SERVED_ANNOTATION];
  const certificates = by ? kindOf(by, 'Certificate') : undefined;
  // Served means cert-manager's: even while that kind's cache still syncs, issue nothing.
  const appKey = `${app.metadata.namespace}/${app.metadata.name}`;
  if (certificates && ctx.access(certificates, appKey).state !== 'unavailable') {
    fresh.set(key, declared());
    return undefined;
  }
  const publicKey = publicKeyOf(obj, namespace);
  const record = live.get(publicKey);
  if (!record && !fresh.has(publicKey)) {
    throw new Error(
      `its ConfigMap ${obj.metadata.annotations?.[TLS_PUBLIC_ANNOTATION]} is not there yet`,
    );
  }
  const mine = ctx.recent.get(key);
  const stale = mine && (!record || olderThan(record.metadata.resourceVersion, mine.rv));
  const { uid, name } = app.metadata;
  const rotation = app.metadata.annotations?.[ROTATE_CA_ANNOTATION];
  const cas = await ctx.certificateAuthority({ uid, name, namespace, rotation });
  const plan = stale ? undefined : issuePlan(obj, record, cas, new Date(), ctx.trustHoldMs);
  if (plan === undefined) {
    fresh.set(key, declared());
    return undefined;
  }
  const why = plan.reason;
  const { secret, created, recordVersion } = await issueInto(
    { client: ctx.client, now: () => new Date() },
    obj,
    namespace,
    plan,
    record,
  );
  ctx.recent.set(key, 'issued', recordVersion, undefined, ISSUED_MEMO_MS);
  fresh.set(key, secret);
  return { action: created ? 'Created' : 'Updated', kind: obj.kind, name: obj.metadata.name, why };
}

/** Only what we applied and this app controls; volumes only when the app says Delete. */
function mayPrune(child: CachedChild, appUid: string): boolean {
  if (!child.ours || child.metadata.deleting) return false;
  if (!child.metadata.ownerReferences?.some((o) => o.controller && o.uid === appUid)) return false;
  return true;
}

/** The status last written: ours when the cache has not caught up with it yet. */
function previousStatus(ctx: ReconcileContext, app: CachedApp): Json {
  const { name, namespace, resourceVersion } = app.metadata;
  const mine = ctx.recent.get(`status|${namespace}/${name}`);
  return (mine && olderThan(resourceVersion, mine.rv) ? mine.value : (app.status ?? {})) as Json;
}

/** status.resharding: the resharding watch's own part of the status. */
const RESHARDING_FIELD = 'resharding';

/** One merge patch of /status, skipped when nothing would change. */
async function writeStatus(
  ctx: ReconcileContext,
  app: CachedApp,
  computed: ComputedStatus,
): Promise<boolean> {
  const { name, namespace, generation } = app.metadata;
  const appKey = `status|${namespace}/${name}`;
  const previous = previousStatus(ctx, app);
  const conditions = withTransitions(
    previous['conditions'] as Parameters<typeof withTransitions>[0],
    computed.conditions,
    new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    generation,
  );
  const next: Json = {
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    conditions,
    ...computed.fields,
    // Written by the database tier's resharding watch before each of its steps; the
    // reconcile only carries it (its /status patch would otherwise null it).
    ...(previous[RESHARDING_FIELD] !== undefined
      ? { [RESHARDING_FIELD]: previous[RESHARDING_FIELD] }
      : {}),
  };
  if (stableStringify(previous) === stableStringify(next)) return false;
  const body = statusPatch(previous, next, [
    app.metadata.resourceVersion,
    ctx.recent.get(appKey)?.rv,
  ]);
  let res: Json;
  try {
    res = await ctx.client.request<Json>('PATCH', pathOf(APP_KIND, namespace, name, 'status'), {
      verb: 'patch',
      resource: 'scalableapps/status',
      contentType: 'application/merge-patch+json',
      body,
    });
  } catch (err) {
    // The app changed after the version this status was computed from: its watch event is on
    // the way and reconciles it again, so this stale status is dropped, not retried.
    if (isConflict(err)) return false;
    // Refused (an edited chart, an old ClusterRole): the app's status goes on saying what an
    // earlier writer saw, so the app itself must tell why (the log and metric reach only an
    // admin). One event per message (EventRecorder's window), not one per retry.
    if (isForbidden(err))
      ctx.events.emit(
        { name, namespace, uid: app.metadata.uid },
        'Warning',
        'StatusWriteRefused',
        `writing the status was refused (403 Forbidden): the operator's RBAC lacks patch on scalableapps/status (${err.message})`,
      );
    throw err;
  }
  const rv = String((res['metadata'] as Json | undefined)?.['resourceVersion'] ?? '');
  ctx.recent.set(appKey, hashOf(next), rv, next);
  return true;
}
