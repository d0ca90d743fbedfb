// The database tier's lock watch: fast failover and fencing, by the rules of lease-break.ts.
// It caches Patroni's ConfigMaps (leader lock, live config, sync state) and the database
// pods, and on every tick, while this instance leads:
// - releases the lock of a silent synchronous primary once releaseVerdict allows it: the
//   pod's fence has stopped its Postgres, the synchronous standby no longer streams from it,
//   Patroni runs the spec's timings. Before releasing, a fresh read from the API server must
//   still show the version judged silent, and the release carries it as a precondition (a
//   renewal in between wins); the same patch records the release on the lock, so whichever
//   instance leads next still fences;
// - fences: a pod labelled primary that does not hold the lock is deleted with a short grace
//   period (fenceVerdict), so that the primary Service follows the lock: the holder whose
//   lock this watch released at once, before any member takes it.
// Only observations of this process count: a record's clock starts when this process saw it
// change, and starts again whenever the watch restarts (an API-server outage silences every
// primary at once, and is no evidence against any).
import { Counter } from 'prom-client';
import type { Logger } from '../../ports/log.ts';
import { ConflictError } from '../tier.ts';
import type { ClusterAccess } from '../tier.ts';
import type { CacheSpec, EventSink, EventTarget, TierWatch, WatchedCache } from '../watch.ts';
import { DATABASE_LABEL, SCOPE_LABEL } from './names.ts';
import {
  FENCE_GRACE_SECONDS,
  RENEWING,
  failoverSpecOf,
  fastFailover,
  fenceSeconds,
  fenceVerdict,
  leaderRecordOf,
  memberViewOf,
  releasePatch,
  releaseVerdict,
  timingsOf,
} from './lease-break.ts';
import type { LeaderRecord, MemberView } from './lease-break.ts';

/** A database pod in the watch's cache: its shard, and what the rules read. */
export interface MemberRecord extends MemberView {
  readonly namespace: string;
  readonly app: string | undefined;
  readonly scope: string | undefined;
}

export function memberRecordOf(obj: Record<string, unknown>): MemberRecord {
  const m = (obj['metadata'] ?? {}) as Record<string, unknown>;
  const labels = (m['labels'] ?? {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
  return {
    ...memberViewOf(obj),
    namespace: String(m['namespace'] ?? ''),
    app: str(labels[DATABASE_LABEL]),
    scope: str(labels[SCOPE_LABEL]),
  };
}

export interface LeaseWatchOptions {
  /** Opens a cache (WatchPorts.cache). */
  readonly cache: <T>(spec: CacheSpec<T>) => WatchedCache<T>;
  readonly log: Logger;
  readonly events?: EventSink;
  /** The app an event about a shard goes to (its uid, for kubectl describe). */
  readonly targetOf?: (namespace: string, app: string) => EventTarget | undefined;
  /**
   * The app's database.synchronous and failoverSeconds, or undefined when the operator must
   * not act (no such app, the app being deleted, its database off).
   */
  readonly specOf: (
    namespace: string,
    app: string,
  ) => { synchronous: boolean; failoverSeconds: number } | undefined;
  /** What to write with while this instance leads; undefined otherwise. */
  readonly writer: () => ClusterAccess | undefined;
  readonly onRelease?: (record: LeaderRecord) => void;
  /** A pod deleted because another member holds the lock (pod name). */
  readonly onFence?: (record: LeaderRecord, pod: string) => void;
  readonly tickMs?: number;
  /** Monotonic ms (clocks of silence). */
  readonly now?: () => number;
  /** Wall-clock ms (the time a release is recorded with). */
  readonly wallNow?: () => number;
}

interface Shard {
  leader?: LeaderRecord;
  config?: LeaderRecord;
  sync?: LeaderRecord;
}

const keyOf = (r: { namespace: string; name: string }) => `${r.namespace}/${r.name}`;
const timingsKey = (r: LeaderRecord) =>
  JSON.stringify([r.config?.ttl, r.config?.loop_wait, r.config?.retry_timeout]);

export class LeaseWatch {
  private readonly keys: WatchedCache<LeaderRecord>;
  private readonly pods: WatchedCache<MemberRecord>;
  /** Per leader key: the version last seen and when (monotonic ms). */
  private readonly seen = new Map<string, { rv: string; at: number }>();
  /** Per leader key: the holder last seen and since when. */
  private readonly held = new Map<string, { holder: string | undefined; at: number }>();
  /** Per config key: the timings last seen, and when they were seen to change. */
  private readonly timings = new Map<string, { value: string; changedAt: number | undefined }>();
  /** Per leader key: why a silent lock was last kept (said once per reason). */
  private readonly kept = new Map<string, string>();
  private readonly inFlight = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly wallNow: () => number;

  constructor(private readonly opts: LeaseWatchOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.wallNow = opts.wallNow ?? (() => Date.now());
    this.keys = opts.cache({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      resource: 'configmaps (Patroni)',
      labelSelector: DATABASE_LABEL,
      project: leaderRecordOf,
      onChange: (type, r) => this.observe(type, r),
      // Silence seen through a broken watch proves nothing: every clock starts again.
      onRestart: () => this.restartClocks(),
    });
    this.pods = opts.cache({
      apiVersion: 'v1',
      kind: 'Pod',
      resource: 'pods (Patroni members)',
      labelSelector: DATABASE_LABEL,
      project: memberRecordOf,
    });
  }

  private observe(type: string, r: LeaderRecord): void {
    const key = keyOf(r);
    const now = this.now();
    if (type === 'delete') {
      this.seen.delete(key);
      this.held.delete(key);
      this.timings.delete(key);
      return;
    }
    if (r.key === 'leader') {
      if (this.seen.get(key)?.rv !== r.resourceVersion)
        this.seen.set(key, { rv: r.resourceVersion, at: now });
      const held = this.held.get(key);
      if (!held || held.holder !== r.leader) this.held.set(key, { holder: r.leader, at: now });
    } else if (r.key === 'config') {
      const value = timingsKey(r);
      const before = this.timings.get(key);
      if (!before) this.timings.set(key, { value, changedAt: undefined });
      else if (before.value !== value) this.timings.set(key, { value, changedAt: now });
    }
  }

  private restartClocks(): void {
    const at = this.now();
    for (const v of this.seen.values()) v.at = at;
    for (const v of this.held.values()) v.at = at;
  }

  start(): void {
    this.keys.start();
    this.pods.start();
    this.timer = setInterval(() => this.tick(), this.opts.tickMs ?? 500);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.all([this.keys.stop(), this.pods.stop()]);
  }

  get synced(): boolean {
    return this.keys.synced && this.pods.synced;
  }

  /** Releases what may be released and fences what must be; one write per key at a time. */
  tick(): void {
    if (!this.synced) return;
    const access = this.opts.writer();
    if (!access) return;
    const now = this.now();
    const shards = new Map<string, Shard>();
    for (const r of this.keys.list()) {
      if (r.app === undefined || r.scope === undefined || r.key === 'other') continue;
      const s = shards.get(`${r.namespace}/${r.scope}`) ?? {};
      s[r.key] = r;
      shards.set(`${r.namespace}/${r.scope}`, s);
    }
    const members = new Map<string, MemberRecord[]>();
    for (const p of this.pods.list()) {
      const k = `${p.namespace}/${p.scope ?? ''}`;
      members.set(k, [...(members.get(k) ?? []), p]);
    }
    for (const [shardKey, s] of shards) {
      const leader = s.leader;
      if (!leader?.app) continue;
      const spec = this.opts.specOf(leader.namespace, leader.app);
      if (!spec) continue;
      const pods = members.get(shardKey) ?? [];
      this.fenceShard(access, leader, s, pods, now);
      this.releaseShard(access, leader, s, pods, spec, now);
    }
  }

  private fenceShard(
    access: ClusterAccess,
    leader: LeaderRecord,
    s: Shard,
    pods: readonly MemberRecord[],
    now: number,
  ): void {
    const held = this.held.get(keyOf(leader));
    const verdict = fenceVerdict({
      leader,
      config: s.config,
      members: pods,
      heldMs: held && held.holder === leader.leader ? now - held.at : 0,
      wallNowMs: this.wallNow(),
    });
    for (const f of verdict.fence) {
      const key = `${leader.namespace}/pod/${f.pod}/${f.uid}`;
      if (this.inFlight.has(key)) continue;
      this.inFlight.add(key);
      void this.fence(access, leader, f.pod, f.uid, f.why)
        .catch((err: unknown) =>
          this.opts.log.warn({ pod: f.pod, err: String(err) }, 'could not fence a pod'),
        )
        .finally(() => this.inFlight.delete(key));
    }
  }

  private releaseShard(
    access: ClusterAccess,
    leader: LeaderRecord,
    s: Shard,
    pods: readonly MemberRecord[],
    spec: { synchronous: boolean; failoverSeconds: number },
    now: number,
  ): void {
    const key = keyOf(leader);
    const seen = this.seen.get(key);
    if (!seen || this.inFlight.has(key) || !fastFailover(spec)) return;
    const configKey = s.config ? keyOf(s.config) : undefined;
    const changedAt = configKey ? this.timings.get(configKey)?.changedAt : undefined;
    const verdict = releaseVerdict({
      spec,
      leader,
      config: s.config,
      sync: s.sync,
      members: pods,
      silentMs: now - seen.at,
      configStableMs: changedAt === undefined ? Infinity : now - changedAt,
    });
    if (!verdict.release) {
      if (verdict.why === RENEWING) this.kept.delete(key);
      else if (this.kept.get(key) !== verdict.why && leader.leader !== undefined) {
        // Said once per reason: why a primary silent this long keeps its lock.
        this.kept.set(key, verdict.why);
        const message = `${leader.scope ?? leader.name}: primary ${leader.leader} has not renewed its leader lock for ${((now - seen.at) / 1000).toFixed(1)} s; lock kept: ${verdict.why}`;
        this.opts.log.info({ key, leader: leader.leader }, message);
        this.emit(leader, 'Normal', 'PrimaryLockKept', message);
      }
      return;
    }
    this.inFlight.add(key);
    void this.release(access, leader, s, pods, now - seen.at)
      .catch((err: unknown) =>
        this.opts.log.warn({ key, err: String(err) }, 'could not release a leader lock'),
      )
      .finally(() => this.inFlight.delete(key));
  }

  private async fence(
    access: ClusterAccess,
    leader: LeaderRecord,
    pod: string,
    uid: string,
    why: string,
  ): Promise<void> {
    await access.delete('v1', 'Pod', leader.namespace, pod, uid, FENCE_GRACE_SECONDS);
    const holds = leader.leader ? `${leader.leader} holds the lock` : 'nobody holds the lock';
    const message = `${leader.scope ?? leader.name}: pod ${pod} still labelled primary while ${holds} (${why}); deleted with a ${FENCE_GRACE_SECONDS} s grace period so that the primary Service stops sending it connections (its volume is kept; it comes back as a replica)`;
    this.opts.log.warn({ key: keyOf(leader), pod }, message);
    this.emit(leader, 'Warning', 'PrimaryFenced', message);
    this.opts.onFence?.(leader, pod);
  }

  private emit(r: LeaderRecord, type: 'Normal' | 'Warning', reason: string, message: string) {
    const app = r.app ?? r.name;
    this.opts.events?.emit(
      this.opts.targetOf?.(r.namespace, app) ?? { namespace: r.namespace, name: app },
      type,
      reason,
      message,
    );
  }

  /** Releases the lock if the API server still has the version judged silent. */
  private async release(
    access: ClusterAccess,
    r: LeaderRecord,
    s: Shard,
    pods: readonly MemberRecord[],
    silentMs: number,
  ): Promise<void> {
    const fresh = await access.get('v1', 'ConfigMap', r.namespace, r.name);
    const now = fresh ? leaderRecordOf(fresh) : undefined;
    if (!now || now.resourceVersion !== r.resourceVersion || now.leader !== r.leader) return;
    const holder = pods.find((p) => p.name === r.leader);
    if (!r.leader || !holder) return;
    const intent = {
      member: r.leader,
      uid: holder.uid,
      at: new Date(this.wallNow()).toISOString(),
    };
    try {
      await access.mergePatch('v1', 'ConfigMap', r.namespace, r.name, releasePatch(r, intent));
    } catch (err) {
      if (err instanceof ConflictError) return; // renewed in between: alive after all
      throw err;
    }
    const fence = s.config?.config?.ttl
      ? fenceSeconds(timingsOf(s.config.config.ttl), holder.fenceMargin)
      : undefined;
    const standbys = (s.sync?.syncStandbys ?? []).join(', ');
    const message = `${r.scope ?? r.name}: primary ${r.leader} did not renew its leader lock for ${(silentMs / 1000).toFixed(1)} s; its pod's fence stops its Postgres after ${fence ?? '?'} s and the synchronous standby (${standbys}) no longer streams from it: lock released so that the standby takes over`;
    this.opts.log.warn({ key: keyOf(r), leader: r.leader, silentMs }, message);
    this.emit(r, 'Warning', 'PrimaryLockReleased', message);
    this.opts.onRelease?.(r);
  }
}

/**
 * The database tier's watch (Tier.watches): the operator's fast failover and fencing, for
 * apps in its cache that are not being deleted, with the metrics
 * scalable_database_lock_releases_total and scalable_database_fenced_pods_total.
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
    const fenced = new Counter({
      name: 'scalable_database_fenced_pods_total',
      help: 'Database pods deleted because they were labelled primary while another member held the leader lock.',
      labelNames: ['namespace', 'app'],
      registers: [ports.registry],
    });
    return new LeaseWatch({
      cache: ports.cache,
      log: ports.log,
      events: ports.events,
      specOf: (ns, name) => {
        const app = ports.app(ns, name);
        return !app || app.deleting ? undefined : failoverSpecOf(app.spec);
      },
      targetOf: (ns, name): EventTarget | undefined => {
        const app = ports.app(ns, name);
        return app ? { namespace: ns, name, uid: app.uid } : undefined;
      },
      writer: ports.writer,
      onRelease: (r) => releases.inc({ namespace: r.namespace, app: r.app ?? '' }),
      onFence: (r) => fenced.inc({ namespace: r.namespace, app: r.app ?? '' }),
    });
  },
};
