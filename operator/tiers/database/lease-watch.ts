// Fast failover (lease-break.ts): watches Patroni's leader keys and, while
// this instance leads, releases the lock of a primary that has stopped renewing it. Only
// observations of this process count: a record's clock starts when this process saw it
// change, and starts again whenever the watch restarts (an API-server outage silences every
// primary at once, and is no evidence against any). Before releasing, a fresh read from the
// API server must still show the version judged silent, and the release carries it as a
// precondition: a renewal in between wins.
//
// Then fencing: a primary that died with its node keeps its role label (only its own Patroni
// changes it) and looks Ready until the node controller notices, tens of seconds later, so
// the primary Service would still send connections to it. Once another member holds the lock
// this watch released, the silent one is not the primary by the DCS's word: if its pod still
// carries the primary label, the watch deletes it (that uid only). A terminating pod leaves
// the Service at once; its volume stays, and it comes back as a replica. A false alarm never
// gets here: the live primary takes its own lock back.
import { Counter } from 'prom-client';
import type { Logger } from '../../ports/log.ts';
import { ConflictError } from '../tier.ts';
import type { ClusterAccess } from '../tier.ts';
import type { CacheSpec, EventSink, EventTarget, TierWatch, WatchedCache } from '../watch.ts';
import { DATABASE_LABEL, PRIMARY_ROLE, ROLE_LABEL } from './names.ts';
import {
  failoverSecondsOf,
  isSilent,
  leaderRecordOf,
  releaseAfterSeconds,
  releasePatch,
} from './lease-break.ts';
import type { LeaderRecord } from './lease-break.ts';

export interface LeaseWatchOptions {
  /** Opens the cache of Patroni's ConfigMaps (WatchPorts.cache). */
  readonly cache: <T>(spec: CacheSpec<T>) => WatchedCache<T>;
  readonly log: Logger;
  readonly events?: EventSink;
  /** The app an event about a shard goes to (its uid, for kubectl describe). */
  readonly targetOf?: (namespace: string, app: string) => EventTarget | undefined;
  /**
   * How long a primary of this app may be silent, in ms, or undefined when the operator must
   * not act (failoverSeconds >= 20, no such app, the app being deleted).
   */
  readonly releaseAfterMs: (namespace: string, app: string) => number | undefined;
  /** What to write with while this instance leads; undefined otherwise. */
  readonly writer: () => ClusterAccess | undefined;
  readonly onRelease?: (record: LeaderRecord) => void;
  /** A silent primary's pod deleted after another member took the lock (pod name). */
  readonly onFence?: (record: LeaderRecord, pod: string) => void;
  /** How long after a release a takeover is awaited for fencing (default 120 s). */
  readonly fenceWithinMs?: number;
  readonly tickMs?: number;
  readonly now?: () => number;
}

export class LeaseWatch {
  private readonly informer: WatchedCache<LeaderRecord>;
  /** Per leader key: the version last seen and when (monotonic ms). */
  private readonly seen = new Map<string, { rv: string; at: number }>();
  private readonly inFlight = new Set<string>();
  /**
   * Locks this watch released whose holder's pod carried the primary label, by key: the
   * record released, when, and that pod's uid then (what fencing may delete).
   */
  private readonly released = new Map<string, { record: LeaderRecord; at: number; uid: string }>();
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: LeaseWatchOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.informer = opts.cache({
      apiVersion: 'v1',
      kind: 'ConfigMap',
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
    });
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

  /** Releases every silent lock and fences taken-over ones; one attempt per key at a time. */
  tick(): void {
    if (!this.informer.synced) return;
    const access = this.opts.writer();
    if (!access) return;
    const now = this.now();
    for (const r of this.informer.list()) {
      if (r.app === undefined) continue;
      const key = `${r.namespace}/${r.name}`;
      const seen = this.seen.get(key);
      if (!seen || this.inFlight.has(key)) continue;
      const fence = this.fenceDue(key, r, now);
      if (
        fence === undefined &&
        !isSilent(r, seen.at, now, this.opts.releaseAfterMs(r.namespace, r.app))
      )
        continue;
      this.inFlight.add(key);
      const work =
        fence !== undefined
          ? this.fence(access, fence.record, fence.uid)
          : this.release(access, r, now - seen.at).then((uid) => {
              if (uid !== undefined) this.released.set(key, { record: r, at: this.now(), uid });
            });
      void work
        .catch((err: unknown) =>
          this.opts.log.warn({ key, err: String(err) }, 'could not release or fence a leader'),
        )
        .finally(() => this.inFlight.delete(key));
    }
  }

  /** The release to fence now: another member holds the lock this watch released. */
  private fenceDue(key: string, r: LeaderRecord, now: number) {
    const done = this.released.get(key);
    if (!done) return undefined;
    if (now - done.at > (this.opts.fenceWithinMs ?? 120_000) || r.leader === done.record.leader) {
      this.released.delete(key); // no takeover in time, or the primary took its lock back
      return undefined;
    }
    if (r.leader === undefined) return undefined; // the race is still on
    this.released.delete(key);
    return done;
  }

  /** The pod of `member` while it carries the primary label: its uid. */
  private async primaryPodUid(access: ClusterAccess, r: LeaderRecord, member: string) {
    const pods = await access.list(
      'v1',
      'Pod',
      r.namespace,
      `${DATABASE_LABEL}=${r.app ?? ''},${ROLE_LABEL}=${PRIMARY_ROLE}`,
    );
    const pod = pods.find((p) => (p['metadata'] as { name?: string } | undefined)?.name === member);
    return (pod?.['metadata'] as { uid?: string } | undefined)?.uid;
  }

  private async fence(access: ClusterAccess, r: LeaderRecord, uid: string) {
    const member = r.leader;
    if (!member) return;
    if ((await this.primaryPodUid(access, r, member)) !== uid) return; // relabelled or replaced
    await access.delete('v1', 'Pod', r.namespace, member, uid);
    const message = `${r.scope ?? r.name}: pod ${member} still labelled primary after another member took over; deleted so that the primary Service stops sending it connections (its volume is kept; it comes back as a replica)`;
    this.opts.log.warn({ key: `${r.namespace}/${r.name}`, pod: member }, message);
    this.emit(r, 'PrimaryFenced', message);
    this.opts.onFence?.(r, member);
  }

  private emit(r: LeaderRecord, reason: string, message: string): void {
    const app = r.app ?? r.name;
    this.opts.events?.emit(
      this.opts.targetOf?.(r.namespace, app) ?? { namespace: r.namespace, name: app },
      'Warning',
      reason,
      message,
    );
  }

  /**
   * Releases the lock if the API server still has the version judged silent; gives the
   * silent primary's pod uid when released and that pod carries the primary label.
   */
  private async release(
    access: ClusterAccess,
    r: LeaderRecord,
    silentMs: number,
  ): Promise<string | undefined> {
    const fresh = await access.get('v1', 'ConfigMap', r.namespace, r.name);
    const now = fresh ? leaderRecordOf(fresh) : undefined;
    if (!now || now.resourceVersion !== r.resourceVersion || now.leader !== r.leader)
      return undefined;
    const uid = r.leader ? await this.primaryPodUid(access, r, r.leader) : undefined;
    try {
      await access.mergePatch('v1', 'ConfigMap', r.namespace, r.name, releasePatch(r));
    } catch (err) {
      if (err instanceof ConflictError) return undefined; // renewed in between: alive after all
      throw err;
    }
    const message = `${r.scope ?? r.name}: primary ${r.leader} did not renew its leader lock for ${(silentMs / 1000).toFixed(1)} s; lock released so that a replica takes over`;
    this.opts.log.warn({ key: `${r.namespace}/${r.name}`, leader: r.leader, silentMs }, message);
    this.emit(r, 'PrimaryLockReleased', message);
    this.opts.onRelease?.(r);
    return uid;
  }
}

/**
 * The database tier's watch (Tier.watches): the operator's fast failover, for apps in its
 * cache that are not being deleted, with the metric scalable_database_lock_releases_total.
 */
export const leaseWatch: TierWatch = {
  name: 'patroni-leader-locks',
  create(ports) {
    const releases = new Counter({
      name: 'scalable_database_lock_releases_total',
      help: 'Patroni leader locks released by the operator because the primary stopped renewing (fast failover).',
      labelNames: ['namespace', 'app'],
      registers: [ports.registry],
    });
    return new LeaseWatch({
      cache: ports.cache,
      log: ports.log,
      events: ports.events,
      releaseAfterMs: (ns, name) => {
        const app = ports.app(ns, name);
        if (!app || app.deleting) return undefined;
        const seconds = failoverSecondsOf(app.spec);
        const after = seconds === undefined ? undefined : releaseAfterSeconds(seconds);
        return after === undefined ? undefined : after * 1000;
      },
      targetOf: (ns, name): EventTarget | undefined => {
        const app = ports.app(ns, name);
        return app ? { namespace: ns, name, uid: app.uid } : undefined;
      },
      writer: ports.writer,
      onRelease: (r) => releases.inc({ namespace: r.namespace, app: r.app ?? '' }),
    });
  },
};
