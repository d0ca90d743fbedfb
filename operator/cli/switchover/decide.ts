// `scalable switchover` (pure): whether a planned switchover of a shard's primary may be asked
// for, to which member, and how far it has got.
//
// The request goes where the operator's rollouts put theirs (tiers/database/rollout-step.ts):
// Patroni's Kubernetes DCS reads a switchover from the annotations `leader` and `member` of
// the ConfigMap `<scope>-failover` (patroni/dcs/kubernetes.py, manual_failover). The leader
// it names demotes itself gracefully (ha.py, process_manual_failover_from_leader: a fast
// shutdown after a checkpoint) and the member takes the lock; a request naming another
// leader is dropped and the key cleared. Patroni's REST API (`POST /switchover`, what
// patronictl calls) ends in that same DCS write after the same checks, but needs a network
// path to a pod (port 8008, closed by the tier's NetworkPolicy) or a port-forward, a right
// as strong as exec. The ConfigMap needs only get/create/patch of ConfigMaps in the app's
// namespace, which anyone who edits the app there has.
//
// So the CLI makes Patroni's checks itself, from what Patroni publishes on the API (the
// pods' `status` annotations, `<scope>-leader`, `-config`, `-sync`), and refuses with the
// reason before writing anything:
// - the lock holder must be the pod labelled primary, and no lock release by the operator in
//   flight (lease-break.ts): the operator's own rule for rollouts (issue 25 item 5), since a
//   takeover and its fence are under way then and a second move would race them;
// - no request pending already, Patroni not paused;
// - the target a healthy standby: Ready, Patroni running it as a replica, no nofailover tag,
//   within Patroni's maximum_lag_on_failover (beyond it Patroni drops the request);
// - synchronous shards (the live synchronous_mode): the target must be a synchronous standby
//   of the holder (`<scope>-sync`); Patroni switches over to no other, and that one has
//   flushed every acknowledged commit;
// - asynchronous shards: the old primary's fast shutdown waits until its walsenders have sent
//   every WAL record to each *streaming* standby (PostgreSQL's WalSndDone), so a streaming
//   target loses nothing however far its last published position lagged. A target that is
//   not streaming would be promoted without the WAL it lacks (Patroni does not check the
//   candidate's position once the old primary has stopped), and the writes after its position
//   would be lost when the old primary is rewound to follow it: refused unless --force.
import {
  leaderRecordOf,
  releaseInFlight,
  PATRONI_TTL_FLOOR,
} from '../../tiers/database/lease-break.ts';
import type { LeaderRecord } from '../../tiers/database/lease-break.ts';
import { PRIMARY_ROLE, REPLICA_ROLE, ROLE_LABEL } from '../../tiers/database/names.ts';

export type Json = Record<string, unknown>;

/** Patroni's default maximum_lag_on_failover (bytes), when the live config names none. */
export const DEFAULT_MAXIMUM_LAG = 1_048_576;

/** A database pod as Patroni publishes it. */
export interface MemberState {
  readonly name: string;
  readonly ready: boolean;
  readonly terminating: boolean;
  /** The pod's role label, as Patroni set it (master / replica). */
  readonly label: string | undefined;
  /** Patroni's member status (the pod's `status` annotation); undefined: none published. */
  readonly patroni:
    | {
        readonly state: string | undefined;
        readonly role: string | undefined;
        /** WAL position (bytes): the primary's written, a replica's received or replayed. */
        readonly xlog: number | undefined;
        readonly replicationState: string | undefined;
        readonly nofailover: boolean;
      }
    | undefined;
}

/** Patroni's dynamic configuration, as far as a switchover depends on it. */
export interface LiveConfig {
  readonly synchronousMode: boolean;
  readonly pause: boolean;
  readonly ttl: number;
  readonly maximumLag: number;
}

/** A pending request in `<scope>-failover`. */
export interface FailoverKey {
  readonly resourceVersion: string;
  readonly leader: string | undefined;
  readonly member: string | undefined;
  readonly scheduledAt: string | undefined;
}

/** One shard as the API server shows it now. */
export interface ShardSnapshot {
  readonly scope: string;
  readonly members: readonly MemberState[];
  readonly leader: LeaderRecord | undefined;
  readonly config: LiveConfig | undefined;
  readonly sync: LeaderRecord | undefined;
  /** undefined: the ConfigMap does not exist. */
  readonly failover: FailoverKey | undefined;
  /** Pods behind the primary Service (ready endpoints); null: not readable. */
  readonly rw: readonly string[] | null;
}

const obj = (v: unknown): Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {};
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const num = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? v : undefined;
const parse = (v: unknown): Json | undefined => {
  if (typeof v !== 'string') return undefined;
  try {
    const j = JSON.parse(v) as unknown;
    return typeof j === 'object' && j !== null && !Array.isArray(j) ? (j as Json) : undefined;
  } catch {
    return undefined;
  }
};
const annotationsOf = (o: Json): Json => obj(obj(o['metadata'])['annotations']);

export function memberStateOf(pod: Json): MemberState {
  const m = obj(pod['metadata']);
  const conditions = (obj(pod['status'])['conditions'] ?? []) as Json[];
  const status = parse(annotationsOf(pod)['status']);
  const tags = obj(status?.['tags']);
  return {
    name: String(m['name'] ?? ''),
    ready: conditions.some((c) => c['type'] === 'Ready' && c['status'] === 'True'),
    terminating: m['deletionTimestamp'] != null,
    label: str(obj(m['labels'])[ROLE_LABEL]),
    patroni: status && {
      state: str(status['state']),
      role: str(status['role']),
      xlog: num(status['xlog_location']),
      replicationState: str(status['replication_state']),
      nofailover: tags['nofailover'] === true,
    },
  };
}

export function liveConfigOf(cm: Json): LiveConfig | undefined {
  const c = parse(annotationsOf(cm)['config']);
  if (!c) return undefined;
  return {
    // true, or Patroni's spellings "on" and "quorum" (quorum commit: the -sync key's voters).
    synchronousMode: [true, 'on', 'quorum'].includes(c['synchronous_mode'] as string | boolean),
    pause: c['pause'] === true,
    ttl: num(c['ttl']) ?? PATRONI_TTL_FLOOR,
    maximumLag: num(c['maximum_lag_on_failover']) ?? DEFAULT_MAXIMUM_LAG,
  };
}

export function failoverKeyOf(cm: Json): FailoverKey {
  const a = annotationsOf(cm);
  return {
    resourceVersion: String(obj(cm['metadata'])['resourceVersion'] ?? ''),
    leader: str(a['leader']),
    member: str(a['member']),
    scheduledAt: str(a['scheduled_at']),
  };
}

/** The ConfigMaps of a shard by role; a missing one is undefined. */
export function snapshotOf(input: {
  readonly scope: string;
  readonly pods: readonly Json[];
  readonly leader: Json | undefined;
  readonly config: Json | undefined;
  readonly sync: Json | undefined;
  readonly failover: Json | undefined;
  readonly rw: readonly string[] | null;
}): ShardSnapshot {
  return {
    scope: input.scope,
    members: input.pods.map(memberStateOf).sort((a, b) => a.name.localeCompare(b.name, 'en')),
    leader: input.leader && leaderRecordOf(input.leader),
    config: input.config && liveConfigOf(input.config),
    sync: input.sync && leaderRecordOf(input.sync),
    failover: input.failover && failoverKeyOf(input.failover),
    rw: input.rw,
  };
}

// ---------------------------------------------------------------------------------------
// The decision.

export interface SwitchoverRequest {
  /** The member to hand over to; undefined: the best one. */
  readonly to?: string;
  /** Accept the loss of what an asynchronous target that is not streaming lacks. */
  readonly force?: boolean;
}

/** Why a switchover is refused: a stable word for scripts, and the sentence for people. */
export type RefusalCode =
  | 'no-database'
  | 'no-such-shard'
  | 'no-members'
  | 'release-in-flight'
  | 'lock-free'
  | 'primary-mismatch'
  | 'paused'
  | 'request-pending'
  | 'no-such-member'
  | 'already-primary'
  | 'not-healthy'
  | 'not-synchronous'
  | 'too-far-behind'
  | 'not-streaming'
  | 'no-candidate';

export type Decision =
  | {
      readonly ok: true;
      readonly from: string;
      readonly to: string;
      readonly synchronous: boolean;
      /** The target's WAL behind the primary as Patroni last published it; null: unknown. */
      readonly lagBytes: number | null;
      /** Why this member, in words. */
      readonly why: string;
      /** What the user accepted or should know (e.g. --force on a target not streaming). */
      readonly warnings: readonly string[];
    }
  | { readonly ok: false; readonly code: RefusalCode; readonly reason: string };

const refuse = (code: RefusalCode, reason: string): Decision => ({ ok: false, code, reason });

/** Why a member cannot take over, if it cannot; undefined: a healthy standby. */
export function standbyProblem(m: MemberState): string | undefined {
  if (m.terminating) return 'its pod is terminating';
  if (!m.ready) return 'its pod is not Ready';
  if (!m.patroni) return 'Patroni publishes no status on its pod';
  if (m.patroni.state !== 'running')
    return `Patroni says it is ${m.patroni.state ?? 'in an unknown state'}`;
  if (m.patroni.role !== 'replica')
    return `Patroni runs it as ${m.patroni.role ?? 'an unknown role'}, not as a replica`;
  if (m.label !== REPLICA_ROLE) return `its pod is labelled ${m.label ?? 'with no role'}`;
  if (m.patroni.nofailover) return 'it carries Patroni’s nofailover tag';
  return undefined;
}

const lagOf = (primary: MemberState | undefined, m: MemberState): number | null => {
  const p = primary?.patroni?.xlog;
  const x = m.patroni?.xlog;
  return p !== undefined && x !== undefined ? Math.max(0, p - x) : null;
};

const streaming = (m: MemberState) => m.patroni?.replicationState === 'streaming';

/** The synchronous standbys Patroni names for `holder` (none when -sync names another). */
export const syncStandbysOf = (s: ShardSnapshot, holder: string): readonly string[] =>
  s.sync?.leader === holder ? (s.sync.syncStandbys ?? []) : [];

/** Whether a switchover from the lock holder may be asked for now, and to whom. */
export function decideSwitchover(
  s: ShardSnapshot,
  req: SwitchoverRequest,
  wallNowMs: number,
): Decision {
  if (s.members.length === 0) return refuse('no-members', `shard ${s.scope} has no pods`);
  const ttl = s.config?.ttl ?? PATRONI_TTL_FLOOR;
  const released = s.leader?.released;
  if (released && releaseInFlight(released, ttl, wallNowMs))
    return refuse(
      'release-in-flight',
      `the operator released ${released.member}'s leader lock at ${released.at} (a fast failover): ` +
        'the takeover and the old primary’s fence are in flight, and a switchover now would race ' +
        'them. Wait until `scalable status` shows one primary again (at most two leases, ' +
        `${2 * ttl} s), then retry`,
    );
  const holder = s.leader?.leader;
  if (holder === undefined)
    return refuse(
      'lock-free',
      `nobody holds the leader lock of ${s.scope} (ConfigMap ${s.scope}-leader): a failover is ` +
        'under way, or the shard has not started. Wait until a primary holds it, then retry',
    );
  const labelled = s.members.filter((m) => m.label === PRIMARY_ROLE && !m.terminating);
  if (labelled.length !== 1 || labelled[0]?.name !== holder)
    return refuse(
      'primary-mismatch',
      `${holder} holds the leader lock but the pods labelled primary are ` +
        `${labelled.length ? labelled.map((m) => m.name).join(', ') : 'none'}: Patroni has not ` +
        'relabelled them yet (or a deposed primary cannot). Wait until they agree, then retry',
    );
  if (s.config?.pause)
    return refuse(
      'paused',
      `Patroni is paused on ${s.scope} (maintenance mode): resume it first ` +
        '(patronictl resume), or hand over with patronictl in the pod',
    );
  const f = s.failover;
  if (f && (f.leader || f.member))
    return refuse(
      'request-pending',
      `a switchover is already requested in ConfigMap ${s.scope}-failover (leader ` +
        `${f.leader ?? '-'}, member ${f.member ?? '-'}${f.scheduledAt ? `, at ${f.scheduledAt}` : ''}) ` +
        'and Patroni has not taken it up. Wait for it, or withdraw it: kubectl annotate ' +
        `configmap ${s.scope}-failover leader- member- scheduled_at-`,
    );

  const primary = s.members.find((m) => m.name === holder);
  const synchronous = s.config?.synchronousMode === true;
  const syncStandbys = syncStandbysOf(s, holder);
  const maxLag = s.config?.maximumLag ?? DEFAULT_MAXIMUM_LAG;

  /** Every reason `m` may not take over, or undefined. */
  const problem = (m: MemberState): string | undefined => {
    const p = standbyProblem(m);
    if (p) return p;
    if (synchronous && !syncStandbys.includes(m.name))
      return (
        `it is not a synchronous standby of ${holder} (${s.scope}-sync names ` +
        `${syncStandbys.length ? syncStandbys.join(', ') : 'none'}): on a synchronous shard ` +
        'Patroni hands over only to one'
      );
    const lag = lagOf(primary, m);
    if (lag !== null && lag > maxLag)
      return (
        `it is ${lag} bytes behind ${holder}, more than maximum_lag_on_failover (${maxLag}): ` +
        'Patroni would refuse it'
      );
    return undefined;
  };
  const codeOf = (why: string): RefusalCode =>
    why.startsWith('it is not a synchronous')
      ? 'not-synchronous'
      : why.includes('maximum_lag_on_failover')
        ? 'too-far-behind'
        : 'not-healthy';

  let target: MemberState;
  let why: string;
  if (req.to !== undefined) {
    const m = s.members.find((x) => x.name === req.to);
    if (!m)
      return refuse(
        'no-such-member',
        `${req.to} is no member of ${s.scope} (members: ${s.members.map((x) => x.name).join(', ')})`,
      );
    if (m.name === holder)
      return refuse('already-primary', `${m.name} already holds the leader lock of ${s.scope}`);
    const p = problem(m);
    if (p) return refuse(codeOf(p), `${m.name} cannot take over: ${p}`);
    target = m;
    why = syncStandbys.includes(m.name) ? 'asked for; a synchronous standby' : 'asked for';
  } else {
    const others = s.members.filter((m) => m.name !== holder);
    const healthy = others.filter((m) => problem(m) === undefined);
    // The synchronous standby first (it has every acknowledged commit), then a streaming
    // replica, then the least lag, then the lowest ordinal.
    const rank = (m: MemberState) => [
      syncStandbys.includes(m.name) ? 0 : 1,
      streaming(m) ? 0 : 1,
      lagOf(primary, m) ?? Number.MAX_SAFE_INTEGER,
    ];
    const best = [...healthy].sort((a, b) => {
      const [x, y] = [rank(a), rank(b)];
      for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return (x[i] ?? 0) - (y[i] ?? 0);
      return a.name.localeCompare(b.name, 'en');
    })[0];
    if (!best)
      return refuse(
        'no-candidate',
        `no member of ${s.scope} can take over from ${holder}: ` +
          (others.length
            ? others.map((m) => `${m.name}: ${problem(m) ?? 'unknown'}`).join('; ')
            : 'it has no other member'),
      );
    target = best;
    why = syncStandbys.includes(best.name)
      ? 'the synchronous standby'
      : streaming(best)
        ? 'a streaming replica with the least lag'
        : 'the replica with the least lag';
  }

  const lagBytes = lagOf(primary, target);
  const warnings: string[] = [];
  if (!synchronous && !streaming(target)) {
    const what =
      `the shard is asynchronous and ${target.name} is not streaming from ${holder} ` +
      `(${lagBytes === null ? 'its position is unknown' : `${lagBytes} bytes behind as Patroni last published`}): ` +
      'Patroni would promote it without the WAL it lacks, and every write ' +
      `${holder} acknowledged after that position would be lost when ${holder} is rewound to follow it`;
    if (!req.force)
      return refuse(
        'not-streaming',
        `${what}. Wait until it streams (scalable status shows its lag), or pass --force to accept that loss`,
      );
    warnings.push(`--force: ${what}`);
  }
  return { ok: true, from: holder, to: target.name, synchronous, lagBytes, why, warnings };
}

// ---------------------------------------------------------------------------------------
// Progress, after the request is written.

export interface Progress {
  /** Who holds the lock; undefined: free (the old primary has let go, nobody took it yet). */
  readonly lock: string | undefined;
  readonly labelledPrimaries: readonly string[];
  readonly rw: readonly string[] | null;
  /** Our request is still in `<scope>-failover`. */
  readonly pending: boolean;
  /** The old primary as Patroni publishes it (role, state). */
  readonly oldPrimary: string;
}

export type Outcome =
  | { readonly phase: 'waiting' }
  /** The primary moved: lock, label and -rw agree on `primary` (the target, or another). */
  | { readonly phase: 'done'; readonly primary: string }
  /** Patroni cleared the request and the old primary kept the lock. */
  | { readonly phase: 'dropped' };

export function progressOf(s: ShardSnapshot, from: string, to: string): Progress {
  const old = s.members.find((m) => m.name === from);
  return {
    lock: s.leader?.leader,
    labelledPrimaries: s.members
      .filter((m) => m.label === PRIMARY_ROLE && !m.terminating)
      .map((m) => m.name),
    rw: s.rw,
    pending: s.failover?.leader === from && s.failover.member === to,
    oldPrimary: old?.patroni
      ? `${old.patroni.role ?? 'unknown role'} (${old.patroni.state ?? 'unknown state'})`
      : old
        ? 'no Patroni status'
        : 'gone',
  };
}

/**
 * Where the switchover stands. The snapshot must have read `<scope>-failover` before the lock
 * (gather.ts): the new leader clears the request only once it holds the lock, so an empty
 * request followed by a lock still held by `from` means Patroni dropped it.
 */
export function outcomeOf(p: Progress, from: string): Outcome {
  const lock = p.lock;
  if (lock !== undefined && lock !== from) {
    const labelled = p.labelledPrimaries.length === 1 && p.labelledPrimaries[0] === lock;
    const rw = p.rw === null || (p.rw.length === 1 && p.rw[0] === lock);
    return labelled && rw ? { phase: 'done', primary: lock } : { phase: 'waiting' };
  }
  if (lock === from && !p.pending) return { phase: 'dropped' };
  return { phase: 'waiting' };
}

/** One line of what is seen, printed when it changes. */
export function progressLine(p: Progress): string {
  const rw = p.rw === null ? 'unknown' : p.rw.length ? p.rw.join(', ') : 'none';
  return (
    `lock: ${p.lock ?? 'free'} · labelled primary: ${p.labelledPrimaries.join(', ') || 'none'} · ` +
    `-rw: ${rw} · request: ${p.pending ? 'pending' : 'taken'} · old primary: ${p.oldPrimary}`
  );
}
