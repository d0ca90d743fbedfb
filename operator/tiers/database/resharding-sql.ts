// The SQL of a bucket move (resharding.ts decides when each runs): statements as pure
// functions of the move, so the operator and the engine test (test/engines/
// resharding-move.test.ts) run the very same text.
//
// Why the row filter does not call scalable_bucket(): Postgres 17 refuses user-defined
// functions, STABLE built-ins (convert_to, textsend) and I/O casts (::text, ::bytea) in a
// publication's WHERE clause ("invalid publication WHERE expression"), because pgoutput
// evaluates it under a historic catalog snapshot. So the filter spells the bucket with
// IMMUTABLE built-ins only: the key's text (the column itself, or textin(<type>out(col))),
// its UTF-8 bytes through decode(..., 'escape') with every backslash doubled (the database
// is UTF8, so these are the bytes convert_to gives), sha256, and the digest's first four
// bytes as an unsigned number modulo the bucket count: hash.ts's function, byte for byte.
// The engine test compares it with scalable_bucket() key for key.
import type { BucketMove } from '../../../sdk/src/contract/shard-map.ts';
import { FENCE_SQLSTATE } from '../../../sdk/src/contract/shard-map.ts';
import { BUCKETS } from '../../../sdk/src/contract/hash.ts';

/** Column types a shard key may have, each with its IMMUTABLE path to the key's text. */
export const KEY_TEXT: Readonly<Record<string, (col: string) => string>> = {
  text: (c) => c,
  'character varying': (c) => c,
  bigint: (c) => `textin(int8out(${c}))`,
  integer: (c) => `textin(int4out(${c}))`,
  smallint: (c) => `textin(int2out(${c}))`,
  uuid: (c) => `textin(uuid_out(${c}))`,
};

/** A table whose rows move with their buckets: schema-qualified name and key column. */
export interface MovedTable {
  readonly schema: string;
  readonly name: string;
  readonly keyColumn: string;
  /** format_type() of the key column: one of KEY_TEXT's keys. */
  readonly keyType: string;
}

/** One source -> target move: the buckets [from, to) of each range, and the tables. */
export interface MoveSql {
  /** Names the publication, subscription, slot and fence: [a-z0-9_], at most 40 chars. */
  readonly id: string;
  readonly ranges: readonly Pick<BucketMove, 'from' | 'to'>[];
  readonly tables: readonly MovedTable[];
  readonly buckets?: number;
}

export const ident = (name: string): string => `"${name.replaceAll('"', '""')}"`;
export const literal = (text: string): string => `'${text.replaceAll("'", "''")}'`;
const tableName = (t: MovedTable): string => `${ident(t.schema)}.${ident(t.name)}`;

function checked(move: MoveSql): MoveSql {
  if (!/^[a-z0-9_]{1,40}$/.test(move.id)) throw new Error(`bad move id ${move.id}`);
  const buckets = move.buckets ?? BUCKETS;
  if (move.ranges.length === 0) throw new Error(`move ${move.id} has no bucket range`);
  for (const r of move.ranges)
    if (!Number.isInteger(r.from) || !Number.isInteger(r.to) || r.from < 0 || r.to <= r.from)
      throw new Error(`move ${move.id}: bad bucket range ${r.from}-${r.to}`);
    else if (r.to > buckets) throw new Error(`move ${move.id}: range ${r.from}-${r.to} > buckets`);
  for (const t of move.tables)
    if (!KEY_TEXT[t.keyType])
      throw new Error(
        `${t.schema}.${t.name}.${t.keyColumn}: a shard key of type ${t.keyType} cannot be moved (one of ${Object.keys(KEY_TEXT).join(', ')})`,
      );
  return move;
}

/** The bucket of `keyText` (a text expression) with IMMUTABLE built-ins only. */
export function bucketExpression(keyText: string, buckets: number = BUCKETS): string {
  const digest = `sha256(decode(replace(${keyText}, '\\', '\\\\'), 'escape'))`;
  const byte = (i: number) => `get_byte(${digest}, ${i})`;
  // u32 mod b needs only the low 16 bits when b divides 65536 (1024 does): two digests,
  // not four, per row the filter sees.
  const low16 = `(${byte(2)} * 256 + ${byte(3)})`;
  const u32 = `(${byte(0)}::bigint * 16777216 + ${byte(1)} * 65536 + ${low16})`;
  return 65536 % buckets === 0 ? `(${low16} % ${buckets})` : `((${u32} % ${buckets})::integer)`;
}

/** The ranges as one int4multirange literal expression. */
const rangesSql = (move: MoveSql): string =>
  `int4multirange(${move.ranges.map((r) => `int4range(${r.from}, ${r.to})`).join(', ')})`;

/** The row filter of one table: its key's bucket is among the move's ranges. */
export function rowFilterSql(move: MoveSql, table: MovedTable): string {
  const keyText = KEY_TEXT[table.keyType]?.(ident(table.keyColumn)) ?? '';
  return `${rangesSql(move)} @> ${bucketExpression(keyText, move.buckets)}`;
}

/** The same predicate for ordinary SQL (cleanup, counts): through scalable_bucket(). */
export function inMoveSql(move: MoveSql, table: MovedTable): string {
  return `${rangesSql(move)} @> scalable_bucket(${ident(table.keyColumn)}::text)`;
}

export const publicationName = (move: MoveSql): string => `scalable_move_${move.id}`;
export const subscriptionName = publicationName;
/** The subscription's slot on the source (CREATE SUBSCRIPTION names it after itself). */
export const slotName = publicationName;
export const fenceTriggerName = (move: MoveSql): string => `scalable_fence_${move.id}`;
/** Writes refused by a fence carry this SQLSTATE (the SDK's contract: it retries them). */
export { FENCE_SQLSTATE };

// ---- on the source primary (the app database, as the superuser over the pod's socket) ----

/**
 * Lets the replication role copy the moving rows: logical replication's initial COPY reads
 * as the connecting role. It already reads every byte through physical replication, so
 * pg_read_all_data grants it nothing new.
 */
export const grantCopySql = (replicationRole: string): string =>
  `GRANT pg_read_all_data TO ${ident(replicationRole)}`;

/** Whether the publication exists (resume: create it once). */
export const publicationExistsSql = (move: MoveSql): string =>
  `SELECT count(*)::int AS n FROM pg_publication WHERE pubname = ${literal(publicationName(checked(move)))}`;

export function createPublicationSql(move: MoveSql): string {
  const m = checked(move);
  const tables = m.tables.map((t) => `${tableName(t)} WHERE (${rowFilterSql(m, t)})`);
  return `CREATE PUBLICATION ${ident(publicationName(m))} FOR TABLE ${tables.join(', ')} WITH (publish = 'insert, update, delete, truncate')`;
}

/**
 * The way back, from the cutover to the clean-up: the new shard publishes the moved buckets'
 * changes and the old shard subscribes (no initial copy: it has every row up to the fence).
 * Pods flip to the new map one by one (each when its kubelet refreshes the ConfigMap); one
 * still on the old map reads a moved key on the old shard, and finds there what pods on the
 * new map wrote since. The old shard's fence does not stop it: a subscription applies with
 * session_replication_role = replica, where ordinary triggers do not fire. No truncate: a
 * TRUNCATE on the new shard would empty the old shard's whole table.
 */
export const backName = (move: MoveSql): string => `scalable_back_${move.id}`;

export function createBackPublicationSql(move: MoveSql): string {
  const m = checked(move);
  const tables = m.tables.map((t) => `${tableName(t)} WHERE (${rowFilterSql(m, t)})`);
  return `CREATE PUBLICATION ${ident(backName(m))} FOR TABLE ${tables.join(', ')} WITH (publish = 'insert, update, delete')`;
}

export const backPublicationExistsSql = (move: MoveSql): string =>
  `SELECT count(*)::int AS n FROM pg_publication WHERE pubname = ${literal(backName(checked(move)))}`;

/** On the old shard; `conninfo` reaches the new shard's primary. origin none: no echo. */
export function createBackSubscriptionSql(move: MoveSql, conninfo: string): string {
  const m = checked(move);
  return `CREATE SUBSCRIPTION ${ident(backName(m))} CONNECTION ${literal(conninfo)} PUBLICATION ${ident(backName(m))} WITH (copy_data = false, failover = true, origin = none, slot_name = ${literal(backName(m))})`;
}

export const backSubscriptionExistsSql = (move: MoveSql): string =>
  `SELECT count(*)::int AS n FROM pg_subscription WHERE subname = ${literal(backName(checked(move)))}`;

/** Also drops its slot on the new shard (while that answers). */
export const dropBackSubscriptionSql = (move: MoveSql): string =>
  `DROP SUBSCRIPTION IF EXISTS ${ident(backName(checked(move)))}`;

export const dropBackPublicationSql = (move: MoveSql): string =>
  `DROP PUBLICATION IF EXISTS ${ident(backName(checked(move)))}`;

/**
 * The fence's function: refuses a row whose old or new key falls in a fenced range. One
 * function for every move (ranges come from the trigger's arguments as "from-to" pairs);
 * the cleanup's own deletes pass with `scalable.fence_bypass` set in their transaction.
 */
export const fenceFunctionSql = (): string =>
  [
    'CREATE OR REPLACE FUNCTION scalable_fence() RETURNS trigger LANGUAGE plpgsql AS $fn$',
    'DECLARE',
    '  col text := TG_ARGV[0];',
    '  fenced int4multirange := TG_ARGV[1]::int4multirange;',
    '  k text;',
    // The next owner, when the fence names it (a third argument): the SDK may try it there.
    "  d text := CASE WHEN TG_NARGS > 2 THEN 'moving to shard ' || TG_ARGV[2] ELSE '' END;",
    'BEGIN',
    "  IF current_setting('scalable.fence_bypass', true) = 'on' THEN",
    "    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;",
    '  END IF;',
    "  IF TG_OP IN ('UPDATE', 'DELETE') THEN",
    "    EXECUTE format('SELECT ($1).%I::text', col) INTO k USING OLD;",
    '    IF fenced @> scalable_bucket(k) THEN',
    "      RAISE EXCEPTION 'bucket % of %.% is moving to another shard: retry with the next shard map', scalable_bucket(k), TG_TABLE_SCHEMA, TG_TABLE_NAME",
    `        USING ERRCODE = '${FENCE_SQLSTATE}', DETAIL = d;`,
    '    END IF;',
    '  END IF;',
    "  IF TG_OP IN ('INSERT', 'UPDATE') THEN",
    "    EXECUTE format('SELECT ($1).%I::text', col) INTO k USING NEW;",
    '    IF fenced @> scalable_bucket(k) THEN',
    "      RAISE EXCEPTION 'bucket % of %.% is moving to another shard: retry with the next shard map', scalable_bucket(k), TG_TABLE_SCHEMA, TG_TABLE_NAME",
    `        USING ERRCODE = '${FENCE_SQLSTATE}', DETAIL = d;`,
    '    END IF;',
    '    RETURN NEW;',
    '  END IF;',
    '  RETURN OLD;',
    'END',
    '$fn$',
  ].join('\n');

/**
 * The write fence at cutover, one transaction: CREATE TRIGGER waits for every transaction
 * writing the table to end (its lock conflicts with theirs), so once it commits every write
 * to a fenced bucket either committed before it (and is in the WAL before the LSN the fence
 * returns) or is refused. `lock_timeout` bounds the wait; a timed-out fence is retried.
 * The trigger stays after the move: a writer with an old map cannot write there again.
 */
export function fenceSql(move: MoveSql, lockTimeoutMs = 2000, target?: number): string[] {
  return fenceTriggersOf(move, fenceTriggerName(checked(move)), lockTimeoutMs, target);
}

/**
 * The target's guard, from before its initial copy until the cutover lifts it (liftFencesSql):
 * the same fence, naming no next owner, so an app write the source's fence redirected there
 * is refused until the target holds every row of its buckets. The subscription's apply and
 * initial copy run with session_replication_role = replica, where it does not fire.
 */
export const guardTriggerName = (move: MoveSql): string => `${fenceTriggerName(move)}_in`;

export const guardSql = (move: MoveSql, lockTimeoutMs = 2000): string[] =>
  fenceTriggersOf(move, guardTriggerName(checked(move)), lockTimeoutMs);

/** Whether the target carries the move's guard (created on all tables in one transaction). */
export const guardedSql = (move: MoveSql): string =>
  `SELECT count(*)::int AS n FROM pg_trigger WHERE tgname = ${literal(guardTriggerName(checked(move)))}`;

function fenceTriggersOf(
  move: MoveSql,
  name: string,
  lockTimeoutMs: number,
  target?: number,
): string[] {
  const m = checked(move);
  const fenced = literal(`{${m.ranges.map((r) => `[${r.from},${r.to})`).join(',')}}`);
  const next = target === undefined ? '' : `, ${literal(String(Math.floor(target)))}`;
  return [
    'BEGIN',
    `SET LOCAL lock_timeout = ${Math.max(1, Math.floor(lockTimeoutMs))}`,
    ...m.tables.flatMap((t) => [
      `DROP TRIGGER IF EXISTS ${ident(name)} ON ${tableName(t)}`,
      `CREATE TRIGGER ${ident(name)} BEFORE INSERT OR UPDATE OR DELETE ON ${tableName(t)} FOR EACH ROW EXECUTE FUNCTION scalable_fence(${literal(t.keyColumn)}, ${fenced}${next})`,
    ]),
    'COMMIT',
  ];
}

/**
 * Fence triggers on a shard that fence any bucket of the move (the move's target, from an
 * earlier move out of it: a shard that gave buckets away and now takes them back, as when
 * `shards` shrinks after it grew). Each row: the trigger, its table, its key column and its
 * fenced ranges, read back from the trigger's arguments (tgargs, NUL-separated).
 */
function fencesOverlappingSql(move: MoveSql): string {
  const arg = (i: number) => `split_part(encode(t.tgargs, 'escape'), '\\000', ${i})`;
  return `SELECT t.tgname::text AS tgname, n.nspname::text AS nspname, c.relname::text AS relname, ${arg(1)} AS col, ${arg(2)}::int4multirange AS fenced, ${arg(3)} AS next FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE t.tgname LIKE 'scalable\\_fence\\_%' AND NOT t.tgisinternal AND ${arg(2)}::int4multirange && ${rangesSql(move)}`;
}

/** How many fence triggers on this shard fence buckets of the move (0: none to lift). */
export const fencesInMoveSql = (move: MoveSql): string =>
  `SELECT count(*)::int AS n FROM (${fencesOverlappingSql(checked(move))}) f`;

/**
 * Lifts the move's buckets out of every fence on the target, just before the flip makes it
 * their owner: a trigger fencing nothing else goes, one fencing more is re-created with the
 * rest. One transaction, bounded by lock_timeout like the fence itself.
 */
export function liftFencesSql(move: MoveSql, lockTimeoutMs = 2000): string[] {
  const m = checked(move);
  return [
    'BEGIN',
    `SET LOCAL lock_timeout = ${Math.max(1, Math.floor(lockTimeoutMs))}`,
    [
      'DO $lift$ DECLARE r record; rest int4multirange; BEGIN',
      `FOR r IN ${fencesOverlappingSql(m)} LOOP`,
      `  rest := r.fenced - ${rangesSql(m)};`,
      "  EXECUTE format('DROP TRIGGER %I ON %I.%I', r.tgname, r.nspname, r.relname);",
      '  IF NOT isempty(rest) THEN',
      "    EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE OR DELETE ON %I.%I FOR EACH ROW EXECUTE FUNCTION scalable_fence(%L, %L%s)', r.tgname, r.nspname, r.relname, r.col, rest::text, CASE WHEN r.next = '' THEN '' ELSE format(', %L', r.next) END);",
      '  END IF;',
      'END LOOP; END $lift$',
    ].join('\n'),
    'COMMIT',
  ];
}

/**
 * The moves' logical slots a standby holds as its own (not synced): the copy a primary kept
 * when a switchover made it a standby mid-move. Dropping the subscription drops the slot on
 * the primary and the slot sync worker drops the synced copies, but not this one, which then
 * holds WAL on that member for good. None on a primary (the filter is pg_is_in_recovery()).
 */
const STRAY_SLOTS =
  "FROM pg_replication_slots WHERE pg_is_in_recovery() AND slot_type = 'logical' AND NOT synced AND (slot_name LIKE 'scalable\\_move\\_%' OR slot_name LIKE 'scalable\\_back\\_%')";

export const straySlotsSql = (): string => `SELECT count(*)::int AS n ${STRAY_SLOTS}`;

/** Drops them (an active one, being read, is left for the next step). */
export const dropStraySlotsSql = (): string =>
  `SELECT count(pg_drop_replication_slot(slot_name))::int AS n ${STRAY_SLOTS} AND NOT active`;

/** Whether this server is a primary (not in recovery): where the move's SQL may run. */
export const isPrimarySql = (): string => 'SELECT NOT pg_is_in_recovery() AS is_primary';

/** The source's wal_level (logical replication needs logical). */
export const walLevelSql = (): string => "SELECT current_setting('wal_level') AS wal_level";

/** Run after the fence committed: every fenced write is in the WAL before this LSN. */
export const currentLsnSql = (): string => 'SELECT pg_current_wal_lsn()::text AS lsn';

/** Whether the subscription's slot has confirmed (applied and flushed) the source to `lsn`. */
export const slotCaughtUpSql = (move: MoveSql, lsn: string): string =>
  `SELECT coalesce(bool_or(confirmed_flush_lsn >= ${literal(lsn)}::pg_lsn), false) AS done FROM pg_replication_slots WHERE slot_name = ${literal(slotName(checked(move)))}`;

/** Bytes the slot is behind the source's WAL (catch-up's progress; null without a slot). */
export const slotLagSql = (move: MoveSql): string =>
  `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint AS lag FROM pg_replication_slots WHERE slot_name = ${literal(slotName(checked(move)))}`;

/**
 * Cleanup, only after the new map is live and acknowledged: one batch of moved rows
 * deleted per table (repeat while a batch deletes `batch` rows). Tables go in reverse order,
 * so a referencing table listed after its parent loses its rows first.
 */
export function deleteMovedBatchSql(move: MoveSql, table: MovedTable, batch = 5000): string[] {
  const m = checked(move);
  return [
    'BEGIN',
    "SET LOCAL scalable.fence_bypass = 'on'",
    `DELETE FROM ${tableName(table)} WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${tableName(table)} WHERE ${inMoveSql(m, table)} LIMIT ${Math.max(1, Math.floor(batch))}))`,
    'COMMIT',
  ];
}

export const dropPublicationSql = (move: MoveSql): string =>
  `DROP PUBLICATION IF EXISTS ${ident(publicationName(checked(move)))}`;

/**
 * The copy grant and the fence function are in place (prepareSource's two statements): the
 * role is a member of pg_read_all_data (or a superuser) and scalable_fence() exists.
 */
export const sourcePreparedSql = (replicationRole: string): string =>
  `SELECT coalesce((SELECT pg_has_role(r.oid, 'pg_read_all_data', 'MEMBER') FROM pg_roles r WHERE r.rolname = ${literal(replicationRole)}), false) AND EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'scalable_fence' AND prosrc LIKE '%moving to shard%') AS prepared`;

/** The slot's progress: bytes behind the source's WAL, and what it confirmed (no row: no slot). */
export const slotStateSql = (move: MoveSql): string =>
  `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint AS lag, confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = ${literal(slotName(checked(move)))}`;

/** How many of the move's tables carry its fence trigger (all of them: the move is fenced). */
export function fencedTablesSql(move: MoveSql): string {
  const m = checked(move);
  const tables = m.tables.map((t) => `to_regclass(${literal(tableName(t))})`).join(', ');
  return `SELECT count(DISTINCT tgrelid)::int AS n FROM pg_trigger WHERE tgname = ${literal(fenceTriggerName(m))} AND tgrelid = ANY(ARRAY[${tables || 'NULL'}]::regclass[])`;
}

/** Rows of the move's buckets a table holds (the abort and cleanup checks). */
export const countInMoveSql = (move: MoveSql, table: MovedTable): string =>
  `SELECT count(*)::bigint AS n FROM ${tableName(table)} WHERE ${inMoveSql(checked(move), table)}`;

// ---- on the target primary ----

/**
 * Schema copy: pg_dump's arguments for the source's app database (run in the source's pod,
 * its output fed to psql on the target). No publications or subscriptions of the source,
 * no data, no owners' grants lost (the app role exists on every shard).
 */
export const schemaDumpArgs = (database: string): string[] => [
  '--schema-only',
  '--no-publications',
  '--no-subscriptions',
  '--dbname',
  database,
];

/**
 * Before the dump is restored on an empty target: its bootstrap's bucket function goes (the
 * dump creates the source's, the same text), and after it, fences the source holds for its
 * own earlier moves (they are in the dump) go: the target does not answer for those.
 */
export const beforeSchemaRestoreSql = (): string[] => [
  'DROP FUNCTION IF EXISTS scalable_bucket(text)',
];
export const fenceTriggersSql = (): string =>
  "SELECT format('DROP TRIGGER %I ON %I.%I', t.tgname, n.nspname, c.relname) AS stmt FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE t.tgname LIKE 'scalable\\_fence\\_%'";

/**
 * The fence triggers of fenceTriggersSql dropped by one statement, so the schema restore can
 * end with it inside its own transaction: a target holds the source's tables without the
 * source's fences, or nothing.
 */
export const dropFenceTriggersSql = (): string =>
  `DO $drop$ DECLARE s text; BEGIN FOR s IN ${fenceTriggersSql()} LOOP EXECUTE s; END LOOP; END $drop$`;

/** User tables of the app database: the target must have none before the schema copy. */
export const userTablesSql = (): string =>
  "SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2";

/** Tables of the source that hold the shard-key column (what moves), with its type. */
export const shardedTablesSql = (keyColumn: string): string =>
  `SELECT n.nspname AS schema, c.relname AS name, a.attname AS "keyColumn", format_type(a.atttypid, NULL) AS "keyType" FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE a.attname = ${literal(keyColumn)} AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2`;

/**
 * Columns of the tables that move (those holding the shard key) whose values a sequence
 * generates: identity columns and defaults calling nextval() (serial, bigserial). A move
 * refuses them at Prepare (resharding.ts says why): one row per column, with its kind.
 */
export const sequencedColumnsSql = (keyColumn: string): string =>
  `SELECT n.nspname AS schema, c.relname AS name, a.attname AS "column", CASE WHEN a.attidentity <> '' THEN 'identity' ELSE 'nextval' END AS kind FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' AND (a.attidentity <> '' OR pg_get_expr(d.adbin, d.adrelid) LIKE '%nextval(%') AND EXISTS (SELECT 1 FROM pg_attribute k WHERE k.attrelid = c.oid AND k.attname = ${literal(keyColumn)} AND NOT k.attisdropped) ORDER BY 1, 2, 3`;

/**
 * Tables of the app database without the shard-key column that hold rows: nothing says which
 * shard their rows belong to, so a move leaves them behind (a new shard would have them
 * empty, a departing shard's would vanish with it). A move refuses them at Prepare
 * (resharding.ts); empty ones only have their schema copied. query_to_xml runs each table's
 * one-row probe inside this single statement. One row per table: "schema.table".
 */
export const unkeyedTablesWithRowsSql = (keyColumn: string): string =>
  `SELECT format('%s.%s', n.nspname, c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' AND NOT EXISTS (SELECT 1 FROM pg_attribute k WHERE k.attrelid = c.oid AND k.attname = ${literal(keyColumn)} AND NOT k.attisdropped) AND (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM (SELECT FROM %I.%I LIMIT 1) x', n.nspname, c.relname), false, true, '')))[1]::text <> '0' ORDER BY 1`;

/** sequencedColumnsSql's rows as the state machine names them: "schema.table.column (kind)". */
export const sequencedColumnNames = (
  rows: readonly { schema: string; name: string; column: string; kind: string }[],
): string[] => rows.map((r) => `${r.schema}.${r.name}.${r.column} (${r.kind})`);

/**
 * The subscription: initial copy of the moving rows, then their changes. The slot is created
 * on the source with failover = true (Postgres 17: a standby with sync_replication_slots
 * keeps a copy, so a failover of the source does not lose the stream).
 */
export function createSubscriptionSql(move: MoveSql, conninfo: string): string {
  const m = checked(move);
  return `CREATE SUBSCRIPTION ${ident(subscriptionName(m))} CONNECTION ${literal(conninfo)} PUBLICATION ${ident(publicationName(m))} WITH (copy_data = true, failover = true, slot_name = ${literal(slotName(m))})`;
}

export const subscriptionExistsSql = (move: MoveSql): string =>
  `SELECT count(*)::int AS n FROM pg_subscription WHERE subname = ${literal(subscriptionName(checked(move)))}`;

/** Tables of the subscription not yet in state r (ready): the initial copy is not done. */
export const tablesNotReadySql = (move: MoveSql): string =>
  `SELECT count(*)::int AS n FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid WHERE s.subname = ${literal(subscriptionName(checked(move)))} AND r.srsubstate <> 'r'`;

/** Drops the subscription and (while the source answers) its slot on the source. */
export const dropSubscriptionSql = (move: MoveSql): string =>
  `DROP SUBSCRIPTION IF EXISTS ${ident(subscriptionName(checked(move)))}`;
