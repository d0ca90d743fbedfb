// The resharding state machine's transitions. A small model of the shards (what each action
// does to them, what the probes would read) drives the pure function the way the operator
// will: write the returned record first, then act; an operator restart is a run that resumes
// from whatever record was last written, against whatever the shards hold by then. The
// model also counts what must never happen: a subscription created over rows the target
// already has (duplicates), a map published before the target confirmed the fence's LSN
// (lost writes), moved rows deleted before apps read the new map.
import { describe, expect, it } from 'vitest';
import { assignBuckets, bucketMoves, toRanges } from '../../../sdk/src/contract/shard-map.ts';
import type { Assignment } from './shard-authority.ts';
import { RESHARD_PHASES, lsnOf, nextReshardStep, planMoves } from './resharding.ts';
import type {
  MoveFacts,
  ReshardAction,
  ReshardDecision,
  ReshardPhase,
  ReshardSpec,
  ReshardingStatus,
} from './resharding.ts';

const recordOf = (shards: number, version = shards): Assignment => ({
  version,
  ranges: toRanges(assignBuckets(shards)),
});

const lsnText = (n: number): string =>
  `${Math.floor(n / 2 ** 32).toString(16)}/${(n % 2 ** 32).toString(16).toUpperCase()}`;

interface MoveWorld {
  source: number;
  target: number;
  publication: boolean;
  subscription: boolean;
  /** Reconciles since the subscription was created (its initial copy takes two). */
  subscribedTicks: number;
  fenced: boolean;
  /** The source's WAL position when the fence committed. */
  fencedAt?: number;
  /** What the slot confirmed. */
  confirmed: number;
  sourceRows: number;
  targetRows: number;
  /** The way back: the target's publication, the source's subscription to it. */
  backPublication: boolean;
  backSubscription: boolean;
}

/** The shards of one app, and what went wrong on them. */
class World {
  lsn = 1000;
  walLogical = new Set<number>();
  prepared = new Set<number>();
  tables = new Map<number, string[]>();
  /** Sequence-filled columns of each shard's moved tables (sequencedColumnsSql). */
  sequenced = new Map<number, string[]>();
  /** Move slots a shard's standbys hold as their own (straySlotsSql), per shard. */
  straySlots = new Map<number, number>();
  /** Tables without the shard key holding rows, per shard (unkeyedTablesWithRowsSql). */
  unkeyed = new Map<number, string[]>();
  map: Assignment;
  acknowledged: number;
  moves = new Map<string, MoveWorld>();
  primaries = new Set<number>();
  duplicates = 0;
  lostWrites = 0;
  earlyDeletes = 0;
  /** Flips while a reader on the old map would miss new writes (no way back yet). */
  staleReads = 0;
  /** Buckets each shard's fence triggers refuse (what fence adds, liftTargetFences takes). */
  fencedBuckets = new Map<number, Set<number>>();
  /** Whether every app pod's map lists the targets (undefined: not known). */
  targetsListed: boolean | undefined = undefined;
  /** Moves whose target carries the guard (guardTarget). */
  guarded = new Set<string>();
  /** Flips that send writes to a shard still fencing their buckets: refused for good. */
  refusedForGood = 0;
  log: string[] = [];
  /** The slot confirms this many bytes per reconcile (large: it keeps up). */
  applyRate = 1 << 30;
  /** Bytes of WAL the sources write per reconcile. */
  writeRate = 4096;

  constructor(
    record: Assignment,
    readonly shards: number,
  ) {
    this.map = record;
    this.acknowledged = record.version;
    for (let s = 0; s < shards; s++) {
      this.primaries.add(s);
      this.tables.set(
        s,
        s < new Set(record.ranges.map((r) => r.shard)).size
          ? ['public.items', 'public.visits']
          : [],
      );
    }
  }

  moveOf(id: string, source: number, target: number): MoveWorld {
    let m = this.moves.get(id);
    if (!m) {
      m = {
        source,
        target,
        publication: false,
        subscription: false,
        subscribedTicks: 0,
        fenced: false,
        confirmed: 0,
        sourceRows: 500,
        targetRows: 0,
        backPublication: false,
        backSubscription: false,
      };
      this.moves.set(id, m);
    }
    return m;
  }

  /** Time passes between reconciles: writes on the sources, the subscriptions apply them. */
  tick(): void {
    this.lsn += this.writeRate;
    for (const m of this.moves.values())
      if (m.subscription) {
        m.subscribedTicks++;
        if (m.subscribedTicks >= 2) {
          m.targetRows = m.sourceRows;
          m.confirmed = Math.min(this.lsn, m.confirmed + this.applyRate);
        }
      }
  }

  factsFor(status: ReshardingStatus): Record<string, MoveFacts> {
    const out: Record<string, MoveFacts> = {};
    for (const rec of status.moves) {
      const m = this.moveOf(rec.id, rec.source, rec.target);
      out[rec.id] = {
        sourcePrimary: this.primaries.has(m.source),
        targetPrimary: this.primaries.has(m.target),
        sourceWalLevel: this.walLogical.has(m.source) ? 'logical' : 'replica',
        sequencedColumns: this.sequenced.get(m.source) ?? [],
        unkeyedTables: this.unkeyed.get(m.source) ?? [],
        sourcePrepared: this.prepared.has(m.source),
        sourceTables: this.tables.get(m.source) ?? [],
        targetTables: this.tables.get(m.target) ?? [],
        publication: m.publication,
        subscription: m.subscription,
        ...(m.subscription
          ? {
              tablesNotReady: m.subscribedTicks >= 2 ? 0 : 2,
              lagBytes: this.lsn - m.confirmed,
              confirmedLsn: lsnText(m.confirmed),
            }
          : {}),
        fenced: m.fenced,
        targetFenced: rec.ranges.some((r) => this.#fences(m.target, r).length > 0),
        targetGuarded: this.guarded.has(rec.id),
        backPublication: m.backPublication,
        backSubscription: m.backSubscription,
        sourceRowsInMove: m.sourceRows,
        straySlots: (this.straySlots.get(m.source) ?? 0) + (this.straySlots.get(m.target) ?? 0),
        targetRowsInMove: m.targetRows,
      };
    }
    return out;
  }

  /** Buckets of `r` that `shard` fences. */
  #fences(shard: number, r: { from: number; to: number }): number[] {
    const set = this.fencedBuckets.get(shard);
    const out: number[] = [];
    for (let b = r.from; b < r.to; b++) if (set?.has(b)) out.push(b);
    return out;
  }

  /** Runs one action; returns what the executor records (the fence's LSN). */
  act(a: ReshardAction, status: ReshardingStatus): string | undefined {
    this.log.push(a.kind);
    const rec = 'move' in a ? status.moves.find((m) => m.id === a.move)! : undefined;
    const m = rec ? this.moveOf(rec.id, rec.source, rec.target) : undefined;
    switch (a.kind) {
      case 'setWalLevelLogical':
        this.walLogical.add(a.shard);
        return undefined;
      case 'prepareSource':
        this.prepared.add(a.shard);
        return undefined;
      case 'copySchema':
        this.tables.set(a.target, [...(this.tables.get(a.source) ?? [])]);
        return undefined;
      case 'createPublication':
        m!.publication = true;
        return undefined;
      case 'createSubscription':
        if (m!.targetRows > 0) this.duplicates++;
        // The target must refuse app writes to the buckets before it gets their rows.
        if (!this.guarded.has(rec!.id)) this.duplicates++;
        m!.subscription = true;
        m!.subscribedTicks = 0;
        return undefined;
      case 'fence': {
        const set = this.fencedBuckets.get(m!.source) ?? new Set<number>();
        for (const r of rec!.ranges) for (let b = r.from; b < r.to; b++) set.add(b);
        this.fencedBuckets.set(m!.source, set);
        m!.fenced = true;
        this.lsn += 100;
        m!.fencedAt = this.lsn;
        return lsnText(this.lsn);
      }
      case 'guardTarget': {
        const set = this.fencedBuckets.get(m!.target) ?? new Set<number>();
        for (const r of rec!.ranges) for (let b = r.from; b < r.to; b++) set.add(b);
        this.fencedBuckets.set(m!.target, set);
        this.guarded.add(rec!.id);
        return undefined;
      }
      case 'liftTargetFences':
        for (const r of rec!.ranges)
          for (const b of this.#fences(m!.target, r)) this.fencedBuckets.get(m!.target)?.delete(b);
        return undefined;
      case 'dropSubscription':
        m!.subscription = false;
        return undefined;
      case 'publishMap':
        // The moves this flip ends (an earlier resharding's are long done).
        for (const mv of status.moves) {
          if (mv.ranges.some((r) => this.#fences(mv.target, r).length > 0)) this.refusedForGood++;
          const w = this.moveOf(mv.id, mv.source, mv.target);
          if (!w.fenced || w.fencedAt === undefined || w.confirmed < w.fencedAt) this.lostWrites++;
          // A reader still on the old map would not see what the new one writes.
          if (!w.backSubscription) this.staleReads++;
        }
        this.map = { version: a.version, ranges: a.ranges };
        return undefined;
      case 'dropPublication':
        m!.publication = false;
        return undefined;
      case 'deleteMovedRows':
        if (this.map.version < status.mapVersion || this.acknowledged < status.mapVersion)
          this.earlyDeletes++;
        // The way back would bring deleted rows' later changes to the source again.
        if (m!.backSubscription) this.earlyDeletes++;
        m!.sourceRows = Math.max(0, m!.sourceRows - 200);
        return undefined;
      case 'dropStraySlots':
        this.straySlots.set(a.shard, 0);
        return undefined;
      case 'deleteCopiedRows':
        m!.targetRows = 0;
        return undefined;
      case 'createBackPublication':
        m!.backPublication = true;
        return undefined;
      case 'createBackSubscription':
        if (!m!.backPublication) this.staleReads++;
        m!.backSubscription = true;
        return undefined;
      case 'dropBackSubscription':
        m!.backSubscription = false;
        return undefined;
      case 'dropBackPublication':
        m!.backPublication = false;
        return undefined;
    }
  }
}

interface Run {
  decisions: ReshardDecision[];
  phases: ReshardPhase[];
  status: ReshardingStatus | undefined;
}

/**
 * The operator's loop: decide, write the record, act, record the fence's LSN, let time
 * pass. `crashAt` stops it right after the record of that step was written (before its
 * actions ran, or after `partial` of them), as an operator killed there would.
 */
function operate(
  world: World,
  spec: ReshardSpec,
  start: ReshardingStatus | undefined,
  opts: { crashAt?: number; partial?: number; maxSteps?: number; ackAfterPublish?: boolean } = {},
): Run {
  let status = start;
  const decisions: ReshardDecision[] = [];
  const phases: ReshardPhase[] = [];
  for (let step = 0; step < (opts.maxSteps ?? 200); step++) {
    const d = nextReshardStep(spec, status, world.map, {
      moves: status ? world.factsFor(status) : {},
      publishedMap: world.map,
      acknowledgedVersion: world.acknowledged,
      ...(world.targetsListed === undefined ? {} : { targetsListed: world.targetsListed }),
    });
    decisions.push(d);
    status = d.resharding; // written first
    if (status) phases.push(status.phase);
    const actions = opts.crashAt === step ? d.actions.slice(0, opts.partial ?? 0) : d.actions;
    for (const a of actions) {
      const lsn = world.act(a, status!);
      if (lsn && a.kind === 'fence' && status && opts.crashAt !== step)
        status = {
          ...status,
          moves: status.moves.map((m) => (m.id === a.move ? { ...m, fenceLsn: lsn } : m)),
        };
    }
    if (opts.crashAt === step) return { decisions, phases, status };
    // Apps read a new map a reconcile after it is published.
    if (opts.ackAfterPublish !== false) world.acknowledged = world.map.version;
    world.tick();
    if (!status && step > 0) break;
    if (!status && d.actions.length === 0 && !d.condition) break;
  }
  return { decisions, phases, status };
}

const distinct = (xs: readonly string[]): string[] =>
  xs.filter((x, i) => i === 0 || xs[i - 1] !== x);

const spec3: ReshardSpec = { shards: 3, shardKey: 'customer_id' };

describe('planMoves', () => {
  it('moves what bucketMoves lists, one move per source and target, into the spread of M', () => {
    for (const [n, m] of [
      [1, 2],
      [2, 3],
      [3, 5],
      [1, 4],
    ] as const) {
      const plan = planMoves(recordOf(n), m);
      const flat = plan.moves.flatMap((mv) =>
        mv.ranges.map((r) => ({ from: r.from, to: r.to, source: mv.source, target: mv.target })),
      );
      const sorted = [...flat].sort((a, b) => a.from - b.from);
      // bucketMoves merges adjacent buckets of one pair; so does planMoves: same ranges.
      expect(sorted).toEqual(bucketMoves(n, m));
      expect(plan.ranges).toEqual(toRanges(assignBuckets(m)));
      expect(new Set(plan.moves.map((mv) => mv.id)).size).toBe(plan.moves.length);
      for (const mv of plan.moves) expect(mv.id).toMatch(/^[a-z0-9_]{1,40}$/);
    }
  });

  it('diffs the record, not the canonical spread of its shard count', () => {
    // Shard 1 holds 0-100 on record (say, moved there by hand with the map): going to 2 shards
    // moves 0-100 back to shard 0 and the rest of 512-1024 to shard 1.
    const record: Assignment = {
      version: 5,
      ranges: [
        { from: 0, to: 100, shard: 1 },
        { from: 100, to: 1024, shard: 0 },
      ],
    };
    const plan = planMoves(record, 2);
    expect(plan.moves.map((m) => [m.id, m.ranges])).toEqual([
      ['v6_s0_s1', [{ from: 512, to: 1024 }]],
      ['v6_s1_s0', [{ from: 0, to: 100 }]],
    ]);
  });
});

describe('lsnOf', () => {
  it('orders pg_lsn text as Postgres does', () => {
    expect(lsnOf('0/10') < lsnOf('0/FF')).toBe(true);
    expect(lsnOf('0/FFFFFFFF') < lsnOf('1/0')).toBe(true);
    expect(lsnOf('16/B374D848')).toBe(0x16b374d848n);
    expect(() => lsnOf('nope')).toThrow(/not an LSN/);
  });
});

describe('nextReshardStep: refusals change nothing', () => {
  it('a count lowered during a move is refused and the recorded move is returned as it was', () => {
    const world = new World(recordOf(2), 3);
    const run = operate(world, spec3, undefined, { maxSteps: 6 });
    const mid = run.status!;
    expect(mid.phase).toBe('InitialCopy');
    for (const shards of [2, 1]) {
      const d = nextReshardStep({ shards, shardKey: 'k' }, mid, world.map, {
        moves: world.factsFor(mid),
        publishedMap: world.map,
      });
      expect(d.refused?.field).toBe('spec.database.shards');
      expect(d.resharding).toBe(mid);
      expect(d.actions).toEqual([]);
    }
  });

  it('more shards without a shardKey are refused, naming spec.database.shardKey', () => {
    const d = nextReshardStep({ shards: 2 }, undefined, recordOf(1), { moves: {} });
    expect(d.refused?.field).toBe('spec.database.shardKey');
    expect(d.resharding).toBeUndefined();
    expect(d.actions).toEqual([]);
  });

  it('nothing to do when the spec and the record agree', () => {
    const d = nextReshardStep(spec3, undefined, recordOf(3), { moves: {} });
    expect(d).toEqual({ resharding: undefined, actions: [] });
  });
});

describe('nextReshardStep: a whole move', () => {
  it('goes through every phase in order and moves the rows exactly once', () => {
    const world = new World(recordOf(2), 3);
    const run = operate(world, spec3, undefined);
    expect(distinct(run.phases)).toEqual(RESHARD_PHASES);
    expect(run.status).toBeUndefined();
    expect(run.decisions.at(-1)?.condition?.reason).toBe('ShardsReady');
    expect(world.map).toEqual({ version: 3, ranges: toRanges(assignBuckets(3)) });
    expect([world.duplicates, world.lostWrites, world.earlyDeletes, world.staleReads]).toEqual([
      0, 0, 0, 0,
    ]);
    for (const m of world.moves.values()) {
      expect(m).toMatchObject({
        publication: false,
        subscription: false,
        fenced: true,
        backPublication: false,
        backSubscription: false,
      });
      expect([m.sourceRows, m.targetRows]).toEqual([0, 500]);
    }
    // The order of the irreversible steps.
    const at = (k: string) => world.log.indexOf(k);
    expect(at('fence')).toBeGreaterThan(at('createSubscription'));
    expect(at('publishMap')).toBeGreaterThan(world.log.lastIndexOf('dropSubscription'));
    expect(at('deleteMovedRows')).toBeGreaterThan(at('publishMap'));
    expect(at('createBackSubscription')).toBeGreaterThan(world.log.lastIndexOf('dropSubscription'));
    expect(at('publishMap')).toBeGreaterThan(world.log.lastIndexOf('createBackSubscription'));
    // The guard before the copy; its lift after the way back runs, before the flip.
    expect(world.log.lastIndexOf('guardTarget')).toBeLessThan(at('createSubscription'));
    expect(at('liftTargetFences')).toBeGreaterThan(world.log.lastIndexOf('createBackSubscription'));
    expect(at('publishMap')).toBeGreaterThan(world.log.lastIndexOf('liftTargetFences'));
    expect(world.refusedForGood).toBe(0);
    expect(at('deleteMovedRows')).toBeGreaterThan(world.log.lastIndexOf('dropBackSubscription'));
    expect(world.log.filter((k) => k === 'publishMap')).toHaveLength(1);
  });

  it('waits in CatchUp while the slot is further behind than the bound, and fences after', () => {
    const world = new World(recordOf(1), 2);
    world.writeRate = 64 << 20; // 64 MiB per reconcile, 1 MiB applied: ever further behind
    world.applyRate = 1 << 20;
    const spec = { shards: 2, shardKey: 'k' };
    const slow = operate(world, spec, undefined, { maxSteps: 40 });
    expect(slow.status?.phase).toBe('CatchUp');
    expect(world.log).not.toContain('fence');
    const last = slow.decisions.at(-1)!;
    expect(last.condition?.message).toMatch(/bytes behind/);
    world.applyRate = 1 << 30;
    const done = operate(world, spec, slow.status);
    expect(done.status).toBeUndefined();
    expect([world.duplicates, world.lostWrites, world.earlyDeletes]).toEqual([0, 0, 0]);
  });

  it('does not publish the map until the slot confirmed the LSN after the fence', () => {
    const spec = { shards: 2, shardKey: 'k' };
    const w3 = new World(recordOf(1), 2);
    let status: ReshardingStatus | undefined;
    for (let i = 0; i < 50 && status?.phase !== 'Cutover'; i++)
      status = operate(w3, spec, status, { maxSteps: 1 }).status;
    w3.applyRate = 0;
    const stuck = operate(w3, spec, status, { maxSteps: 20 });
    expect(stuck.status?.phase).toBe('Cutover');
    expect(w3.log).toContain('fence');
    expect(w3.log).not.toContain('publishMap');
    expect(w3.log).not.toContain('dropSubscription');
    expect(stuck.decisions.at(-1)?.condition?.message).toMatch(/to confirm/);
  });

  it('does not delete moved rows before every app pod reads the new map', () => {
    const world = new World(recordOf(1), 2);
    const spec = { shards: 2, shardKey: 'k' };
    const run = operate(world, spec, undefined, { ackAfterPublish: false, maxSteps: 60 });
    expect(run.status?.phase).toBe('Cleanup');
    expect(world.log).not.toContain('deleteMovedRows');
    expect(run.decisions.at(-1)?.condition?.message).toMatch(/read shard map v2 \(they read v1\)/);
    world.acknowledged = 2;
    expect(operate(world, spec, run.status).status).toBeUndefined();
    expect(world.earlyDeletes).toBe(0);
  });
});

describe('nextReshardStep: the fence waits until every pod can reach the new shard', () => {
  it("stays in CatchUp, fencing nothing, while some pod's map does not list a target yet", () => {
    const world = new World(recordOf(2), 3);
    world.targetsListed = false;
    const run = operate(world, spec3, undefined, { maxSteps: 30 });
    expect(run.status?.phase).toBe('CatchUp');
    expect(world.log).not.toContain('fence');
    expect(run.decisions.at(-1)?.condition?.message).toMatch(
      /lists shard\(s\) 2 \(the kubelet's refresh\)/,
    );
    world.targetsListed = true;
    expect(operate(world, spec3, run.status).status).toBeUndefined();
    expect(world.log).toContain('fence');
  });
});

describe('nextReshardStep: slots left on standbys', () => {
  it("drops the moves' slots a switched-over member kept as its own before the move ends", () => {
    const world = new World(recordOf(1), 2);
    world.straySlots.set(0, 1); // the source's old primary, a standby now, kept its copy
    const run = operate(world, { shards: 2, shardKey: 'k' }, undefined);
    expect(run.status).toBeUndefined();
    expect(world.log).toContain('dropStraySlots');
    expect(world.log.indexOf('dropStraySlots')).toBeGreaterThan(
      world.log.lastIndexOf('deleteMovedRows'),
    );
    expect(world.straySlots.get(0)).toBe(0);
    expect(
      run.decisions.some((d) =>
        /slots left on standbys of shard\(s\) 0, 1/.test(d.condition?.message ?? ''),
      ),
    ).toBe(true);
  });
});

describe('nextReshardStep: fewer shards', () => {
  it('plans moves out of the departing shards only, back to the spread of the count kept', () => {
    const d = nextReshardStep({ shards: 2, shardKey: 'k' }, undefined, recordOf(3), { moves: {} });
    expect(d.refused).toBeUndefined();
    expect(d.resharding?.phase).toBe('Prepare');
    expect(d.resharding?.ranges).toEqual(toRanges(assignBuckets(2)));
    expect(d.resharding?.moves.map((m) => [m.id, m.source, m.target])).toEqual([
      ['v4_s2_s0', 2, 0],
      ['v4_s2_s1', 2, 1],
    ]);
    expect(d.condition?.message).toMatch(/3 -> 2 shards: 2 move/);
  });

  it('grows 2 -> 3 and shrinks back 3 -> 2: the shards that take buckets back lose their old fences on them first', () => {
    const world = new World(recordOf(2), 3);
    expect(operate(world, spec3, undefined).status).toBeUndefined();
    // The grow left fences on shards 0 and 1 over the buckets shard 2 took.
    expect(world.fencedBuckets.get(0)?.size).toBeGreaterThan(0);
    expect(world.fencedBuckets.get(1)?.size).toBeGreaterThan(0);
    world.log = [];
    const run = operate(world, { shards: 2, shardKey: 'k' }, undefined);
    expect(run.status).toBeUndefined();
    expect(distinct(run.phases)).toEqual(RESHARD_PHASES);
    expect(world.map).toEqual({ version: 4, ranges: toRanges(assignBuckets(2)) });
    expect(world.log.filter((k) => k === 'copySchema')).toEqual([]); // the targets have tables
    expect(world.log.indexOf('liftTargetFences')).toBeGreaterThan(-1);
    expect(world.log.indexOf('publishMap')).toBeGreaterThan(
      world.log.lastIndexOf('liftTargetFences'),
    );
    expect([
      world.duplicates,
      world.lostWrites,
      world.earlyDeletes,
      world.staleReads,
      world.refusedForGood,
    ]).toEqual([0, 0, 0, 0, 0]);
    // Shards 0 and 1 fence nothing now; the departed shard 2 fences every bucket it held.
    expect(world.fencedBuckets.get(0)?.size).toBe(0);
    expect(world.fencedBuckets.get(1)?.size).toBe(0);
    expect(world.fencedBuckets.get(2)?.size).toBe(1024 - 2 * Math.floor(1024 / 3) - 1);
  });

  it('shrinking what was created with 3 shards: only the guards are lifted', () => {
    const world = new World(recordOf(3), 3);
    expect(operate(world, { shards: 2, shardKey: 'k' }, undefined).status).toBeUndefined();
    expect(world.log.filter((k) => k === 'guardTarget')).toHaveLength(2);
    expect(world.log.filter((k) => k === 'liftTargetFences')).toHaveLength(2);
    expect(world.refusedForGood).toBe(0);
    expect(world.map.ranges).toEqual(toRanges(assignBuckets(2)));
  });
});

describe('nextReshardStep: resumes after an operator restart, in every phase', () => {
  // The happy path's steps, each one a place to die: after the record was written and
  // before any of its actions ran, and after only the first of them.
  const reference = operate(new World(recordOf(2), 3), spec3, undefined);
  const steps = reference.decisions.length;

  it('the reference run has steps in every phase', () => {
    expect(new Set(reference.phases)).toEqual(
      new Set(['Prepare', 'SchemaCopy', 'InitialCopy', 'CatchUp', 'Cutover', 'Cleanup']),
    );
    expect(steps).toBeGreaterThan(10);
  });

  for (const partial of [0, 1])
    it(`finishes the same after a restart at any step (${partial} action(s) of it done)`, () => {
      const seen = new Set<ReshardPhase>();
      for (let crashAt = 0; crashAt < steps; crashAt++) {
        const world = new World(recordOf(2), 3);
        const before = operate(world, spec3, undefined, { crashAt, partial });
        if (before.status) seen.add(before.status.phase);
        // A new operator: only the record in status and the shards themselves.
        const after = operate(world, spec3, before.status);
        expect(after.status, `restart at step ${crashAt}`).toBeUndefined();
        expect(world.map, `restart at step ${crashAt}`).toEqual({
          version: 3,
          ranges: toRanges(assignBuckets(3)),
        });
        expect(
          [world.duplicates, world.lostWrites, world.earlyDeletes],
          `restart at step ${crashAt}`,
        ).toEqual([0, 0, 0]);
        for (const m of world.moves.values())
          expect([m.sourceRows, m.targetRows, m.subscription, m.publication]).toEqual([
            0,
            500,
            false,
            false,
          ]);
      }
      expect(seen).toEqual(
        new Set(['Prepare', 'SchemaCopy', 'InitialCopy', 'CatchUp', 'Cutover', 'Cleanup']),
      );
    });

  it('re-fences to learn an LSN when it died between the fence and recording its LSN', () => {
    const world = new World(recordOf(1), 2);
    const spec = { shards: 2, shardKey: 'k' };
    let status: ReshardingStatus | undefined;
    for (let i = 0; i < 50 && status?.phase !== 'Cutover'; i++)
      status = operate(world, spec, status, { maxSteps: 1 }).status;
    // The fence ran (crashAt keeps its LSN out of the record).
    const crashed = operate(world, spec, status, { crashAt: 0, partial: 1 });
    expect([...world.moves.values()].every((m) => m.fenced)).toBe(true);
    expect(crashed.status?.moves.every((m) => m.fenceLsn === undefined)).toBe(true);
    const next = nextReshardStep(spec, crashed.status, world.map, {
      moves: world.factsFor(crashed.status!),
      publishedMap: world.map,
    });
    expect(next.actions.map((a) => a.kind)).toEqual(['fence']);
    expect(operate(world, spec, crashed.status).status).toBeUndefined();
    expect(world.lostWrites).toBe(0);
  });
});

describe('nextReshardStep: abort and blocked moves', () => {
  for (const phase of ['Prepare', 'SchemaCopy', 'InitialCopy', 'CatchUp'] as const)
    it(`an abort in ${phase} undoes the copy and never touches the map`, () => {
      const world = new World(recordOf(2), 3);
      let status: ReshardingStatus | undefined;
      for (let i = 0; i < 60 && status?.phase !== phase; i++)
        status = operate(world, spec3, status, { maxSteps: 1 }).status;
      expect(status?.phase).toBe(phase);
      const run = operate(world, { ...spec3, abort: true }, status);
      expect(run.status).toBeUndefined();
      expect(run.phases).toContain('Aborting');
      expect(run.decisions.at(-1)?.condition?.reason).toBe('ReshardingAborted');
      expect(world.map).toEqual(recordOf(2));
      expect(world.log).not.toContain('publishMap');
      expect(world.log).not.toContain('fence');
      for (const m of world.moves.values())
        expect([m.sourceRows, m.targetRows, m.subscription, m.publication]).toEqual([
          500,
          0,
          false,
          false,
        ]);
    });

  it('an abort asked after the fence is too late: the move goes forward', () => {
    const world = new World(recordOf(1), 2);
    const spec = { shards: 2, shardKey: 'k' };
    let status: ReshardingStatus | undefined;
    for (let i = 0; i < 60 && !world.log.includes('fence'); i++)
      status = operate(world, spec, status, { maxSteps: 1 }).status;
    const run = operate(world, { ...spec, abort: true }, status);
    expect(run.phases).not.toContain('Aborting');
    expect(run.status).toBeUndefined();
    expect(world.map.version).toBe(2);
    expect([world.duplicates, world.lostWrites, world.earlyDeletes]).toEqual([0, 0, 0]);
  });

  it('a target holding other tables blocks the move; nothing is deleted or copied', () => {
    const world = new World(recordOf(1), 2);
    world.tables.set(1, ['public.leftover']);
    const run = operate(world, { shards: 2, shardKey: 'k' }, undefined, { maxSteps: 10 });
    expect(run.status?.phase).toBe('SchemaCopy');
    const last = run.decisions.at(-1)!;
    expect(last.condition?.reason).toBe('ReshardingBlocked');
    expect(last.condition?.message).toMatch(/public\.leftover/);
    expect(last.actions).toEqual([]);
    expect(world.tables.get(1)).toEqual(['public.leftover']);
    expect(world.log).not.toContain('copySchema');
  });

  it('a moved table with a sequence-filled column is refused at Prepare, naming it; nothing runs', () => {
    const world = new World(recordOf(2), 3);
    world.sequenced.set(1, ['public.visits.id (identity)', 'public.orders.no (nextval)']);
    const run = operate(world, spec3, undefined, { maxSteps: 10 });
    expect(run.status?.phase).toBe('Prepare');
    const last = run.decisions.at(-1)!;
    expect(last.condition?.reason).toBe('SequenceColumnsRefused');
    expect(last.condition?.message).toMatch(/public\.visits\.id \(identity\)/);
    expect(last.condition?.message).toMatch(/public\.orders\.no \(nextval\)/);
    expect(last.condition?.message).toMatch(/nothing was changed on any shard/);
    // Not even wal_level or the copy grant: the refusal comes before every action.
    expect(world.log).toEqual([]);
    // An abort clears the record with no action; the map never moved.
    const aborted = operate(world, { ...spec3, abort: true }, run.status, { maxSteps: 5 });
    expect(aborted.status).toBeUndefined();
    expect(
      aborted.decisions.find((d) => d.condition?.reason === 'ReshardingAborted'),
    ).toBeDefined();
    expect(world.log).toEqual([]);
    expect(world.map).toEqual(recordOf(2));
  });

  it('a refused move goes on once the columns are changed (no sequence left)', () => {
    const world = new World(recordOf(1), 2);
    const spec = { shards: 2, shardKey: 'k' };
    world.sequenced.set(0, ['public.visits.id (identity)']);
    const refused = operate(world, spec, undefined, { maxSteps: 4 });
    expect(refused.decisions.at(-1)?.condition?.reason).toBe('SequenceColumnsRefused');
    world.sequenced.set(0, []);
    const run = operate(world, spec, refused.status);
    expect(run.status).toBeUndefined();
    expect(world.map.version).toBe(2);
    expect([world.duplicates, world.lostWrites, world.earlyDeletes]).toEqual([0, 0, 0]);
  });

  it('a table without the shard key that holds rows is refused at Prepare, naming it; a shrink too', () => {
    for (const [from, to] of [
      [2, 3],
      [3, 2],
    ] as const) {
      const world = new World(recordOf(from), 3);
      world.unkeyed.set(from === 2 ? 1 : 2, ['public.countries']);
      const run = operate(world, { shards: to, shardKey: 'k' }, undefined, { maxSteps: 10 });
      expect(run.status?.phase).toBe('Prepare');
      const last = run.decisions.at(-1)!;
      expect(last.condition?.reason).toBe('ReferenceTablesRefused');
      expect(last.condition?.message).toMatch(/without the shard key k hold rows/);
      expect(last.condition?.message).toMatch(/public\.countries/);
      expect(world.log).toEqual([]);
      expect(world.map).toEqual(recordOf(from));
      // Emptied (or given the key), the move goes on by itself.
      world.unkeyed.clear();
      expect(operate(world, { shards: to, shardKey: 'k' }, run.status).status).toBeUndefined();
      expect(world.map.ranges).toEqual(toRanges(assignBuckets(to)));
    }
  });

  it('Prepare waits, with no action, until the sequence columns were probed', () => {
    const world = new World(recordOf(1), 2);
    const spec = { shards: 2, shardKey: 'k' };
    const started = operate(world, spec, undefined, { maxSteps: 1 }).status!;
    const moves = Object.fromEntries(
      Object.entries(world.factsFor(started)).map(([id, f]) => [
        id,
        { ...f, sequencedColumns: undefined },
      ]),
    );
    const d = nextReshardStep(spec, started, world.map, { moves, publishedMap: world.map });
    expect(d.actions).toEqual([]);
    expect(d.resharding).toBe(started);
    expect(d.condition?.message).toMatch(/checking .* for sequence columns/);
  });

  it('a subscription gone before it confirmed the fence blocks the cutover (no map switch)', () => {
    const world = new World(recordOf(1), 2);
    const spec = { shards: 2, shardKey: 'k' };
    let status: ReshardingStatus | undefined;
    for (let i = 0; i < 60 && !status?.moves.every((m) => m.fenceLsn); i++)
      status = operate(world, spec, status, { maxSteps: 1 }).status;
    world.applyRate = 0;
    for (const m of world.moves.values()) m.subscription = false; // dropped by hand
    const run = operate(world, spec, status, { maxSteps: 5 });
    expect(run.status?.phase).toBe('Cutover');
    expect(run.decisions.at(-1)?.condition?.reason).toBe('ReshardingBlocked');
    expect(world.log).not.toContain('publishMap');
  });

  it('waits with no action while a source or target has no primary', () => {
    const world = new World(recordOf(1), 2);
    const spec = { shards: 2, shardKey: 'k' };
    const started = operate(world, spec, undefined, { maxSteps: 1 }).status!;
    world.primaries.delete(1);
    const d = nextReshardStep(spec, started, world.map, {
      moves: world.factsFor(started),
      publishedMap: world.map,
    });
    expect(d.actions).toEqual([]);
    expect(d.resharding).toBe(started);
    expect(d.condition?.message).toMatch(/waiting for a primary/);
  });

  it('a count raised again during a move finishes the recorded move first', () => {
    const world = new World(recordOf(1), 4);
    const first = operate(world, { shards: 2, shardKey: 'k' }, undefined, { maxSteps: 8 });
    const run = operate(world, { shards: 4, shardKey: 'k' }, first.status, { maxSteps: 200 });
    // The 1 -> 2 move completes; the next reconcile plans 2 -> 4 from the new record.
    expect(world.map.version).toBeGreaterThanOrEqual(2);
    expect(
      run.decisions.find((d) => d.condition?.reason === 'ShardsReady')?.condition?.message,
    ).toMatch(/1 -> 2 shards done/);
  });
});
