// Online resharding N -> M as a resumable state machine: one pure function of (spec, the
// recorded move in status.resharding, the bucket assignment on record, facts observed on
// the shards) -> (the next record, the actions to run, the condition). Nothing here talks
// to a cluster or a database: the operator gathers the facts (resharding-sql.ts's probes),
// writes the returned record to status FIRST, then runs the actions (ReshardRunner in
// resharding-run.ts, one step per reconcile). Every action is idempotent, so an operator
// that dies anywhere in between repeats at most the last step.
//
// The order, and why each gate is where it is:
//   Prepare      no moved table has a sequence-generated column (refused: see below), then
//                sources answer with wal_level=logical, the copy grant and the fence function
//   SchemaCopy   pg_dump --schema-only of the source restored on the empty target, in one
//                transaction (so a target holds all the tables or none)
//   InitialCopy  a publication per move (row filter = its buckets), a subscription on the
//                target; done when every table's initial copy is in state r (ready)
//   CatchUp      streaming until the slot is less than maxLagBytes behind: the fence that
//                follows then lasts only as long as that lag takes to apply
//   Cutover      fence the moving buckets on the source (writes refused, SB001); record the
//                source's LSN after the fence; wait until the slot confirmed it; only then
//                drop the subscription, lift the target's own old fences on the moved
//                buckets (a shard taking back what it once gave away), start the way back (the target publishes the moved
//                buckets, the source subscribes: a reader still on the old map sees new
//                writes) and publish the new map (version + 1)
//   Cleanup      once every app pod acknowledged the new map (a reader with the old one
//                still finds its rows on the source until then): stop the way back, drop
//                the publication, delete the moved rows from the source in batches. The
//                fence stays.
// Shrinking is the same machine: planMoves sends the departing shards' buckets to the shards
// that stay, and the database tier keeps the departing groups (held-shards.ts) until the
// record gives them no bucket and no move names them.
// Before Cutover a move can be aborted with nothing visible to the app (the map never
// changed); from the fence on it only goes forward.
//
// Reference tables (tables without the shard-key column): refused at Prepare while any holds
// rows, naming them. No bucket owns their rows, so there is no right shard to move them to:
// a new shard would start with them empty and a departing shard's would go with it; an app
// that wants them on every shard must say how they stay in step, which a move cannot guess.
// Empty ones only have their schema copied.
// Sequences and identity columns: a move is refused at Prepare, before anything is changed
// on any shard, while a table that moves has a column a sequence fills (identity, serial,
// a nextval() default); the condition names each one. Why not carry the sequence over
// (setval on the target past the source's values after the copy and again at the fence):
// every shard has its own sequence, so ids are unique per shard only. After the flip the
// source and the target both keep generating (the source for the buckets it keeps, from
// its own sequence), and the same id then exists on two shards; it collides as soon as a
// later move brings their rows together, and a move into a shard that takes buckets from
// two sources (2 -> 3) collides in its very initial copy, whatever setval does: the
// subscription stops on the unique key and the move never ends. Ids unique across shards
// need the app's schema (uuid keys, or keys the app derives from the shard key), not a
// step of the move. Abort the refused move, or change those columns and it goes on.
import type { BucketRange } from '../../../sdk/src/contract/shard-map.ts';
import { assignBuckets, toRanges } from '../../../sdk/src/contract/shard-map.ts';
import { BUCKETS } from '../../../sdk/src/contract/hash.ts';
import type { Assignment } from './shard-authority.ts';

export type ReshardPhase =
  'Prepare' | 'SchemaCopy' | 'InitialCopy' | 'CatchUp' | 'Cutover' | 'Cleanup' | 'Aborting';

/** A move's phases in the order it goes through them (Aborting aside). */
export const RESHARD_PHASES: readonly ReshardPhase[] = [
  'Prepare',
  'SchemaCopy',
  'InitialCopy',
  'CatchUp',
  'Cutover',
  'Cleanup',
];

/** Phases in which an abort leaves the app as it was (the map has not moved). */
const ABORTABLE: readonly ReshardPhase[] = ['Prepare', 'SchemaCopy', 'InitialCopy', 'CatchUp'];

/** One source -> target move of a resharding, as recorded. */
export interface MoveRecord {
  /** resharding-sql.ts's MoveSql id: names the publication, subscription, slot, fence. */
  readonly id: string;
  readonly source: number;
  readonly target: number;
  readonly ranges: readonly { readonly from: number; readonly to: number }[];
  /** The source's WAL position right after the fence committed (Cutover). */
  readonly fenceLsn?: string;
  /** The slot confirmed fenceLsn: the target holds every row of the move. */
  readonly caughtUp?: boolean;
}

/** status.resharding: what a resumed operator needs and nothing it can observe. */
export interface ReshardingStatus {
  readonly phase: ReshardPhase;
  readonly fromShards: number;
  readonly toShards: number;
  /** The map version the cutover publishes (the recorded version + 1). */
  readonly mapVersion: number;
  /** The assignment after the move, as the cutover publishes it. */
  readonly ranges: readonly BucketRange[];
  readonly moves: readonly MoveRecord[];
  /**
   * Set by the operator's publishMap (reshard-watch.ts): from then on this record's
   * `ranges` at `mapVersion` are the bucket assignment of record (shard-authority.ts), which
   * the next reconcile stamps on the shards and publishes; the time starts the ack delay.
   */
  readonly publishedAt?: string;
  /** Why the move cannot go on by itself (a refusal, a block), as the last step said. */
  readonly note?: { readonly reason: string; readonly message: string };
}

/** What the operator observed on one move's source and target primaries (this reconcile). */
export interface MoveFacts {
  readonly sourcePrimary: boolean;
  readonly targetPrimary: boolean;
  /** `SHOW wal_level` on the source. */
  readonly sourceWalLevel?: string;
  /**
   * Columns a sequence fills in the source's moved tables (sequencedColumnsSql, as
   * "schema.table.column (kind)"); probed in Prepare, undefined when not probed.
   */
  readonly sequencedColumns?: readonly string[];
  /**
   * Tables of the source without the shard-key column that hold rows (unkeyedTablesWithRowsSql,
   * "schema.table"); probed in Prepare, undefined when not probed.
   */
  readonly unkeyedTables?: readonly string[];
  /** The copy grant and the fence function exist on the source. */
  readonly sourcePrepared: boolean;
  /** Schema-qualified user tables of the app database on each side (userTablesSql). */
  readonly sourceTables: readonly string[];
  readonly targetTables: readonly string[];
  readonly publication: boolean;
  readonly subscription: boolean;
  /** Tables of the subscription not in state r (tablesNotReadySql). */
  readonly tablesNotReady?: number;
  /** Bytes the slot is behind the source (slotLagSql); undefined without a slot. */
  readonly lagBytes?: number;
  /** The slot's confirmed_flush_lsn; undefined without a slot. */
  readonly confirmedLsn?: string;
  /** Every moved table carries the move's fence trigger on the source. */
  readonly fenced: boolean;
  /** The way back (resharding-sql.ts backName): the target's publication, the source's subscription. */
  readonly backPublication?: boolean;
  readonly backSubscription?: boolean;
  /**
   * The target fences some of the move's buckets (left by an earlier move out of it, as when
   * shards shrink after they grew); undefined when not probed.
   */
  readonly targetFenced?: boolean;
  /** The target carries the move's guard (guardSql): app writes there wait for the cutover. */
  readonly targetGuarded?: boolean;
  /**
   * The move's slots the standbys of its source and target hold as their own (straySlotsSql,
   * summed over the members); probed at the end of Cleanup, undefined when not probed.
   */
  readonly straySlots?: number;
  /** Rows of the move's buckets left on the source (countInMoveSql over the tables). */
  readonly sourceRowsInMove?: number;
  /** Rows of the move's buckets on the target (what an abort deletes). */
  readonly targetRowsInMove?: number;
}

export interface ReshardFacts {
  readonly moves: Readonly<Record<string, MoveFacts>>;
  /** The live shard map ConfigMap's version and ranges. */
  readonly publishedMap?: Assignment;
  /** Every app pod reads a map of at least this version (planned: the SDK reports it). */
  readonly acknowledgedVersion?: number;
  /**
   * Every app pod's map lists every move's target (false: a new shard not yet, so a write the
   * fence sends there could not go; undefined: not known, taken as listed).
   */
  readonly targetsListed?: boolean;
}

export interface ReshardSpec {
  /** spec.database.shards */
  readonly shards: number;
  readonly shardKey?: string;
  /** An abort asked for (planned: an annotation on the ScalableApp). */
  readonly abort?: boolean;
}

export type ReshardAction =
  | { readonly kind: 'setWalLevelLogical'; readonly shard: number }
  | { readonly kind: 'prepareSource'; readonly shard: number }
  | { readonly kind: 'copySchema'; readonly source: number; readonly target: number }
  | { readonly kind: 'createPublication'; readonly move: string; readonly shard: number }
  /** On the target, before its copy: refuse app writes to the move's buckets until the lift. */
  | { readonly kind: 'guardTarget'; readonly move: string; readonly shard: number }
  | {
      readonly kind: 'createSubscription';
      readonly move: string;
      readonly shard: number;
      readonly source: number;
    }
  /** Idempotent; its result (the LSN after the fence) goes to the move's fenceLsn. */
  | { readonly kind: 'fence'; readonly move: string; readonly shard: number }
  | { readonly kind: 'dropSubscription'; readonly move: string; readonly shard: number }
  /** On the target, before the flip: the move's buckets out of its old fences. */
  | { readonly kind: 'liftTargetFences'; readonly move: string; readonly shard: number }
  | {
      readonly kind: 'publishMap';
      readonly version: number;
      readonly ranges: readonly BucketRange[];
    }
  | { readonly kind: 'dropPublication'; readonly move: string; readonly shard: number }
  /** On the target: its changes to the moved buckets, for the source to follow. */
  | { readonly kind: 'createBackPublication'; readonly move: string; readonly shard: number }
  /** On the source, from the target. */
  | {
      readonly kind: 'createBackSubscription';
      readonly move: string;
      readonly shard: number;
      readonly target: number;
    }
  | { readonly kind: 'dropBackSubscription'; readonly move: string; readonly shard: number }
  | { readonly kind: 'dropBackPublication'; readonly move: string; readonly shard: number }
  | { readonly kind: 'deleteMovedRows'; readonly move: string; readonly shard: number }
  /** On every standby of the shard: the moves' slots it kept from when it was the primary. */
  | { readonly kind: 'dropStraySlots'; readonly shard: number }
  | { readonly kind: 'deleteCopiedRows'; readonly move: string; readonly shard: number };

export interface ReshardCondition {
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
}

export interface ReshardDecision {
  /** The record to write to status.resharding before acting; undefined: none (cleared). */
  readonly resharding: ReshardingStatus | undefined;
  readonly actions: readonly ReshardAction[];
  readonly condition?: ReshardCondition;
  /** A spec the machine will not act on: the field and why; nothing changed. */
  readonly refused?: { readonly field: string; readonly message: string };
}

export interface ReshardOptions {
  /** The catch-up bound before the fence (bytes of WAL the slot may be behind). */
  readonly maxLagBytes?: number;
  readonly buckets?: number;
}

export const DEFAULT_MAX_LAG_BYTES = 16 * 1024 * 1024;

/** The bucket -> owner array of an assignment. */
function ownersOf(ranges: readonly BucketRange[], buckets: number): number[] {
  const owner = new Array<number>(buckets).fill(-1);
  for (const r of ranges) for (let b = r.from; b < r.to; b++) owner[b] = r.shard;
  return owner;
}

/** Distinct shards that own buckets in an assignment. */
export const owningShards = (record: Assignment): number =>
  new Set(record.ranges.map((r) => r.shard)).size;

/**
 * The moves that take `record` to the spread of `toShards` (assignBuckets): one per
 * (source, target) pair, with every range it carries. Diffing the record (not the canonical
 * spread of its shard count) keeps whatever the record says holds the rows.
 */
export function planMoves(
  record: Assignment,
  toShards: number,
  buckets: number = BUCKETS,
): { moves: MoveRecord[]; ranges: BucketRange[] } {
  const before = ownersOf(record.ranges, buckets);
  const after = assignBuckets(toShards, buckets);
  const version = record.version + 1;
  const byPair = new Map<string, MoveRecord>();
  before.forEach((source, b) => {
    const target = after[b] ?? source;
    if (target === source) return;
    const id = `v${version}_s${source}_s${target}`;
    const m = byPair.get(id) ?? { id, source, target, ranges: [] };
    const last = m.ranges[m.ranges.length - 1];
    const ranges =
      last && last.to === b
        ? [...m.ranges.slice(0, -1), { from: last.from, to: b + 1 }]
        : [...m.ranges, { from: b, to: b + 1 }];
    byPair.set(id, { ...m, ranges });
  });
  return {
    moves: [...byPair.values()].sort((a, b) => a.source - b.source || a.target - b.target),
    ranges: toRanges(after),
  };
}

/** 'X/Y' (pg_lsn text) as a number of bytes. */
export function lsnOf(text: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!m) throw new Error(`not an LSN: ${text}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

const cond = (status: 'True' | 'False', reason: string, message: string): ReshardCondition => ({
  status,
  reason,
  message,
});

const uniq = (xs: readonly number[]): number[] => [...new Set(xs)].sort((a, b) => a - b);

/** The next step of a resharding (or none), from what is recorded and observed. */
export function nextReshardStep(
  spec: ReshardSpec,
  current: ReshardingStatus | undefined,
  record: Assignment,
  facts: ReshardFacts,
  opts: ReshardOptions = {},
): ReshardDecision {
  const buckets = opts.buckets ?? BUCKETS;
  const maxLag = opts.maxLagBytes ?? DEFAULT_MAX_LAG_BYTES;
  const owners = owningShards(record);
  const stay = (reason: string, message: string, actions: ReshardAction[] = []) => ({
    resharding: current,
    actions,
    condition: cond('True', reason, message),
  });
  const refuse = (field: string, message: string): ReshardDecision => ({
    resharding: current,
    actions: [],
    refused: { field, message },
    condition: cond('True', current ? 'Resharding' : 'ShardCountRefused', `${field}: ${message}`),
  });

  if (!current) {
    // Fewer shards is the same machine: the departing shards' buckets move to those that
    // stay (planMoves), and the database tier keeps their groups until none owns a bucket.
    if (spec.shards === owners) return { resharding: undefined, actions: [] };
    if (!spec.shardKey)
      return refuse('spec.database.shardKey', `is required to move rows to ${spec.shards} shards`);
    if (spec.abort) return { resharding: undefined, actions: [] };
    const plan = planMoves(record, spec.shards, buckets);
    const started: ReshardingStatus = {
      phase: 'Prepare',
      fromShards: owners,
      toShards: spec.shards,
      mapVersion: record.version + 1,
      ranges: plan.ranges,
      moves: plan.moves,
    };
    return {
      resharding: started,
      actions: [],
      condition: cond(
        'True',
        'Resharding',
        `${owners} -> ${spec.shards} shards: ${plan.moves.length} move(s) planned`,
      ),
    };
  }

  // A move in progress finishes (or aborts) before the spec's count is acted on again.
  if (spec.shards < current.toShards && current.phase !== 'Aborting')
    return refuse(
      'spec.database.shards',
      `cannot go below ${current.toShards} while moving ${current.fromShards} -> ${current.toShards} shards (phase ${current.phase}); nothing was changed`,
    );

  const factsOf = (m: MoveRecord): MoveFacts | undefined => facts.moves[m.id];
  const missing = current.moves.filter((m) => !factsOf(m));
  if (missing.length > 0)
    return stay('Resharding', `waiting for facts on ${missing.map((m) => m.id).join(', ')}`);
  const f = (m: MoveRecord): MoveFacts => {
    const known = factsOf(m);
    if (!known) throw new Error(`no facts on move ${m.id}`); // checked just above
    return known;
  };
  const phase = (p: ReshardPhase, record = current): ReshardingStatus => ({ ...record, phase: p });
  const advance = (p: ReshardPhase, msg: string, next = current): ReshardDecision => ({
    resharding: phase(p, next),
    actions: [],
    condition: cond('True', 'Resharding', msg),
  });
  const busy = (msg: string, actions: ReshardAction[], next = current): ReshardDecision => ({
    resharding: next,
    actions,
    condition: cond('True', 'Resharding', `${current.phase}: ${msg}`),
  });

  if (spec.abort && ABORTABLE.includes(current.phase))
    return advance('Aborting', 'abort asked before the cutover: undoing the copy');

  const down = current.moves.filter((m) => !f(m).sourcePrimary || !f(m).targetPrimary);
  if (down.length > 0)
    return stay(
      'Resharding',
      `${current.phase}: waiting for a primary on ${down.map((m) => `${m.source} and ${m.target}`).join(', ')}`,
    );

  switch (current.phase) {
    case 'Prepare': {
      // First, before any action: a refused move has changed nothing on any shard.
      const unprobed = current.moves.filter(
        (m) => f(m).sequencedColumns === undefined || f(m).unkeyedTables === undefined,
      );
      if (unprobed.length > 0)
        return stay(
          'Resharding',
          `Prepare: checking ${unprobed.map((m) => m.id).join(', ')} for sequence columns`,
        );
      const sequenced = [...new Set(current.moves.flatMap((m) => f(m).sequencedColumns ?? []))];
      if (sequenced.length > 0)
        return stay(
          'SequenceColumnsRefused',
          `Prepare: refused: moved tables have columns a sequence fills, whose values would collide across shards after the move: ${sequenced.join(', ')}; use uuid keys (gen_random_uuid()) or keys the app supplies, or abort the move; nothing was changed on any shard`,
        );
      const unkeyed = [...new Set(current.moves.flatMap((m) => f(m).unkeyedTables ?? []))];
      if (unkeyed.length > 0)
        return stay(
          'ReferenceTablesRefused',
          `Prepare: refused: tables without the shard key ${spec.shardKey ?? ''} hold rows that no bucket owns, so a move would leave them behind (empty on a new shard, gone with a departing one): ${unkeyed.join(', ')}; add the key column to them, keep them outside the app database, or abort the move; nothing was changed on any shard`,
        );
      const sources = uniq(current.moves.map((m) => m.source));
      const wal = sources.filter((s) =>
        current.moves.some((m) => m.source === s && f(m).sourceWalLevel !== 'logical'),
      );
      if (wal.length > 0)
        return busy(
          `wal_level=logical on shard(s) ${wal.join(', ')}`,
          wal.map((shard) => ({ kind: 'setWalLevelLogical', shard })),
        );
      const unprepared = sources.filter((s) =>
        current.moves.some((m) => m.source === s && !f(m).sourcePrepared),
      );
      if (unprepared.length > 0)
        return busy(
          `copy grant and fence function on shard(s) ${unprepared.join(', ')}`,
          unprepared.map((shard) => ({ kind: 'prepareSource', shard })),
        );
      return advance('SchemaCopy', 'sources ready: copying the schema');
    }

    case 'SchemaCopy': {
      const actions: ReshardAction[] = [];
      const copied = new Set<number>();
      for (const m of current.moves) {
        const { sourceTables: src, targetTables: dst } = f(m);
        if (copied.has(m.target)) continue;
        if (dst.length === 0) {
          actions.push({ kind: 'copySchema', source: m.source, target: m.target });
          copied.add(m.target);
        } else if (dst.join() !== src.join()) {
          // Not ours to fix or delete: a target that holds other tables stops the move.
          return stay(
            'ReshardingBlocked',
            `shard ${m.target} holds tables the source (shard ${m.source}) does not have the same: [${dst.join(', ')}] vs [${src.join(', ')}]; the move waits (nothing is deleted)`,
          );
        }
      }
      if (actions.length > 0) return busy('restoring the schema', actions);
      return advance('InitialCopy', 'schema copied: starting the initial copy');
    }

    case 'InitialCopy': {
      const actions: ReshardAction[] = [];
      for (const m of current.moves) {
        if (!f(m).publication)
          actions.push({ kind: 'createPublication', move: m.id, shard: m.source });
        else if (!f(m).subscription && !f(m).targetGuarded)
          actions.push({ kind: 'guardTarget', move: m.id, shard: m.target });
        else if (!f(m).subscription)
          actions.push({
            kind: 'createSubscription',
            move: m.id,
            shard: m.target,
            source: m.source,
          });
      }
      if (actions.length > 0) return busy('creating publications and subscriptions', actions);
      const copying = current.moves.filter((m) => f(m).tablesNotReady !== 0);
      if (copying.length > 0)
        return busy(`initial copy of ${copying.map((m) => m.id).join(', ')}`, []);
      return advance('CatchUp', 'initial copy done: catching up');
    }

    case 'CatchUp': {
      const lost = current.moves.filter((m) => !f(m).subscription || !f(m).publication);
      if (lost.length > 0)
        // Re-creating them would copy rows the target already has: stop and say so.
        return stay(
          'ReshardingBlocked',
          `the publication or subscription of ${lost.map((m) => m.id).join(', ')} vanished during catch-up; abort the move to start again`,
        );
      const behind = current.moves.filter((m) => (f(m).lagBytes ?? Infinity) > maxLag);
      if (behind.length > 0)
        return busy(
          `${behind.map((m) => `${m.id} ${f(m).lagBytes ?? '?'} bytes behind`).join(', ')} (bound ${maxLag})`,
          [],
        );
      // The fence sends writes to the target: every pod must know its address first.
      if (facts.targetsListed === false)
        return busy(
          `waiting until every app pod's shard map lists shard(s) ${uniq(current.moves.map((m) => m.target)).join(', ')} (the kubelet's refresh), so writes the fence refuses can go there at once`,
          [],
        );
      return advance('Cutover', 'caught up: fencing the moving buckets');
    }

    case 'Cutover': {
      const unfenced = current.moves.filter((m) => !f(m).fenced || !m.fenceLsn);
      if (unfenced.length > 0)
        return busy(
          `fencing ${unfenced.map((m) => m.id).join(', ')}`,
          unfenced.map((m) => ({ kind: 'fence', move: m.id, shard: m.source })),
        );
      // The slot confirmed every write made before the fence: the target holds them all.
      let record = current;
      const moves = current.moves.map((m) => {
        const confirmed = f(m).confirmedLsn;
        if (m.caughtUp || !f(m).subscription || !confirmed || !m.fenceLsn) return m;
        return lsnOf(confirmed) >= lsnOf(m.fenceLsn) ? { ...m, caughtUp: true } : m;
      });
      if (moves.some((m, i) => m !== current.moves[i])) record = { ...current, moves };
      const vanished = record.moves.filter((m) => !m.caughtUp && !f(m).subscription);
      if (vanished.length > 0)
        return stay(
          'ReshardingBlocked',
          `the subscription of ${vanished.map((m) => m.id).join(', ')} vanished before it confirmed the fence's LSN: the target cannot be vouched for; the map is not switched`,
        );
      const waiting = record.moves.filter((m) => !m.caughtUp);
      if (waiting.length > 0)
        return busy(
          `waiting for ${waiting.map((m) => `${m.id} to confirm ${m.fenceLsn}`).join(', ')}`,
          [],
          record,
        );
      const subs = record.moves.filter((m) => f(m).subscription);
      if (subs.length > 0)
        return busy(
          'every move caught up: dropping the subscriptions',
          subs.map((m) => ({ kind: 'dropSubscription', move: m.id, shard: m.target })),
          record,
        );
      // Before the flip, the way back: readers still on the old map then see new writes.
      const noBackPublication = record.moves.filter((m) => !f(m).backPublication);
      if (noBackPublication.length > 0)
        return busy(
          'publishing the moved buckets back from their new shards',
          noBackPublication.map((m) => ({
            kind: 'createBackPublication',
            move: m.id,
            shard: m.target,
          })),
          record,
        );
      const noBackSubscription = record.moves.filter((m) => !f(m).backSubscription);
      if (noBackSubscription.length > 0)
        return busy(
          'the old shards follow the moved buckets until every pod has the new map',
          noBackSubscription.map((m) => ({
            kind: 'createBackSubscription',
            move: m.id,
            shard: m.source,
            target: m.target,
          })),
          record,
        );
      // Last before the flip, once the way back runs: the target's guard goes (and the old
      // fences of a target that once gave these buckets away, or every write the flip sends
      // there would be refused for good); from here the source's fence sends writes there.
      const fencedTargets = record.moves.filter((m) => f(m).targetFenced);
      if (fencedTargets.length > 0)
        return busy(
          'opening the moved buckets on their new shards',
          fencedTargets.map((m) => ({ kind: 'liftTargetFences', move: m.id, shard: m.target })),
          record,
        );
      const live = facts.publishedMap;
      if (!live || live.version < record.mapVersion)
        return busy(
          `publishing shard map v${record.mapVersion}`,
          [{ kind: 'publishMap', version: record.mapVersion, ranges: record.ranges }],
          record,
        );
      return advance(
        'Cleanup',
        `shard map v${record.mapVersion} published: waiting for apps`,
        record,
      );
    }

    case 'Cleanup': {
      const acked = facts.acknowledgedVersion ?? 0;
      if (acked < current.mapVersion)
        return busy(
          `waiting for every app pod to read shard map v${current.mapVersion} (they read v${acked})`,
          [],
        );
      // The way back stops first: rows deleted from a source it still fed would come back.
      const back: ReshardAction[] = current.moves.flatMap((m): ReshardAction[] => [
        ...(f(m).backSubscription
          ? [{ kind: 'dropBackSubscription' as const, move: m.id, shard: m.source }]
          : []),
        ...(f(m).backPublication
          ? [{ kind: 'dropBackPublication' as const, move: m.id, shard: m.target }]
          : []),
      ]);
      if (back.length > 0) return busy('stopping the way back', back);
      const actions: ReshardAction[] = [];
      for (const m of current.moves) {
        if (f(m).publication)
          actions.push({ kind: 'dropPublication', move: m.id, shard: m.source });
        if (f(m).sourceRowsInMove !== 0)
          actions.push({ kind: 'deleteMovedRows', move: m.id, shard: m.source });
      }
      if (actions.length > 0) return busy('deleting moved rows from the sources', actions);
      // A member switched over mid-move keeps its own copy of a slot, holding WAL for good.
      const stray = uniq(
        current.moves
          .filter((m) => (f(m).straySlots ?? 0) > 0)
          .flatMap((m) => [m.source, m.target]),
      );
      if (stray.length > 0)
        return busy(
          `dropping the moves' slots left on standbys of shard(s) ${stray.join(', ')}`,
          stray.map((shard) => ({ kind: 'dropStraySlots', shard })),
        );
      return {
        resharding: undefined,
        actions: [],
        condition: cond(
          'True',
          'ShardsReady',
          `${current.fromShards} -> ${current.toShards} shards done (shard map v${current.mapVersion})`,
        ),
      };
    }

    case 'Aborting': {
      const actions: ReshardAction[] = [];
      for (const m of current.moves) {
        if (f(m).subscription)
          actions.push({ kind: 'dropSubscription', move: m.id, shard: m.target });
        else if (f(m).targetRowsInMove !== 0)
          // Rows only: the target owns none of these buckets, so nothing reads them.
          actions.push({ kind: 'deleteCopiedRows', move: m.id, shard: m.target });
        if (f(m).publication)
          actions.push({ kind: 'dropPublication', move: m.id, shard: m.source });
      }
      if (actions.length > 0) return busy('undoing the copy', actions);
      return {
        resharding: undefined,
        actions: [],
        condition: cond(
          'True',
          'ReshardingAborted',
          `the move to ${current.toShards} shards was aborted before its cutover; the shard map is unchanged`,
        ),
      };
    }
  }
}
