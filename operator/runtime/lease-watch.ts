// Fast failover (tiers/database/lease-break.ts): watches Patroni's leader keys and, while
// this instance leads, releases the lock of a primary that has stopped renewing it. Only
// observations of this process count: a record's clock starts when this process saw it
// change, and starts again whenever the watch restarts (an API-server outage silences every
// primary at once, and is no evidence against any). Before releasing, a fresh read from the
// API server must still show the version judged silent, and the release carries it as a
// precondition: a renewal in between wins.
import { ConflictError } from '../tiers/tier.ts';
import type { ClusterAccess } from '../tiers/tier.ts';
import { clusterAccess } from '../reconcile/cluster-access.ts';
import { kindOf, pathOf } from '../reconcile/kinds.ts';
import type { EventRecorder, EventTarget } from '../reconcile/events.ts';
import { DATABASE_LABEL } from '../tiers/database/names.ts';
import { isSilent, leaderRecordOf, releasePatch } from '../tiers/database/lease-break.ts';
import type { LeaderRecord } from '../tiers/database/lease-break.ts';
import { InformerSet } from './informer-set.ts';
import type { KubeClient } from './kube-client.ts';
import type { Logger } from './log.ts';

const CONFIG_MAP = kindOf('v1', 'ConfigMap');
if (!CONFIG_MAP) throw new Error('ConfigMap is not a known kind');

export interface LeaseWatchOptions {
  readonly client: KubeClient;
  readonly watchNamespaces: readonly string[] | undefined;
  readonly log: Logger;
  readonly events?: EventRecorder;
  /** The app an event about a shard goes to (its uid, for kubectl describe). */
  readonly targetOf?: (namespace: string, app: string) => EventTarget | undefined;
  /**
   * How long a primary of this app may be silent, in ms, or undefined when the operator must
   * not act (failoverSeconds >= 20, no such app, the app being deleted).
   */
  readonly releaseAfterMs: (namespace: string, app: string) => number | undefined;
  /** The client to write with while this instance leads; undefined otherwise. */
  readonly writer: () => KubeClient | undefined;
  readonly onRelease?: (record: LeaderRecord) => void;
  readonly tickMs?: number;
  readonly watchIdleMs?: number;
  readonly now?: () => number;
}

export class LeaseWatch {
  private readonly informer: InformerSet<LeaderRecord>;
  /** Per leader key: the version last seen and when (monotonic ms). */
  private readonly seen = new Map<string, { rv: string; at: number }>();
  private readonly inFlight = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: LeaseWatchOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.informer = new InformerSet<LeaderRecord>(
      opts.watchNamespaces,
      (ns) => pathOf(CONFIG_MAP!, ns),
      {
        client: opts.client,
        log: opts.log,
        resource: 'configmaps (Patroni)',
        labelSelector: DATABASE_LABEL,
        project: leaderRecordOf,
        onChange: (type, r) => {
          const key = `${r.namespace}/${r.name}`;
          if (type === 'delete') this.seen.delete(key);
          else if (this.seen.get(key)?.rv !== r.resourceVersion)
            this.seen.set(key, { rv: r.resourceVersion, at: this.now() });
        },
        // Silence seen through a broken watch proves nothing: every clock starts again.
        onRestart: () => this.restartClocks(),
        ...(opts.watchIdleMs !== undefined ? { idleMs: opts.watchIdleMs } : {}),
      },
    );
  }

  private restartClocks(): void {
    const at = this.now();
    for (const v of this.seen.values()) v.at = at;
  }

  start(): void {
    this.informer.start();
    this.timer = setInterval(() => this.tick(), this.opts.tickMs ?? 500);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.informer.stop();
  }

  get synced(): boolean {
    return this.informer.synced;
  }

  /** Releases every silent lock; at most one attempt per key at a time. */
  tick(): void {
    if (!this.informer.synced) return;
    const writer = this.opts.writer();
    if (!writer) return;
    const now = this.now();
    for (const r of this.informer.list()) {
      if (r.leader === undefined || r.app === undefined) continue;
      const key = `${r.namespace}/${r.name}`;
      const seen = this.seen.get(key);
      if (!seen || seen.rv !== r.resourceVersion || this.inFlight.has(key)) continue;
      if (!isSilent(r, seen.at, now, this.opts.releaseAfterMs(r.namespace, r.app))) continue;
      this.inFlight.add(key);
      void this.release(clusterAccess(writer), r, now - seen.at)
        .catch((err: unknown) =>
          this.opts.log.warn({ key, err: String(err) }, 'could not release a silent leader lock'),
        )
        .finally(() => this.inFlight.delete(key));
    }
  }

  private async release(access: ClusterAccess, r: LeaderRecord, silentMs: number): Promise<void> {
    const fresh = await access.get('v1', 'ConfigMap', r.namespace, r.name);
    const now = fresh ? leaderRecordOf(fresh) : undefined;
    if (!now || now.resourceVersion !== r.resourceVersion || now.leader !== r.leader) return;
    try {
      await access.mergePatch('v1', 'ConfigMap', r.namespace, r.name, releasePatch(r));
    } catch (err) {
      if (err instanceof ConflictError) return; // renewed in between: alive after all
      throw err;
    }
    const message = `${r.scope ?? r.name}: primary ${r.leader} did not renew its leader lock for ${(silentMs / 1000).toFixed(1)} s; lock released so that a replica takes over`;
    this.opts.log.warn({ key: `${r.namespace}/${r.name}`, leader: r.leader, silentMs }, message);
    const app = r.app ?? r.name;
    this.opts.events?.emit(
      this.opts.targetOf?.(r.namespace, app) ?? { namespace: r.namespace, name: app },
      'Warning',
      'PrimaryLockReleased',
      message,
    );
    this.opts.onRelease?.(r);
  }
}
