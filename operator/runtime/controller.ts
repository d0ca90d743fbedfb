// The operator process's core: informers feed one keyed queue, workers run reconcile(key)
// while this instance leads, and shutdown finishes in-flight work before the lease goes.
import { setTimeout as sleep } from 'node:timers/promises';
import { WARM_UP_SPEC } from '../api/sections.ts';
import { APP_LABEL } from '../tiers/shared/meta.ts';
import { EventRecorder } from '../reconcile/events.ts';
import { APP_KIND, OWNED_KINDS, POD_KIND, apiVersionOf, pathOf } from '../reconcile/kinds.ts';
import type { Images } from '../api/images.ts';
import type { NetworkDefaults, RbacDefaults } from '../api/model.ts';
import type { KindInfo } from '../reconcile/kinds.ts';
import { objectKey, projectApp, projectChild, projectPod } from '../reconcile/project.ts';
import type { CachedApp, CachedChild, CachedPod } from '../reconcile/project.ts';
import type { ReconcileContext } from '../reconcile/context.ts';
import { Plans, Recent, planOf } from '../reconcile/plans.ts';
import { caStore } from '../reconcile/certificates.ts';
import type { CaStore } from '../reconcile/certificates.ts';
import { ApplyFailedError, TerminalError, reconcile } from '../reconcile/reconcile.ts';
import type { KindAccess } from '../reconcile/context.ts';
import { CaTidy } from './ca-tidy.ts';
import { discoverResources, resourceKey } from './discovery.ts';
import { InformerSet } from './informer-set.ts';
import { ApiError } from './kube-client.ts';
import type { KubeClient } from './kube-client.ts';
import { LEASE_DEFAULTS, LeaderElector } from './leader.ts';
import { TIERS } from '../tiers/index.ts';
import type { Watch, WatchPorts, WatchedApp } from '../tiers/watch.ts';
import { clusterAccess } from '../reconcile/cluster-access.ts';
import { cacheOpener } from './tier-watches.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';
import { WorkQueue } from './queue.ts';
import type { BackoffOptions } from './queue.ts';

const watchedApp = (app: CachedApp): WatchedApp => ({
  uid: app.metadata.uid,
  spec: app.spec,
  deleting: app.metadata.deleting === true,
  resourceVersion: app.metadata.resourceVersion,
  ...(app.status ? { status: app.status } : {}),
  ...(app.metadata.annotations ? { annotations: app.metadata.annotations } : {}),
});

export interface ControllerOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly identity: string;
  readonly workers: number;
  /** Every app is reconciled again this often, whatever the events said. */
  readonly resyncMs: number;
  /** certificates.ts TRUST_HOLD_MS unless set (SCALABLE_TLS_TRUST_HOLD_SECONDS). */
  readonly tlsTrustHoldMs?: number;
  /** Add-ons installed later are found this often. */
  readonly discoveryRefreshMs: number;
  readonly watchIdleMs: number;
  readonly leaderElection: boolean;
  /** Namespaces to watch (the operator holds Roles there); undefined: all namespaces. */
  readonly watchNamespaces?: readonly string[];
  readonly leaseNamespace: string;
  readonly leaseName: string;
  readonly lease?: { leaseDurationMs: number; renewDeadlineMs: number; retryPeriodMs: number };
  readonly backoff?: BackoffOptions;
  /** Writes one reconcile may have in flight at once (default 8). */
  readonly reconcileConcurrency?: number;
  /**
   * The lease could not be renewed in time. In-flight reconciles are already cancelled; main
   * exits non-zero so the replacement starts with clean caches and queue.
   */
  readonly onLostLeadership?: () => void;
  /** Images of the tiers the operator runs (Helm values -> SCALABLE_IMAGE_*). */
  readonly images?: Images;
  /** Operator-wide network defaults (SCALABLE_INGRESS_NAMESPACES, ...). */
  readonly network?: NetworkDefaults;
  /** The chart's Patroni ClusterRole (SCALABLE_PATRONI_CLUSTER_ROLE). */
  readonly rbac?: RbacDefaults;
}

/** One child kind's cache, started when some app first needs the kind. */
interface KindCache {
  readonly informer: InformerSet<CachedChild>;
  /** Why its last list failed for good (403 / 404); cleared when it syncs. */
  refused: string | undefined;
  /** Apps to reconcile again when it syncs (or is refused). */
  readonly waiting: Set<string>;
}

const appIndex = (labels: Readonly<Record<string, string>> | undefined, namespace: string) => {
  const app = labels?.[APP_LABEL];
  return app === undefined ? undefined : `${namespace}/${app}`;
};

export class Controller {
  readonly queue: WorkQueue;
  private readonly apps: InformerSet<CachedApp>;
  private readonly pods: InformerSet<CachedPod>;
  private readonly children = new Map<KindInfo, KindCache>();
  /** Served resources (discovery.ts resourceKey); undefined until the first discovery. */
  private served = new Set<string>();
  private readonly recent = new Recent();
  private readonly plans: Plans;
  private readonly ca: CaStore;
  private readonly caTidy: CaTidy;
  private readonly events: EventRecorder;
  private readonly leader: LeaderElector | undefined;
  /** Tiers' own long-lived watches (Tier.watches), created once, run on every replica. */
  private readonly tierWatches: readonly Watch[];
  private leading = false;
  /** Aborted when leadership ends: every request of a reconcile carries its signal. */
  private term = new AbortController();
  /** Aborted when leadership ends for good (lost, or shutting down). */
  private readonly ended = new AbortController();
  private stopping = false;
  private workers: Promise<void>[] = [];
  private timers: NodeJS.Timeout[] = [];

  constructor(private readonly opts: ControllerOptions) {
    const { client, log, metrics } = opts;
    this.plans = new Plans({
      ...(opts.images ? { images: opts.images } : {}),
      ...(opts.network ? { network: opts.network } : {}),
      ...(opts.rbac ? { rbac: opts.rbac } : {}),
    });
    // The apps' CAs live beside the leader-election Lease, in the operator's own namespace.
    this.ca = caStore(opts.client, opts.leaseNamespace);
    this.caTidy = new CaTidy({
      store: this.ca,
      cachedApps: () => (this.apps.synced ? this.apps.list() : undefined),
      watched: opts.watchNamespaces,
      log,
    });
    this.queue = new WorkQueue(opts.backoff, (d) => metrics.queueDepth.set(d));
    // Events are writes too: none once this process's (only) term as leader is over.
    this.events = new EventRecorder(client.withSignal(this.ended.signal), log, opts.identity);
    const namespaces = opts.watchNamespaces;
    this.apps = new InformerSet<CachedApp>(namespaces, (ns) => pathOf(APP_KIND, ns), {
      client,
      log,
      resource: APP_KIND.plural,
      project: projectApp,
      onChange: (type, app) => {
        // A deleted app's CA goes with it (ca-tidy.ts).
        if (type === 'delete') this.tidyCas();
        const key = `${app.metadata.namespace}/${app.metadata.name}`;
        // Our own /status write coming back: nothing to do.
        if (this.recent.get(`status|${key}`)?.rv === app.metadata.resourceVersion) return;
        this.queue.add(key);
      },
      idleMs: opts.watchIdleMs,
      onRestart: (cause) => metrics.watchRestarts.inc({ resource: APP_KIND.plural, cause }),
    });
    this.pods = new InformerSet<CachedPod>(namespaces, (ns) => pathOf(POD_KIND, ns), {
      client,
      log,
      resource: POD_KIND.plural,
      labelSelector: APP_LABEL,
      project: projectPod,
      indexOf: (p) => appIndex(p.metadata.labels, p.metadata.namespace),
      onChange: (_t, p) => {
        const key = appIndex(p.metadata.labels, p.metadata.namespace);
        if (key) this.queue.add(key);
      },
      idleMs: opts.watchIdleMs,
      onRestart: (cause) => metrics.watchRestarts.inc({ resource: POD_KIND.plural, cause }),
    });
    const ports: WatchPorts = {
      cache: cacheOpener({ client, namespaces, log, idleMs: opts.watchIdleMs }),
      // Writes end with the term, as a reconcile's do.
      writer: () => (this.leading ? clusterAccess(client.withSignal(this.term.signal)) : undefined),
      events: this.events,
      app: (ns, name) => {
        const app = this.apps.get(`${ns}/${name}`);
        return app ? watchedApp(app) : undefined;
      },
      apps: () =>
        this.apps.list().map((app) => ({
          ...watchedApp(app),
          namespace: app.metadata.namespace,
          name: app.metadata.name,
        })),
      log,
      registry: metrics.registry,
    };
    this.tierWatches = TIERS.flatMap((t) => (t.watches ?? []).map((w) => w.create(ports)));
    if (opts.leaderElection) {
      this.leader = new LeaderElector(client, {
        namespace: opts.leaseNamespace,
        name: opts.leaseName,
        identity: opts.identity,
        ...(opts.lease ?? LEASE_DEFAULTS),
        log,
        onStartedLeading: () => this.setLeading(true),
        onStoppedLeading: (lost) => {
          this.setLeading(false);
          if (lost) opts.onLostLeadership?.();
        },
      });
    }
  }

  get isLeader(): boolean {
    return this.leading;
  }

  private childInformer(
    info: KindInfo,
    onListError: (err: unknown) => void,
  ): InformerSet<CachedChild> {
    const { client, log, metrics } = this.opts;
    const apiVersion = apiVersionOf(info);
    const namespaces = this.opts.watchNamespaces;
    return new InformerSet<CachedChild>(namespaces, (ns) => pathOf(info, ns), {
      client,
      log,
      resource: info.plural,
      labelSelector: APP_LABEL,
      project: (obj) => projectChild(obj, apiVersion, info.kind),
      indexOf: (c) => appIndex(c.metadata.labels, c.metadata.namespace),
      onChange: (type, c) => {
        const objKey = objectKey(c.apiVersion, c.kind, c.metadata.namespace, c.metadata.name);
        if (type === 'delete') this.recent.delete(objKey);
        // The echo of our own write tells us nothing new: no reconcile for it.
        else if (this.recent.get(objKey)?.rv === c.metadata.resourceVersion) return;
        const key = appIndex(c.metadata.labels, c.metadata.namespace);
        if (key) this.queue.add(key);
      },
      idleMs: this.opts.watchIdleMs,
      onRestart: (cause) => metrics.watchRestarts.inc({ resource: info.plural, cause }),
      onListError,
    });
  }

  /** The kind's cache, started on first call. */
  private cacheOf(info: KindInfo): KindCache {
    const existing = this.children.get(info);
    if (existing) return existing;
    const requeue = (c: KindCache) => {
      for (const key of c.waiting) this.queue.add(key);
      c.waiting.clear();
    };
    const cache: KindCache = {
      informer: this.childInformer(info, (err) => {
        if (!(err instanceof ApiError) || (err.code !== 403 && err.code !== 404)) return;
        const why =
          err.code === 403
            ? `listing ${info.plural} was refused (403 Forbidden): the operator's RBAC lacks list/watch on it`
            : `listing ${info.plural} found no such resource (404 Not Found)`;
        if (cache.refused === why) return;
        cache.refused = why;
        this.opts.log.warn({ kind: info.kind, api: apiVersionOf(info), why }, 'kind unavailable');
        requeue(cache);
      }),
      refused: undefined,
      waiting: new Set(),
    };
    this.children.set(info, cache);
    cache.informer.start();
    void cache.informer.whenSynced().then(() => {
      cache.refused = undefined;
      requeue(cache);
    });
    return cache;
  }

  /** What a reconcile may do with a kind now (see KindAccess). */
  private access(info: KindInfo, appKey: string): KindAccess {
    if (!this.served.has(resourceKey(info)))
      return { state: 'unavailable', why: 'not served by this cluster' };
    if (info.createOnly) return { state: 'ready' }; // never listed or watched (kinds.ts)
    const cache = this.cacheOf(info);
    if (cache.informer.synced) return { state: 'ready' };
    // Refused kinds are retried too: the app comes back when its cache syncs after all.
    cache.waiting.add(appKey);
    return cache.refused ? { state: 'unavailable', why: cache.refused } : { state: 'syncing' };
  }

  /**
   * Served resources, per resource. Core kinds' caches start at once (every cluster serves
   * them); an optional kind's only when an app needs it (access) or when objects of ours of
   * that kind exist (so they can still be pruned after a restart).
   */
  private async discover(): Promise<void> {
    const before = this.served;
    this.served = await discoverResources(this.opts.client, OWNED_KINDS);
    const added = [...this.served].filter((k) => !before.has(k));
    for (const info of OWNED_KINDS) {
      if (info.createOnly || this.children.has(info) || !this.served.has(resourceKey(info)))
        continue;
      if (!info.optional || (await this.holdsObjects(info))) this.cacheOf(info);
    }
    // Apps that skipped objects of a kind served now apply them without waiting for a resync.
    if (before.size > 0 && added.length > 0) {
      this.opts.log.info({ resources: added }, 'newly served resources');
      this.enqueueAll();
    }
  }

  /** Whether any object of ours of this kind exists where we watch (one small list). */
  private async holdsObjects(info: KindInfo): Promise<boolean> {
    const namespaces = this.opts.watchNamespaces ?? [undefined];
    for (const ns of namespaces) {
      try {
        const page = await this.opts.client.request<{ items?: unknown[] }>(
          'GET',
          pathOf(info, ns),
          { verb: 'list', resource: info.plural, query: { labelSelector: APP_LABEL, limit: 1 } },
        );
        if ((page.items ?? []).length > 0) return true;
      } catch {
        // A refused or failing list: its cache would fail the same way; an app that needs
        // the kind starts it and says why.
      }
    }
    return false;
  }

  /** Apps and pods listed once (the /readyz answer); child kinds never hold it back. */
  notReady(): string | undefined {
    if (this.stopping) return 'shutting down';
    const pending = [this.apps, this.pods].filter((i) => !i.synced).length;
    return pending === 0 ? undefined : `${pending} caches not synced`;
  }

  async start(): Promise<void> {
    const { log } = this.opts;
    for (;;) {
      try {
        await this.discover();
        break;
      } catch (err) {
        log.warn({ err: String(err) }, 'discovery failed: retrying');
        await sleep(2_000);
      }
    }
    this.warmUp();
    this.apps.start();
    this.pods.start();
    for (const w of this.tierWatches) w.start();
    // Workers wait for apps and pods only: a reconcile that needs a child kind whose cache is
    // still filling waits for it alone (access), and a kind that cannot be listed holds back
    // only the tiers that need it.
    await Promise.all([this.apps.whenSynced(), this.pods.whenSynced()]);
    log.info({ apps: this.apps.size, kinds: this.children.size }, 'caches synced');
    for (let i = 0; i < this.opts.workers; i++) this.workers.push(this.work());
    this.timers.push(
      setInterval(() => {
        this.enqueueAll();
        this.tidyCas();
      }, this.opts.resyncMs),
      setInterval(() => {
        this.discover().catch((err: unknown) =>
          log.debug({ err: String(err) }, 'discovery refresh failed'),
        );
      }, this.opts.discoveryRefreshMs),
    );
    for (const t of this.timers) t.unref();
    if (this.leader) this.leader.start();
    else this.setLeading(true);
  }

  /** The first build loads and compiles the builders (~1 s): pay it before any app waits. */
  private warmUp(): void {
    planOf({
      apiVersion: APP_KIND.group + '/' + APP_KIND.version,
      kind: APP_KIND.kind,
      metadata: {
        name: 'warm-up',
        namespace: 'default',
        uid: 'warm-up',
        resourceVersion: '1',
        generation: 1,
      },
      spec: WARM_UP_SPEC,
    });
  }

  private setLeading(leading: boolean): void {
    if (leading) this.term = new AbortController();
    else {
      this.term.abort(new Error('leadership ended'));
      this.ended.abort(new Error('leadership ended'));
    }
    this.leading = leading;
    this.opts.metrics.leader.set(leading ? 1 : 0);
    if (!leading) this.opts.metrics.appReady.reset();
    if (leading) {
      this.enqueueAll();
      this.tidyCas();
    }
  }

  /** The CA Secret's upkeep (ca-tidy.ts): the leader's, once the apps cache has synced. */
  private tidyCas(): void {
    if (!this.leading || this.stopping || !this.apps.synced) return;
    void this.caTidy.request(this.opts.client.withSignal(this.term.signal));
  }

  enqueueAll(): void {
    for (const app of this.apps.list())
      this.queue.add(`${app.metadata.namespace}/${app.metadata.name}`);
  }

  private context(): ReconcileContext {
    return {
      // A former leader's reconciles must not go on writing: their requests end with the term.
      client: this.opts.client.withSignal(this.term.signal),
      log: this.opts.log,
      events: this.events,
      getApp: (key) => this.apps.get(key),
      children: (namespace, app) => {
        const out: CachedChild[] = [];
        for (const c of this.children.values())
          out.push(...c.informer.byIndex(`${namespace}/${app}`));
        return out;
      },
      pods: (namespace, app) => this.pods.byIndex(`${namespace}/${app}`),
      access: (info, appKey) => this.access(info, appKey),
      concurrency: this.opts.reconcileConcurrency ?? 8,
      recent: this.recent,
      plans: this.plans,
      certificateAuthority: this.ca.forApp,
      ...(this.opts.tlsTrustHoldMs !== undefined ? { trustHoldMs: this.opts.tlsTrustHoldMs } : {}),
      onWrite: (kind, action) => this.opts.metrics.objectWrites.inc({ kind, action }),
    };
  }

  private async work(): Promise<void> {
    const { log, metrics } = this.opts;
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const ctx = this.context();
      // Followers drop work: becoming leader enqueues every app anyway.
      if (!this.leading) {
        this.queue.forget(key);
        this.queue.done(key);
        continue;
      }
      const end = metrics.reconcileDuration.startTimer();
      try {
        const result = await reconcile(key, ctx);
        this.queue.forget(key);
        metrics.reconciles.inc({ result: result.outcome });
        const [namespace = '', name = ''] = key.split('/');
        if (result.outcome === 'gone') metrics.appReady.remove({ namespace, name });
        else if (result.outcome !== 'waiting')
          metrics.appReady.set({ namespace, name }, result.outcome === 'ready' ? 1 : 0);
      } catch (err) {
        const reason =
          err instanceof ApplyFailedError
            ? 'apply'
            : err instanceof TerminalError
              ? 'terminal'
              : 'error';
        metrics.reconciles.inc({ result: 'error' });
        metrics.reconcileErrors.inc({ reason });
        const [namespace = '', name = ''] = key.split('/');
        metrics.appReady.set({ namespace, name }, 0);
        if (err instanceof TerminalError) {
          this.queue.forget(key);
          log.error({ app: key, err: err.message }, 'reconcile failed for good');
        } else {
          const delay = this.queue.addRateLimited(key);
          log.warn(
            { app: key, err: err instanceof Error ? err.message : String(err), retryInMs: delay },
            'reconcile failed',
          );
        }
      } finally {
        end();
        this.queue.done(key);
      }
    }
  }

  /** Stop taking work, finish in-flight reconciles, release the lease, close the caches. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    this.queue.shutDown();
    await Promise.all(this.workers);
    await this.leader?.stop();
    await Promise.all([
      this.apps.stop(),
      this.pods.stop(),
      ...this.tierWatches.map((w) => w.stop()),
      ...[...this.children.values()].map((c) => c.informer.stop()),
    ]);
    this.opts.client.close();
  }

  /** For status lines and tests: the apps in the cache with their Ready condition. */
  appSummaries(): Array<{
    key: string;
    ready: string;
    reason: string;
    web?: string;
    generation?: number;
    observed?: number;
  }> {
    return this.apps.list().map((a) => {
      const status = (a.status ?? {}) as Record<string, unknown>;
      const conds = (status['conditions'] ?? []) as Array<Record<string, unknown>>;
      const ready = conds.find((c) => c['type'] === 'Ready');
      const web = (status['web'] as Record<string, unknown> | undefined)?.['ready'];
      return {
        key: `${a.metadata.namespace}/${a.metadata.name}`,
        ready: String(ready?.['status'] ?? 'Unknown'),
        reason: String(ready?.['reason'] ?? ''),
        ...(typeof web === 'string' ? { web } : {}),
        ...(a.metadata.generation !== undefined ? { generation: a.metadata.generation } : {}),
        ...(typeof status['observedGeneration'] === 'number'
          ? { observed: status['observedGeneration'] }
          : {}),
      };
    });
  }
}
