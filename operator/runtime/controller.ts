// The operator process's core: informers feed one keyed queue, workers run reconcile(key)
// while this instance leads, and shutdown finishes in-flight work before the lease goes.
import { setTimeout as sleep } from 'node:timers/promises';
import { WARM_UP_SPEC } from '../api/sections.ts';
import { APP_LABEL } from '../tiers/shared/meta.ts';
import { EventRecorder } from '../reconcile/events.ts';
import { APP_KIND, OWNED_KINDS, POD_KIND, apiVersionOf, pathOf } from '../reconcile/kinds.ts';
import type { Images } from '../api/images.ts';
import type { KindInfo } from '../reconcile/kinds.ts';
import { objectKey, projectApp, projectChild, projectPod } from '../reconcile/project.ts';
import type { CachedApp, CachedChild, CachedPod } from '../reconcile/project.ts';
import type { ReconcileContext } from '../reconcile/context.ts';
import { Plans, Recent, planOf } from '../reconcile/plans.ts';
import { caLoader } from '../reconcile/certificates.ts';
import type { KeyPair } from '../tiers/shared/tls/x509.ts';
import { ApplyFailedError, TerminalError, reconcile } from '../reconcile/reconcile.ts';
import { discoverGroupVersions } from './discovery.ts';
import { Informer } from './informer.ts';
import type { KubeClient } from './kube-client.ts';
import { LEASE_DEFAULTS, LeaderElector } from './leader.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';
import { WorkQueue } from './queue.ts';
import type { BackoffOptions } from './queue.ts';

export interface ControllerOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly identity: string;
  readonly workers: number;
  /** Every app is reconciled again this often, whatever the events said. */
  readonly resyncMs: number;
  /** Add-ons installed later are found this often. */
  readonly discoveryRefreshMs: number;
  readonly watchIdleMs: number;
  readonly leaderElection: boolean;
  readonly leaseNamespace: string;
  readonly leaseName: string;
  readonly lease?: { leaseDurationMs: number; renewDeadlineMs: number; retryPeriodMs: number };
  readonly backoff?: BackoffOptions;
  /** Images of the tiers the operator runs (Helm values -> SCALABLE_IMAGE_*). */
  readonly images?: Images;
}

const appIndex = (labels: Readonly<Record<string, string>> | undefined, namespace: string) => {
  const app = labels?.[APP_LABEL];
  return app === undefined ? undefined : `${namespace}/${app}`;
};

export class Controller {
  readonly queue: WorkQueue;
  private readonly apps: Informer<CachedApp>;
  private readonly pods: Informer<CachedPod>;
  private readonly children = new Map<KindInfo, Informer<CachedChild>>();
  private served = new Set<string>(['v1']);
  private readonly recent = new Recent();
  private readonly plans: Plans;
  private readonly ca: () => Promise<KeyPair>;
  private readonly events: EventRecorder;
  private readonly leader: LeaderElector | undefined;
  private leading = false;
  private stopping = false;
  private workers: Promise<void>[] = [];
  private timers: NodeJS.Timeout[] = [];

  constructor(private readonly opts: ControllerOptions) {
    const { client, log, metrics } = opts;
    this.plans = new Plans(opts.images ? { images: opts.images } : {});
    // The CA lives beside the leader-election Lease, in the operator's own namespace.
    this.ca = caLoader(opts.client, opts.leaseNamespace);
    this.queue = new WorkQueue(opts.backoff, (d) => metrics.queueDepth.set(d));
    this.events = new EventRecorder(client, log, opts.identity);
    this.apps = new Informer<CachedApp>({
      client,
      log,
      path: pathOf(APP_KIND),
      resource: APP_KIND.plural,
      project: projectApp,
      onChange: (_t, app) => {
        const key = `${app.metadata.namespace}/${app.metadata.name}`;
        // Our own /status write coming back: nothing to do.
        if (this.recent.get(`status|${key}`)?.rv === app.metadata.resourceVersion) return;
        this.queue.add(key);
      },
      idleMs: opts.watchIdleMs,
      onRestart: (cause) => metrics.watchRestarts.inc({ resource: APP_KIND.plural, cause }),
    });
    this.pods = new Informer<CachedPod>({
      client,
      log,
      path: pathOf(POD_KIND),
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
    if (opts.leaderElection) {
      this.leader = new LeaderElector(client, {
        namespace: opts.leaseNamespace,
        name: opts.leaseName,
        identity: opts.identity,
        ...(opts.lease ?? LEASE_DEFAULTS),
        log,
        onStartedLeading: () => this.setLeading(true),
        onStoppedLeading: () => this.setLeading(false),
      });
    }
  }

  get isLeader(): boolean {
    return this.leading;
  }

  private childInformer(info: KindInfo): Informer<CachedChild> {
    const { client, log, metrics } = this.opts;
    const apiVersion = apiVersionOf(info);
    return new Informer<CachedChild>({
      client,
      log,
      path: pathOf(info),
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
    });
  }

  private async discover(): Promise<void> {
    this.served = await discoverGroupVersions(this.opts.client);
    for (const info of OWNED_KINDS) {
      if (info.createOnly) continue; // never listed or watched (kinds.ts)
      if (this.children.has(info) || !this.served.has(apiVersionOf(info))) continue;
      const inf = this.childInformer(info);
      this.children.set(info, inf);
      inf.start();
      if (info.optional)
        this.opts.log.info({ api: apiVersionOf(info), kind: info.kind }, 'optional API served');
    }
  }

  /** Whether every cache has listed once (the /readyz answer). */
  notReady(): string | undefined {
    if (this.stopping) return 'shutting down';
    const all = [this.apps, this.pods, ...this.children.values()];
    const pending = all.filter((i) => !i.synced).length;
    return pending === 0 && this.children.size > 0 ? undefined : `${pending} caches not synced`;
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
    await Promise.all([
      this.apps.whenSynced(),
      this.pods.whenSynced(),
      ...[...this.children.values()].map((i) => i.whenSynced()),
    ]);
    log.info({ apps: this.apps.size, kinds: this.children.size }, 'caches synced');
    for (let i = 0; i < this.opts.workers; i++) this.workers.push(this.work());
    this.timers.push(
      setInterval(() => this.enqueueAll(), this.opts.resyncMs),
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
    this.leading = leading;
    this.opts.metrics.leader.set(leading ? 1 : 0);
    if (!leading) this.opts.metrics.appReady.reset();
    if (leading) this.enqueueAll();
  }

  enqueueAll(): void {
    for (const app of this.apps.list())
      this.queue.add(`${app.metadata.namespace}/${app.metadata.name}`);
  }

  private context(): ReconcileContext {
    return {
      client: this.opts.client,
      log: this.opts.log,
      events: this.events,
      getApp: (key) => this.apps.get(key),
      children: (namespace, app) => {
        const out: CachedChild[] = [];
        for (const inf of this.children.values()) out.push(...inf.byIndex(`${namespace}/${app}`));
        return out;
      },
      pods: (namespace, app) => this.pods.byIndex(`${namespace}/${app}`),
      served: (info) => this.served.has(apiVersionOf(info)),
      recent: this.recent,
      plans: this.plans,
      certificateAuthority: this.ca,
      onWrite: (kind, action) => this.opts.metrics.objectWrites.inc({ kind, action }),
    };
  }

  private async work(): Promise<void> {
    const { log, metrics } = this.opts;
    const ctx = this.context();
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
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
        else metrics.appReady.set({ namespace, name }, result.outcome === 'ready' ? 1 : 0);
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
      ...[...this.children.values()].map((i) => i.stop()),
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
