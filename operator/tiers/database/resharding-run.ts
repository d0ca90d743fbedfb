// The one impure piece of a resharding: it reads the facts off the shards' primaries
// (resharding-sql.ts's probes), asks the pure state machine (resharding.ts) for the next
// step, writes the returned record through `persist` BEFORE anything runs, then runs the
// step's actions, each idempotent: an operator that dies anywhere repeats at most the last
// step, and a new runner built from the persisted record alone carries on. One step() is one
// reconcile. What it needs from the cluster comes in through ReshardEnv (a connection per
// shard primary, the schema copy, the map publisher), so the engine tests drive it against
// real Postgres and the operator against its pods.
import type { BucketRange } from '../../../sdk/src/contract/shard-map.ts';
import type { Assignment } from './shard-authority.ts';
import { nextReshardStep } from './resharding.ts';
import type {
  MoveFacts,
  MoveRecord,
  ReshardAction,
  ReshardDecision,
  ReshardFacts,
  ReshardOptions,
  ReshardSpec,
  ReshardingStatus,
} from './resharding.ts';
import {
  backPublicationExistsSql,
  backSubscriptionExistsSql,
  beforeSchemaRestoreSql,
  createBackPublicationSql,
  createBackSubscriptionSql,
  dropBackPublicationSql,
  dropBackSubscriptionSql,
  countInMoveSql,
  createPublicationSql,
  createSubscriptionSql,
  currentLsnSql,
  deleteMovedBatchSql,
  dropFenceTriggersSql,
  dropPublicationSql,
  dropSubscriptionSql,
  fenceFunctionSql,
  fenceSql,
  fencedTablesSql,
  fencesInMoveSql,
  guardSql,
  guardedSql,
  dropStraySlotsSql,
  straySlotsSql,
  liftFencesSql,
  grantCopySql,
  isPrimarySql,
  publicationExistsSql,
  schemaDumpArgs,
  sequencedColumnNames,
  sequencedColumnsSql,
  unkeyedTablesWithRowsSql,
  shardedTablesSql,
  slotStateSql,
  sourcePreparedSql,
  subscriptionExistsSql,
  tablesNotReadySql,
  userTablesSql,
  walLevelSql,
} from './resharding-sql.ts';
import type { MoveSql, MovedTable } from './resharding-sql.ts';

export interface SqlResult<R> {
  readonly rows: R[];
  readonly rowCount: number | null;
}

/** A connection to one shard's primary, in the app database, as a superuser. */
export interface ShardSql {
  query<R extends object = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
  ): Promise<SqlResult<R>>;
  /**
   * Statements in order on one session (a BEGIN ... COMMIT script), each one's result; a
   * failure leaves no transaction open behind it.
   */
  script(statements: readonly string[]): Promise<SqlResult<Record<string, unknown>>[]>;
}

/** pg_dump of the source's app database restored on the empty target, in one transaction. */
export interface SchemaCopyRequest {
  readonly source: number;
  readonly target: number;
  /** pg_dump's arguments (the server comes from the copier: PGHOST, PGPORT, ...). */
  readonly dumpArgs: readonly string[];
  /** Run on the target before and after the dump's statements, in the same transaction. */
  readonly before: readonly string[];
  readonly after: readonly string[];
}

/** The shard map as the cutover and the cleanup need it. */
export interface MapView {
  /** The bucket assignment on record (status.shardMap, the StatefulSets' annotations). */
  readonly record: Assignment;
  /** The live map apps read (the ConfigMap); undefined when there is none. */
  readonly published?: Assignment;
  /** Every app pod reads a map of at least this version. */
  readonly acknowledgedVersion?: number;
  /** Every app pod's map lists every target of the recorded move (undefined: not known). */
  readonly targetsListed?: boolean;
}

export interface ReshardEnv {
  /** The app database's name on every shard. */
  readonly database: string;
  /** The role the target's subscription connects as (the copy grant goes to it). */
  readonly replicationRole: string;
  /** The connection to shard `index`'s primary (a failing one reads as "no primary"). */
  shard(index: number): ShardSql;
  /**
   * The connection string a subscription uses to reach shard `source`'s primary (the target's
   * forward subscription, and the source's way back to the target).
   */
  sourceConninfo(source: number): string;
  copySchema(request: SchemaCopyRequest): Promise<void>;
  maps(): Promise<MapView>;
  /** Writes the new assignment where apps read it and where it is recorded. */
  publishMap(map: Assignment): Promise<void>;
  /** Writes status.resharding (undefined: the move is over, the record goes). */
  persist(record: ReshardingStatus | undefined): Promise<void>;
  /**
   * A connection to each member of shard `index` (its standbys too), for what a standby holds
   * on its own (straySlotsSql); without it only the primary is looked at.
   */
  members?(index: number): readonly ShardSql[];
  /** Sets wal_level=logical on a shard (a restart); without it, that action fails, saying so. */
  setWalLevelLogical?(shard: number): Promise<void>;
}

export interface RunOptions extends ReshardOptions {
  /** lock_timeout of the fence's transaction (a timed-out fence is retried next step). */
  readonly fenceLockTimeoutMs?: number;
  /** Rows deleted per statement by the cleanup and the abort. */
  readonly deleteBatch?: number;
  /** Batches per table per step: a long cleanup spreads over reconciles. */
  readonly deleteBatchesPerStep?: number;
}

export interface StepResult {
  readonly decision: ReshardDecision;
  /** The record after this step (what was last persisted). */
  readonly resharding: ReshardingStatus | undefined;
  /** The actions run, in order. */
  readonly ran: readonly ReshardAction[];
}

/** An action that failed: the record was persisted, the step's later actions did not run. */
export class ReshardActionError extends Error {
  constructor(
    readonly action: ReshardAction,
    cause: unknown,
  ) {
    super(`resharding action ${actionText(action)} failed: ${(cause as Error)?.message ?? cause}`, {
      cause,
    });
    this.name = 'ReshardActionError';
  }
}

/** An action in a log line or an error. */
export const actionText = (a: ReshardAction): string =>
  a.kind === 'publishMap'
    ? `publishMap v${a.version}`
    : a.kind === 'copySchema'
      ? `copySchema ${a.source} -> ${a.target}`
      : 'move' in a
        ? `${a.kind} ${a.move} on shard ${a.shard}`
        : `${a.kind} on shard ${a.shard}`;

/** The move's SQL handle: its id, its ranges, the tables that move. */
export const moveSqlOf = (m: MoveRecord, tables: readonly MovedTable[]): MoveSql => ({
  id: m.id,
  ranges: m.ranges,
  tables,
});

/** "schema.name" of userTablesSql's rows, as the state machine compares them. */
export const tableNames = (rows: readonly { schema: string; name: string }[]): string[] =>
  rows.map((r) => `${r.schema}.${r.name}`);

/** A record with one move's fence LSN set (the fence action's result). */
export function withFenceLsn(
  record: ReshardingStatus,
  move: string,
  lsn: string,
): ReshardingStatus {
  return {
    ...record,
    moves: record.moves.map((m) => (m.id === move ? { ...m, fenceLsn: lsn } : m)),
  };
}

/** Records are plain JSON: equal text, nothing to write. */
export const sameRecord = (
  a: ReshardingStatus | undefined,
  b: ReshardingStatus | undefined,
): boolean => JSON.stringify(a) === JSON.stringify(b);

const count = (rows: readonly Record<string, unknown>[]): number => Number(rows[0]?.['n'] ?? 0);

/** The shard-key column a recorded move needs. */
function shardKeyOf(spec: ReshardSpec): string {
  if (!spec.shardKey)
    throw new Error('spec.database.shardKey: is required while a move is recorded');
  return spec.shardKey;
}

export class ReshardRunner {
  #current: ReshardingStatus | undefined;

  /** `persisted`: status.resharding as last written (undefined: no move recorded). */
  constructor(
    private readonly env: ReshardEnv,
    persisted: ReshardingStatus | undefined,
    private readonly options: RunOptions = {},
  ) {
    this.#current = persisted;
  }

  get current(): ReshardingStatus | undefined {
    return this.#current;
  }

  /** One reconcile: facts, decision, the record persisted, then the actions. */
  async step(spec: ReshardSpec): Promise<StepResult> {
    const maps = await this.env.maps();
    const facts: ReshardFacts = {
      moves: this.#current ? await this.#facts(spec, this.#current) : {},
      ...(maps.published ? { publishedMap: maps.published } : {}),
      ...(maps.acknowledgedVersion === undefined
        ? {}
        : { acknowledgedVersion: maps.acknowledgedVersion }),
      ...(maps.targetsListed === undefined ? {} : { targetsListed: maps.targetsListed }),
    };
    const decision = nextReshardStep(spec, this.#current, maps.record, facts, this.options);
    await this.#persist(decision.resharding);
    const ran: ReshardAction[] = [];
    for (const action of decision.actions) {
      const record = this.#current;
      try {
        const lsn = await this.#act(spec, action, record);
        if (action.kind === 'fence' && record && lsn)
          await this.#persist(withFenceLsn(record, action.move, lsn));
      } catch (e) {
        throw new ReshardActionError(action, e);
      }
      ran.push(action);
    }
    return { decision, resharding: this.#current, ran };
  }

  async #persist(record: ReshardingStatus | undefined): Promise<void> {
    if (sameRecord(record, this.#current)) return;
    await this.env.persist(record);
    this.#current = record;
  }

  /** The tables that move with the buckets: those of the source holding the shard key. */
  async #movedTables(spec: ReshardSpec, shard: number): Promise<MovedTable[]> {
    const { rows } = await this.env
      .shard(shard)
      .query<MovedTable>(shardedTablesSql(shardKeyOf(spec)));
    return rows;
  }

  async #facts(spec: ReshardSpec, record: ReshardingStatus): Promise<Record<string, MoveFacts>> {
    const out: Record<string, MoveFacts> = {};
    for (const m of record.moves) out[m.id] = await this.#moveFacts(spec, record, m);
    return out;
  }

  async #moveFacts(spec: ReshardSpec, record: ReshardingStatus, m: MoveRecord): Promise<MoveFacts> {
    const src = this.env.shard(m.source);
    const dst = this.env.shard(m.target);
    const key = shardKeyOf(spec);
    // Few round trips: the operator's SQL goes through pods/exec (shard-sql-exec.ts), where
    // each call is an exec. The target's probes need only the move's id; the source's
    // fence probe needs its tables first.
    type Rows = Record<string, unknown>[];
    const probe = async (sql: ShardSql, statements: string[]): Promise<Rows[] | undefined> => {
      try {
        return (await sql.script(statements)).map((r) => r.rows as Rows);
      } catch {
        return undefined; // no answer is no primary: the machine waits
      }
    };
    const byId = moveSqlOf(m, []);
    const [first, second] = await Promise.all([
      probe(src, [isPrimarySql(), shardedTablesSql(key)]),
      probe(dst, [
        isPrimarySql(),
        userTablesSql(),
        subscriptionExistsSql(byId),
        backPublicationExistsSql(byId),
        tablesNotReadySql(byId),
        fencesInMoveSql(byId),
        guardedSql(byId),
      ]),
    ]);
    const primary = (rows: Rows[] | undefined) => rows?.[0]?.[0]?.['is_primary'] === true;
    const sourcePrimary = primary(first);
    const targetPrimary = primary(second);
    const none: MoveFacts = {
      sourcePrimary,
      targetPrimary,
      sourcePrepared: false,
      sourceTables: [],
      targetTables: [],
      publication: false,
      subscription: false,
      fenced: false,
    };
    // Without both primaries the machine waits whatever the rest says.
    if (!sourcePrimary || !targetPrimary || !first || !second) return none;
    const tables = (first[1] ?? []) as unknown as MovedTable[];
    const sql = moveSqlOf(m, tables);
    const [wal, prep, srcTables, pub, slots, fencedRows, backSub] = (
      await src.script([
        walLevelSql(),
        sourcePreparedSql(this.env.replicationRole),
        userTablesSql(),
        publicationExistsSql(sql),
        slotStateSql(sql),
        fencedTablesSql(sql),
        backSubscriptionExistsSql(sql),
      ])
    ).map((r) => r.rows as Rows);
    const [, dstTables, sub, backPub, notReady, targetFences, guarded] = second;
    const walLevel = wal?.[0]?.['wal_level'] as string | undefined;
    const prepared = prep?.[0]?.['prepared'] === true;
    const sourceTables = tableNames((srcTables ?? []) as { schema: string; name: string }[]);
    const targetTables = tableNames((dstTables ?? []) as { schema: string; name: string }[]);
    const publication = count(pub ?? []) > 0;
    const subscription = count(sub ?? []) > 0;
    const slot = slots?.[0] as { lag: string | null; confirmed: string | null } | undefined;
    const fenced = tables.length > 0 && count(fencedRows ?? []) === tables.length;
    const backPublication = count(backPub ?? []) > 0;
    const backSubscription = count(backSub ?? []) > 0;
    const facts: MoveFacts = {
      ...none,
      ...(walLevel === undefined ? {} : { sourceWalLevel: walLevel }),
      sourcePrepared: prepared,
      sourceTables,
      targetTables,
      publication,
      subscription,
      fenced,
      backPublication,
      backSubscription,
      targetFenced: count(targetFences ?? []) > 0,
      targetGuarded: count(guarded ?? []) > 0,
      ...(subscription ? { tablesNotReady: count(notReady ?? []) } : {}),
      ...(slot?.lag != null ? { lagBytes: Number(slot.lag) } : {}),
      ...(slot?.confirmed ? { confirmedLsn: slot.confirmed } : {}),
    };
    // The sequence check gates Prepare only (resharding.ts: why such a move is refused).
    if (record.phase === 'Prepare') {
      // One exec for both refusals' probes.
      const [sequenced, unkeyed] = await src.script([
        sequencedColumnsSql(key),
        unkeyedTablesWithRowsSql(key),
      ]);
      return {
        ...facts,
        sequencedColumns: sequencedColumnNames(
          (sequenced?.rows ?? []) as {
            schema: string;
            name: string;
            column: string;
            kind: string;
          }[],
        ),
        unkeyedTables: ((unkeyed?.rows ?? []) as { name: string }[]).map((r) => r.name),
      };
    }
    // Row counts scan whole tables: only the phases that decide on them pay for them.
    if (record.phase === 'Cleanup') {
      const sourceRowsInMove = await this.#rowsInMove(src, m, tables);
      // The members are looked at once the rest of the clean-up is done.
      const last = sourceRowsInMove === 0 && !publication && !facts.backSubscription;
      return {
        ...facts,
        sourceRowsInMove,
        ...(last ? { straySlots: await this.#straySlots([m.source, m.target]) } : {}),
      };
    }
    if (record.phase === 'Aborting')
      return {
        ...facts,
        targetRowsInMove: await this.#rowsInMove(dst, m, await this.#movedTables(spec, m.target)),
      };
    return facts;
  }

  /** The moves' slots the shards' standbys hold as their own (a member that does not answer: 0). */
  async #straySlots(shards: readonly number[]): Promise<number> {
    let n = 0;
    for (const shard of shards)
      for (const member of this.env.members?.(shard) ?? [])
        n += await member.query(straySlotsSql()).then(
          (r) => count(r.rows),
          () => 0,
        );
    return n;
  }

  async #rowsInMove(sql: ShardSql, m: MoveRecord, tables: readonly MovedTable[]): Promise<number> {
    let n = 0;
    for (const t of tables)
      n += count((await sql.query(countInMoveSql(moveSqlOf(m, tables), t))).rows);
    return n;
  }

  /** Runs one action, checking first where a repeat would fail; the fence returns its LSN. */
  async #act(
    spec: ReshardSpec,
    a: ReshardAction,
    record: ReshardingStatus | undefined,
  ): Promise<string | undefined> {
    const move = (id: string): MoveRecord => {
      const m = record?.moves.find((x) => x.id === id);
      if (!m) throw new Error(`no recorded move ${id}`);
      return m;
    };
    switch (a.kind) {
      case 'setWalLevelLogical':
        if (!this.env.setWalLevelLogical)
          throw new Error(`shard ${a.shard} needs wal_level=logical and this runner cannot set it`);
        await this.env.setWalLevelLogical(a.shard);
        return undefined;

      case 'prepareSource': {
        const src = this.env.shard(a.shard);
        await src.query(grantCopySql(this.env.replicationRole));
        await src.query(fenceFunctionSql());
        return undefined;
      }

      case 'copySchema': {
        // Another step may have restored it already: never restore over tables.
        const { rows } = await this.env.shard(a.target).query(userTablesSql());
        if (rows.length > 0) return undefined;
        await this.env.copySchema({
          source: a.source,
          target: a.target,
          dumpArgs: schemaDumpArgs(this.env.database),
          before: beforeSchemaRestoreSql(),
          after: [dropFenceTriggersSql()],
        });
        return undefined;
      }

      case 'createPublication': {
        const src = this.env.shard(a.shard);
        const tables = await this.#movedTables(spec, a.shard);
        if (tables.length === 0)
          throw new Error(
            `spec.database.shardKey: no table of shard ${a.shard}'s database has a column ${spec.shardKey}: nothing to move`,
          );
        const sql = moveSqlOf(move(a.move), tables);
        if (count((await src.query(publicationExistsSql(sql))).rows) === 0)
          await src.query(createPublicationSql(sql));
        return undefined;
      }

      case 'createSubscription': {
        const m = move(a.move);
        const dst = this.env.shard(a.shard);
        const sql = moveSqlOf(m, await this.#movedTables(spec, a.source));
        if (count((await dst.query(subscriptionExistsSql(sql))).rows) > 0) return undefined;
        // A second initial copy over rows already there would double them (or fail on a
        // key): refuse, and let an abort clear the target first.
        const there = await this.#rowsInMove(dst, m, await this.#movedTables(spec, a.shard));
        if (there > 0)
          throw new Error(
            `shard ${a.shard} already holds ${there} row(s) of ${m.id}'s buckets; abort the move to clear them`,
          );
        await dst.query(createSubscriptionSql(sql, this.env.sourceConninfo(a.source)));
        return undefined;
      }

      case 'guardTarget': {
        // The target's tables are the source's (the schema copy): its own list of them.
        const dst = this.env.shard(a.shard);
        const sql = moveSqlOf(move(a.move), await this.#movedTables(spec, a.shard));
        await dst.script([fenceFunctionSql(), ...guardSql(sql, this.options.fenceLockTimeoutMs)]);
        return undefined;
      }

      case 'fence': {
        const src = this.env.shard(a.shard);
        const m = move(a.move);
        const sql = moveSqlOf(m, await this.#movedTables(spec, a.shard));
        // The fence names the next owner: the SDK tries it there once it is open.
        await src.script(fenceSql(sql, this.options.fenceLockTimeoutMs, m.target));
        const lsn = (await src.query<{ lsn: string }>(currentLsnSql())).rows[0]?.lsn;
        if (!lsn) throw new Error(`shard ${a.shard} returned no WAL position after the fence`);
        return lsn;
      }

      case 'dropSubscription': {
        const sql = moveSqlOf(move(a.move), []);
        await this.env.shard(a.shard).query(dropSubscriptionSql(sql));
        return undefined;
      }

      case 'liftTargetFences': {
        const sql = moveSqlOf(move(a.move), []);
        await this.env.shard(a.shard).script(liftFencesSql(sql, this.options.fenceLockTimeoutMs));
        return undefined;
      }

      case 'dropStraySlots':
        for (const member of this.env.members?.(a.shard) ?? [])
          await member.query(dropStraySlotsSql()).catch(() => undefined); // next step looks again
        return undefined;

      case 'publishMap':
        await this.env.publishMap({ version: a.version, ranges: a.ranges as BucketRange[] });
        return undefined;

      case 'dropPublication':
        await this.env.shard(a.shard).query(dropPublicationSql(moveSqlOf(move(a.move), [])));
        return undefined;

      case 'createBackPublication': {
        const dst = this.env.shard(a.shard);
        const sql = moveSqlOf(move(a.move), await this.#movedTables(spec, a.shard));
        if (count((await dst.query(backPublicationExistsSql(sql))).rows) === 0)
          await dst.query(createBackPublicationSql(sql));
        return undefined;
      }

      case 'createBackSubscription': {
        const src = this.env.shard(a.shard);
        const sql = moveSqlOf(move(a.move), []);
        if (count((await src.query(backSubscriptionExistsSql(sql))).rows) === 0)
          await src.query(createBackSubscriptionSql(sql, this.env.sourceConninfo(a.target)));
        return undefined;
      }

      case 'dropBackSubscription':
        await this.env.shard(a.shard).query(dropBackSubscriptionSql(moveSqlOf(move(a.move), [])));
        return undefined;

      case 'dropBackPublication':
        await this.env.shard(a.shard).query(dropBackPublicationSql(moveSqlOf(move(a.move), [])));
        return undefined;

      case 'deleteMovedRows':
      case 'deleteCopiedRows': {
        const sql = this.env.shard(a.shard);
        const m = move(a.move);
        await this.#deleteInMove(sql, m, await this.#movedTables(spec, a.shard));
        return undefined;
      }
    }
  }

  /** Batches of the move's rows deleted, referencing tables (listed later) first. */
  async #deleteInMove(sql: ShardSql, m: MoveRecord, tables: readonly MovedTable[]): Promise<void> {
    const batch = Math.max(1, this.options.deleteBatch ?? 5000);
    const perStep = Math.max(1, this.options.deleteBatchesPerStep ?? 20);
    const move = moveSqlOf(m, tables);
    for (const t of [...tables].reverse())
      for (let i = 0; i < perStep; i++) {
        const statements = deleteMovedBatchSql(move, t, batch);
        const results = await sql.script(statements);
        const deleted = results[statements.findIndex((s) => s.startsWith('DELETE'))]?.rowCount ?? 0;
        if (deleted < batch) break;
      }
  }
}
