// Failover rules (pure): Patroni's timings, the in-pod fence's deadline, when the operator may
// release a silent primary's leader lock, and which pods leave the primary Service.
//
// Patroni replaces a dead primary only once its leader lock is free; the lock is a lease
// (ttl) that Patroni refuses below 20 s. The operator may free it sooner, as Patroni's own
// delete_leader would (the `leader` annotation removed under a resourceVersion
// precondition), only where that cannot lose an acknowledged write:
// - synchronous shards only: Patroni then lets only the synchronous standby take the lock,
//   and that standby has flushed every commit the primary acknowledged. On an asynchronous
//   shard a promoted replica lacks whatever it had not yet received, so those keep
//   Patroni's own lease (a false alarm must never cost data);
// - the old postmaster is dead before the lock is freed: the pod's fence (fence.py, fed by
//   Patroni's watchdog on every renewal) kills it `ttl - FENCE_MARGIN_SECONDS` after the last
//   renewal, and the operator waits that plus retry_timeout (the longest a renewal's answer
//   can take to reach Patroni) plus a second. Otherwise a commit waiting for the promoted
//   standby could be cancelled by its client and acknowledged by the old primary
//   ("canceling wait for synchronous replication": committed locally, reported done);
// - the synchronous standby itself says it no longer streams from the primary (Patroni's
//   member status on its pod): a primary that is alive but cut off from the API server
//   keeps its role under failsafe_mode while its members answer it, so its lock is left
//   alone and the app keeps writing;
// - Patroni runs the timings the operator reckons with: the live <scope>-config holds the
//   spec's, the primary renews with that ttl (it reloaded), and they have not just changed.
import { defaultFailoverSeconds } from '../../api/failover-defaults.ts';
import { DATABASE_LABEL, PRIMARY_ROLE, ROLE_LABEL, SCOPE_LABEL } from './names.ts';

/** Patroni's smallest ttl; a failoverSeconds at or above it is Patroni's lease alone. */
export const PATRONI_TTL_FLOOR = 20;
/** The smallest failoverSeconds: the fence's 5 s, retry_timeout 3 and 1 s of margin. */
export const MIN_FAILOVER_SECONDS = 10;
/**
 * Patroni's watchdog safety_margin in every database pod: the fence fires this long before
 * the lease would end. 15 leaves the fence 5 s at the 20 s lease (enough to ride out
 * retry_timeout 3 of a failed renewal while failsafe_mode keeps the primary) and keeps it
 * well ahead of Patroni's own lease whatever retry_timeout (at most 10) delays a renewal.
 */
export const FENCE_MARGIN_SECONDS = 15;
export { DEFAULT_FAILOVER_SECONDS, defaultFailoverSeconds } from '../../api/failover-defaults.ts';

export interface PatroniTimings {
  readonly ttl: number;
  readonly loop_wait: number;
  readonly retry_timeout: number;
}

/**
 * Patroni's three timings, all functions of the lease (ttl = failoverSeconds, at least 20),
 * within Patroni's rule loop_wait + 2 x retry_timeout <= ttl and its floors (loop_wait 1,
 * retry_timeout 3):
 * - ttl: the leader lock's lease; once it ends a replica takes over;
 * - loop_wait: how often each member runs its loop (the primary renews the lock, every member
 *   may patch its pod): the API-server cost of a short lease;
 * - retry_timeout: how long one API request may take, retries included, before Patroni counts
 *   the API server as unreachable (then failsafe_mode keeps the primary while its members
 *   answer it). At most 10: a renewal's answer can reach Patroni that late, and the fence
 *   (ttl - 15) must still fire before the lease ends.
 * Being functions of ttl alone, a primary that renews with the live ttl runs all three.
 */
export function timingsOf(failoverSeconds: number): PatroniTimings {
  const ttl = Math.max(PATRONI_TTL_FLOOR, Math.round(failoverSeconds));
  return {
    ttl,
    loop_wait: Math.max(1, Math.floor(ttl / 10) - 1),
    retry_timeout: Math.min(10, Math.max(3, Math.floor(ttl / 5) - 1)),
  };
}

/** How long after the last renewal the pod's fence kills the postmaster. */
export const fenceSeconds = (t: PatroniTimings, margin = FENCE_MARGIN_SECONDS): number =>
  t.ttl - margin;

/**
 * Whether the operator may release this shard's lock at all: synchronous, and asking for a
 * failover faster than Patroni's shortest lease.
 */
export const fastFailover = (db: { synchronous: boolean; failoverSeconds: number }): boolean =>
  db.synchronous && Math.round(db.failoverSeconds) < PATRONI_TTL_FLOOR;

/**
 * How long a primary must have been silent before the operator releases its lock (s), or
 * undefined where Patroni's lease alone governs. The largest of: failoverSeconds less the
 * second a promotion takes; Patroni's own rule (a live loop renews at least every
 * loop_wait + 2 x retry_timeout); the fence's deadline plus the longest a renewal's answer
 * can take to reach Patroni (retry_timeout) plus a second.
 */
export function releaseAfterSeconds(
  db: { synchronous: boolean; failoverSeconds: number },
  margin = FENCE_MARGIN_SECONDS,
): number | undefined {
  if (!fastFailover(db)) return undefined;
  const t = timingsOf(db.failoverSeconds);
  return Math.max(
    Math.round(db.failoverSeconds) - 1,
    t.loop_wait + 2 * t.retry_timeout + 1,
    fenceSeconds(t, margin) + t.retry_timeout + 1,
  );
}

/**
 * database.synchronous and failoverSeconds of a cached app's spec, or undefined when its
 * database tier is off. The API server has applied the CRD's defaults (synchronous);
 * failoverSeconds has a default by mode, filled in here as in the model.
 */
export function failoverSpecOf(
  spec: unknown,
): { synchronous: boolean; failoverSeconds: number } | undefined {
  const db = (
    spec as {
      database?: { enabled?: unknown; synchronous?: unknown; failoverSeconds?: unknown };
    } | null
  )?.database;
  if (typeof db !== 'object' || db === null || db.enabled === false) return undefined;
  const synchronous = db.synchronous === true;
  const failoverSeconds =
    typeof db.failoverSeconds === 'number'
      ? db.failoverSeconds
      : defaultFailoverSeconds(synchronous);
  return { synchronous, failoverSeconds };
}

// ---------------------------------------------------------------------------------------
// What the operator reads: Patroni's ConfigMaps and the shard's pods.

/** The annotation on <scope>-leader recording a release by the operator (JSON). */
export const RELEASE_ANNOTATION = 'scalable.dev/lock-released';
/** Pod annotation: the pod runs fence.py with this watchdog safety_margin (seconds). */
export const FENCE_ANNOTATION = 'scalable.dev/fence-margin';

/**
 * A release by the operator, kept on the lock itself (written in the same patch that frees
 * it, so no crash can separate them): which member's lock, its pod then, and when. Fencing
 * and rollouts read it; it is cleared once a member holds the lock again.
 */
export interface ReleaseIntent {
  readonly member: string;
  readonly uid: string;
  /** Wall-clock ISO time of the release (a bound for a takeover that never comes). */
  readonly at: string;
}

/** Patroni's dynamic configuration as far as failover depends on it. */
export interface DcsTimings {
  readonly ttl?: number;
  readonly loop_wait?: number;
  readonly retry_timeout?: number;
  readonly synchronous_mode?: boolean;
  readonly failsafe_mode?: boolean;
  readonly pause?: boolean;
}

/** What the operator keeps of a Patroni ConfigMap (`<scope>-leader`, `-config`, `-sync`). */
export interface LeaderRecord {
  readonly namespace: string;
  readonly name: string;
  readonly resourceVersion: string;
  /** The app (Patroni's DATABASE_LABEL) and the shard's scope. */
  readonly app: string | undefined;
  readonly scope: string | undefined;
  /** Which of Patroni's keys this is. */
  readonly key: 'leader' | 'config' | 'sync' | 'other';
  /** Leader key: the member holding the lock (undefined when free). Sync key: the primary. */
  readonly leader: string | undefined;
  readonly renewTime: string | undefined;
  /** Leader key: the ttl the holder renewed with (the one it runs). */
  readonly ttl: string | undefined;
  /** Leader key: the operator's release, if one is recorded. */
  readonly released: ReleaseIntent | undefined;
  /** Config key: the live timings and modes. */
  readonly config: DcsTimings | undefined;
  /** Sync key: the synchronous standbys. */
  readonly syncStandbys: readonly string[] | undefined;
}

type Json = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);
const num = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? v : undefined;
const bool = (v: unknown): boolean | undefined => (typeof v === 'boolean' ? v : undefined);
const parseJson = (v: string | undefined): unknown => {
  if (v === undefined) return undefined;
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return undefined;
  }
};
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function intentOf(v: string | undefined): ReleaseIntent | undefined {
  const j = parseJson(v);
  if (!isObj(j)) return undefined;
  const member = str(j['member']);
  const uid = str(j['uid']);
  const at = str(j['at']);
  return member && uid && at ? { member, uid, at } : undefined;
}

function dcsTimingsOf(v: string | undefined): DcsTimings | undefined {
  const j = parseJson(v);
  if (!isObj(j)) return undefined;
  const out: Record<string, number | boolean> = {};
  for (const k of ['ttl', 'loop_wait', 'retry_timeout'] as const) {
    const n = num(j[k]);
    if (n !== undefined) out[k] = n;
  }
  for (const k of ['synchronous_mode', 'failsafe_mode', 'pause'] as const) {
    const b = bool(j[k]);
    if (b !== undefined) out[k] = b;
  }
  return out as DcsTimings;
}

export function leaderRecordOf(obj: Json): LeaderRecord {
  const m = (obj['metadata'] ?? {}) as Json;
  const labels = (m['labels'] ?? {}) as Json;
  const annotations = (m['annotations'] ?? {}) as Json;
  const name = String(m['name'] ?? '');
  const scope = str(labels[SCOPE_LABEL]);
  const key =
    scope === undefined
      ? 'other'
      : name === `${scope}-leader`
        ? 'leader'
        : name === `${scope}-config`
          ? 'config'
          : name === `${scope}-sync`
            ? 'sync'
            : 'other';
  const a = (k: string) => str(annotations[k]);
  return {
    namespace: String(m['namespace'] ?? ''),
    name,
    resourceVersion: String(m['resourceVersion'] ?? ''),
    app: str(labels[DATABASE_LABEL]),
    scope,
    key,
    leader: key === 'leader' || key === 'sync' ? a('leader') : undefined,
    renewTime: key === 'leader' ? a('renewTime') : undefined,
    ttl: key === 'leader' ? a('ttl') : undefined,
    released: key === 'leader' ? intentOf(a(RELEASE_ANNOTATION)) : undefined,
    config: key === 'config' ? dcsTimingsOf(a('config')) : undefined,
    syncStandbys:
      key === 'sync'
        ? (a('sync_standby') ?? '')
            .split(',')
            .map((s) => s.trim())
            .filter((s) => s !== '')
        : undefined,
  };
}

/** A database pod as the failover rules see it. */
export interface MemberView {
  readonly name: string;
  readonly uid: string;
  readonly labelledPrimary: boolean;
  /** The pod's Ready condition (Patroni's /readiness: a leader, or a running replica). */
  readonly ready: boolean;
  readonly terminating: boolean;
  /** The fence's safety margin, when the pod runs fence.py. */
  readonly fenceMargin: number | undefined;
  /** Patroni's member status (the pod's `status` annotation): streaming from a primary. */
  readonly streaming: boolean;
}

export function memberViewOf(pod: Json): MemberView {
  const m = (pod['metadata'] ?? {}) as Json;
  const labels = (m['labels'] ?? {}) as Json;
  const annotations = (m['annotations'] ?? {}) as Json;
  const conditions = ((pod['status'] as Json | undefined)?.['conditions'] ?? []) as Json[];
  const status = parseJson(str(annotations['status']));
  const margin = Number(str(annotations[FENCE_ANNOTATION]));
  return {
    name: String(m['name'] ?? ''),
    uid: String(m['uid'] ?? ''),
    labelledPrimary: labels[ROLE_LABEL] === PRIMARY_ROLE,
    ready: conditions.some((c) => c['type'] === 'Ready' && c['status'] === 'True'),
    terminating: m['deletionTimestamp'] !== undefined && m['deletionTimestamp'] !== null,
    fenceMargin: Number.isInteger(margin) && margin > 0 ? margin : undefined,
    streaming: isObj(status) && status['replication_state'] === 'streaming',
  };
}

// ---------------------------------------------------------------------------------------
// The release.

export interface ReleaseInput {
  /** The app's spec (failoverSpecOf). */
  readonly spec: { readonly synchronous: boolean; readonly failoverSeconds: number };
  readonly leader: LeaderRecord;
  readonly config: LeaderRecord | undefined;
  readonly sync: LeaderRecord | undefined;
  /** The shard's pods. */
  readonly members: readonly MemberView[];
  /** Since the leader key last changed, as this process observed it (ms). */
  readonly silentMs: number;
  /** Since the config key's timings last changed, as observed (ms); Infinity if never seen to. */
  readonly configStableMs: number;
}

export type ReleaseVerdict =
  | { readonly release: true; readonly afterSeconds: number }
  | { readonly release: false; readonly why: string };

const no = (why: string): ReleaseVerdict => ({ release: false, why });
/** The verdict's reason while the lock is renewed: nothing to report. */
export const RENEWING = 'renewing';

/**
 * Whether to release the shard's lock now. Every condition of the module comment, checked
 * against what the API server shows (the live Patroni state), not only the spec.
 */
export function releaseVerdict(input: ReleaseInput): ReleaseVerdict {
  const { spec, leader, members } = input;
  const holder = leader.leader;
  if (holder === undefined) return no('the lock is free');
  if (!spec.synchronous)
    return no(
      'asynchronous: Patroni’s lease alone (a promoted replica may lack acknowledged writes)',
    );
  if (!fastFailover(spec)) return no('failoverSeconds is Patroni’s lease alone');
  const pod = members.find((m) => m.name === holder);
  const after = releaseAfterSeconds(spec, pod?.fenceMargin);
  if (after === undefined) return no('failoverSeconds is Patroni’s lease alone');
  // The common case first: a primary renewing its lock. Any other answer is a silent one kept.
  if (input.silentMs <= after * 1000) return no(RENEWING);
  if (!pod) return no(`no pod ${holder}`);
  if (pod.fenceMargin === undefined) return no(`pod ${holder} runs no fence`);
  const want = timingsOf(spec.failoverSeconds);
  if (after >= want.ttl) return no('the fence leaves no time before the lease ends');
  const live = input.config?.config;
  if (!live) return no('no live dynamic configuration');
  if (live.pause) return no('Patroni is paused (maintenance mode)');
  if (live.synchronous_mode !== true)
    return no('synchronous_mode is off in the live configuration');
  if (
    live.ttl !== want.ttl ||
    live.loop_wait !== want.loop_wait ||
    live.retry_timeout !== want.retry_timeout
  )
    return no('the live timings differ from the spec’s (the operator has not updated Patroni yet)');
  if (leader.ttl !== String(want.ttl))
    return no(`the primary has not renewed with ttl ${want.ttl} yet (Patroni not reloaded)`);
  if (input.configStableMs < want.ttl * 1000)
    return no('the timings changed less than a lease ago (Patroni may not have reloaded)');
  const sync = input.sync;
  if (!sync || sync.leader !== holder || !sync.syncStandbys?.length)
    return no(`no synchronous standby recorded for ${holder}`);
  const candidate = sync.syncStandbys.some((name) => {
    const m = members.find((p) => p.name === name);
    return (
      m !== undefined &&
      name !== holder &&
      m.ready &&
      !m.terminating &&
      !m.labelledPrimary &&
      !m.streaming
    );
  });
  if (!candidate)
    return no(
      'no ready synchronous standby that has stopped streaming from the primary (it may still be alive)',
    );
  return { release: true, afterSeconds: after };
}

/**
 * Whether a lock has been silent longer than `releaseAfterMs`, as observed: a held lock and
 * nothing about it changed. Observed time, not the renewTime the member wrote: no trust in
 * another machine's clock.
 */
export function isSilent(
  record: LeaderRecord,
  observedAtMs: number,
  nowMs: number,
  releaseAfterMs: number | undefined,
): boolean {
  return (
    record.key === 'leader' &&
    record.leader !== undefined &&
    releaseAfterMs !== undefined &&
    nowMs - observedAtMs > releaseAfterMs
  );
}

/**
 * The merge patch that releases the lock: as Patroni's delete_leader, the leader annotation
 * removed, only if the object is still the version judged silent (else 409 Conflict), and in
 * the same write the release recorded for fencing (`intent`).
 */
export function releasePatch(record: LeaderRecord, intent?: ReleaseIntent): Json {
  return {
    metadata: {
      resourceVersion: record.resourceVersion,
      annotations: {
        leader: null,
        ...(intent ? { [RELEASE_ANNOTATION]: JSON.stringify(intent) } : {}),
      },
    },
  };
}

// ---------------------------------------------------------------------------------------
// Fencing: the primary Service follows the lock.

/** Fencing deletes give the pod this long: its data path is fenced in the pod already. */
export const FENCE_GRACE_SECONDS = 5;

export interface FenceInput {
  readonly leader: LeaderRecord;
  readonly config: LeaderRecord | undefined;
  readonly members: readonly MemberView[];
  /** Since the current holder took the lock, as observed (ms). */
  readonly heldMs: number;
  /** Wall clock now (ms), for the age of a recorded release. */
  readonly wallNowMs: number;
}

export interface FenceVerdict {
  /** Pods to delete (uid precondition): labelled primary, not holding the lock. */
  readonly fence: readonly { readonly pod: string; readonly uid: string; readonly why: string }[];
}

/** Whether a recorded release is recent enough to act on (within two leases). */
export function releaseInFlight(
  intent: ReleaseIntent | undefined,
  ttlSeconds: number,
  wallNowMs: number,
): boolean {
  return intent !== undefined && wallNowMs - Date.parse(intent.at) <= 2 * ttlSeconds * 1000;
}

/**
 * The primary Service selects the pod Patroni labels primary; a deposed primary that cannot
 * relabel itself (a dead node, a frozen Patroni) would keep receiving connections. Such a pod
 * is deleted (a terminating pod leaves the Service's ready endpoints at once): at the release
 * itself when the operator released its lock (it was silent, its postmaster fenced: the
 * Service follows the lock, not the label), else once another member has held the lock for
 * one lease (a live Patroni that handed over in a switchover relabels itself well within it).
 * Never a pod that took the lock back, never while Patroni is paused (an admin's
 * maintenance). A recorded release is never cleared (no write to the lock Patroni renews); it
 * counts for two leases, long enough for any takeover.
 */
export function fenceVerdict(input: FenceInput): FenceVerdict {
  const { leader, members } = input;
  const holder = leader.leader;
  const ttl = input.config?.config?.ttl ?? PATRONI_TTL_FLOOR;
  if (input.config?.config?.pause) return { fence: [] };
  const intent = releaseInFlight(leader.released, ttl, input.wallNowMs)
    ? leader.released
    : undefined;
  const fence = members
    .filter((m) => m.labelledPrimary && !m.terminating && m.name !== holder)
    .flatMap((m) => {
      if (intent?.member === m.name && intent.uid === m.uid)
        return [
          {
            pod: m.name,
            uid: m.uid,
            why:
              holder === undefined
                ? 'the operator released its lock'
                : `its lock was released and ${holder} took it`,
          },
        ];
      if (holder !== undefined && input.heldMs >= ttl * 1000)
        return [{ pod: m.name, uid: m.uid, why: `${holder} has held the lock for a lease` }];
      return [];
    });
  return { fence };
}
