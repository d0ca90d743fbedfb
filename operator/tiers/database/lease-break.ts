// Fast failover: Patroni replaces a dead primary only once its leader lease (ttl) expires,
// and Patroni refuses a ttl under 20 s. Below that, the operator releases the lease of a
// primary that has stopped renewing it, as Patroni's own delete_leader would: the leader
// annotation removed, under a resourceVersion precondition. It is safe because:
// - the timings make a primary that cannot reach the API server demote itself (loop_wait +
//   retry_timeout) before the operator may act (that plus a margin), so two writable
//   primaries cannot overlap;
// - a primary that is alive but slow to renew re-takes the lease at once: Patroni treats a
//   running primary as the healthiest member, and replicas will not race while a member
//   still answers as primary ("Primary is still alive");
// - in synchronous mode only the synchronous standby may be promoted, so no acknowledged
//   write is lost (as with an expired lease).
import { DATABASE_LABEL, SCOPE_LABEL } from './names.ts';

/** Patroni's smallest ttl; failoverSeconds at or above it is Patroni's lease alone. */
export const PATRONI_TTL_FLOOR = 20;
/** The smallest failoverSeconds: leaves loop_wait 1 + retry_timeout 4 + 1 s to notice. */
export const MIN_FAILOVER_SECONDS = 10;
/** The time from the release to writes on the new primary: the race, promotion, labels. */
const PROMOTION_SECONDS = 4;
/** The operator acts this long after a primary could have demoted itself, at the earliest. */
const MARGIN_SECONDS = 1;

export interface PatroniTimings {
  readonly ttl: number;
  readonly loop_wait: number;
  readonly retry_timeout: number;
}

/**
 * Patroni's three timings, within its rule loop_wait + 2 x retry_timeout <= ttl and its floors
 * (ttl 20, loop_wait 1, retry_timeout 3):
 * - ttl: the leader lock's lease; once it expires a replica takes over (kill -9 -> new primary
 *   about ttl after the last renewal) when the operator does not release it first;
 * - loop_wait: how often each member runs its loop (the primary renews the lock, every member
 *   reads and may patch its pod), the API-server cost of a short failover;
 * - retry_timeout: how long a primary keeps trying to reach the API server before it demotes
 *   itself, so a blip of the API server does not demote a healthy primary.
 * From 20 s up, ttl is failoverSeconds, loop_wait a tenth of it and retry_timeout the rest
 * halved. Below 20 s the operator releases the lease (releaseAfterSeconds): loop_wait 1, and
 * retry_timeout short enough that a cut-off primary has demoted itself by then.
 */
export function timingsOf(failoverSeconds: number): PatroniTimings {
  const s = Math.max(MIN_FAILOVER_SECONDS, Math.round(failoverSeconds));
  if (s < PATRONI_TTL_FLOOR) {
    const ttl = PATRONI_TTL_FLOOR;
    const retry = Math.min(Math.floor((ttl - 1) / 2), s - PROMOTION_SECONDS - MARGIN_SECONDS - 1);
    return { ttl, loop_wait: 1, retry_timeout: retry };
  }
  const loopWait = Math.max(1, Math.floor(s / 10));
  return { ttl: s, loop_wait: loopWait, retry_timeout: Math.floor((s - loopWait) / 2) };
}

/**
 * How long a primary may go without renewing its lease before the operator releases it, or
 * undefined when Patroni's own lease is short enough (failoverSeconds >= 20).
 */
export function releaseAfterSeconds(failoverSeconds: number): number | undefined {
  if (Math.round(failoverSeconds) >= PATRONI_TTL_FLOOR) return undefined;
  const t = timingsOf(failoverSeconds);
  return t.loop_wait + t.retry_timeout + MARGIN_SECONDS;
}

/** The schema's default for database.failoverSeconds (a unit test holds them together). */
export const DEFAULT_FAILOVER_SECONDS = 10;

/**
 * database.failoverSeconds of a cached app's spec, or undefined when its database tier is
 * off. The API server has applied the CRD's defaults; the fallback is for specs written
 * before this field existed.
 */
export function failoverSecondsOf(spec: unknown): number | undefined {
  const db = (spec as { database?: { enabled?: unknown; failoverSeconds?: unknown } } | null)
    ?.database;
  if (typeof db !== 'object' || db === null || db.enabled === false) return undefined;
  return typeof db.failoverSeconds === 'number' ? db.failoverSeconds : DEFAULT_FAILOVER_SECONDS;
}

/** What the operator keeps of a Patroni ConfigMap: enough to judge `<scope>-leader`. */
export interface LeaderRecord {
  readonly namespace: string;
  readonly name: string;
  readonly resourceVersion: string;
  /** The app (Patroni's DATABASE_LABEL) and the shard's scope. */
  readonly app: string | undefined;
  readonly scope: string | undefined;
  /** The member holding the lock; undefined when the lock is free or this is another key. */
  readonly leader: string | undefined;
  readonly renewTime: string | undefined;
}

type Json = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);

export function leaderRecordOf(obj: Json): LeaderRecord {
  const m = (obj['metadata'] ?? {}) as Json;
  const labels = (m['labels'] ?? {}) as Json;
  const annotations = (m['annotations'] ?? {}) as Json;
  const name = String(m['name'] ?? '');
  const scope = str(labels[SCOPE_LABEL]);
  const isLeaderKey = scope !== undefined && name === `${scope}-leader`;
  return {
    namespace: String(m['namespace'] ?? ''),
    name,
    resourceVersion: String(m['resourceVersion'] ?? ''),
    app: str(labels[DATABASE_LABEL]),
    scope,
    leader: isLeaderKey ? str(annotations['leader']) : undefined,
    renewTime: isLeaderKey ? str(annotations['renewTime']) : undefined,
  };
}

/**
 * Whether to release: a lock is held and nothing about it has changed, as this operator
 * observed it, for longer than `releaseAfterMs`. Observed time, not the renewTime written by
 * the member: no trust in another machine's clock.
 */
export function isSilent(
  record: LeaderRecord,
  observedAtMs: number,
  nowMs: number,
  releaseAfterMs: number | undefined,
): boolean {
  return (
    record.leader !== undefined &&
    releaseAfterMs !== undefined &&
    nowMs - observedAtMs > releaseAfterMs
  );
}

/**
 * The merge patch that releases the lock: as Patroni's delete_leader, the leader annotation
 * removed, only if the object is still the version judged silent (else 409 Conflict).
 */
export function releasePatch(record: LeaderRecord): Json {
  return { metadata: { resourceVersion: record.resourceVersion, annotations: { leader: null } } };
}
