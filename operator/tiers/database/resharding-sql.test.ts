// The statements' shape and their refusals; what they do on Postgres is
// test/engines/resharding-move.test.ts's to show.
import { describe, expect, it } from 'vitest';
import {
  bucketExpression,
  createPublicationSql,
  createSubscriptionSql,
  dropFenceTriggersSql,
  fenceFunctionSql,
  fenceSql,
  fenceTriggerName,
  fenceTriggersSql,
  fencedTablesSql,
  guardSql,
  guardTriggerName,
  rowFilterSql,
  sequencedColumnNames,
  sequencedColumnsSql,
  slotStateSql,
  sourcePreparedSql,
} from './resharding-sql.ts';
import type { MoveSql, MovedTable } from './resharding-sql.ts';

const items: MovedTable = {
  schema: 'public',
  name: 'items',
  keyColumn: 'customer_id',
  keyType: 'text',
};
const visits: MovedTable = { ...items, name: 'visits', keyType: 'bigint' };
const move: MoveSql = {
  id: 'v3_s0_s2',
  ranges: [
    { from: 342, to: 512 },
    { from: 900, to: 901 },
  ],
  tables: [items, visits],
};

describe('resharding SQL', () => {
  it('filters on every range of the move, through the key text of its column type', () => {
    expect(rowFilterSql(move, items)).toMatch(
      /^int4multirange\(int4range\(342, 512\), int4range\(900, 901\)\) @> /,
    );
    expect(rowFilterSql(move, items)).toContain(`replace("customer_id", '\\', '\\\\')`);
    expect(rowFilterSql(move, visits)).toContain('textin(int8out("customer_id"))');
    // No user-defined function and no cast through text: Postgres 17 refuses both there.
    expect(createPublicationSql(move)).not.toMatch(/scalable_bucket|::text|convert_to/);
  });

  it('reads two digest bytes when the bucket count divides 65536, four otherwise', () => {
    expect(bucketExpression('k').match(/get_byte/g)).toHaveLength(2);
    expect(bucketExpression('k', 1000).match(/get_byte/g)).toHaveLength(4);
  });

  it('refuses a shard key type it cannot hash in a row filter, naming the column', () => {
    const bad = { ...move, tables: [{ ...items, keyType: 'numeric' }] };
    expect(() => createPublicationSql(bad)).toThrow(/public\.items\.customer_id: .* numeric/);
  });

  it('refuses empty, inverted or out-of-range bucket ranges and unsafe ids', () => {
    for (const ranges of [[], [{ from: 5, to: 5 }], [{ from: -1, to: 3 }], [{ from: 0, to: 1025 }]])
      expect(() => createPublicationSql({ ...move, ranges })).toThrow(/range/);
    expect(() => createPublicationSql({ ...move, id: 'x"; DROP' })).toThrow(/bad move id/);
  });

  it('quotes the connection string and fences every table in one transaction', () => {
    expect(createSubscriptionSql(move, "host=a password='it''s'")).toContain(
      `CONNECTION 'host=a password=''it''''s'''`,
    );
    const fence = fenceSql(move);
    expect(fence[0]).toBe('BEGIN');
    expect(fence.at(-1)).toBe('COMMIT');
    expect(fence.filter((s) => s.startsWith('CREATE TRIGGER'))).toHaveLength(2);
    expect(fence.join('\n')).toContain(`'{[342,512),[900,901)}'`);
  });

  it('probes the copy grant of the named role (quoted) and the fence function together', () => {
    const sql = sourcePreparedSql("repl'x");
    expect(sql).toContain(`r.rolname = 'repl''x'`);
    expect(sql).toContain(`'pg_read_all_data'`);
    // The function as it is now (it names the next owner): an older one is replaced.
    expect(sql).toContain(`proname = 'scalable_fence' AND prosrc LIKE '%moving to shard%'`);
    expect(fenceFunctionSql()).toContain("'moving to shard '");
  });

  it('a fence names the next owner as its third argument; the guard names none', () => {
    expect(fenceSql(move, 2000, 2).join('\n')).toMatch(
      /scalable_fence\('customer_id', '\{[^']+\}', '2'\)/,
    );
    expect(guardSql(move).join('\n')).toContain(`"${guardTriggerName(move)}"`);
    expect(guardSql(move).join('\n')).toMatch(/scalable_fence\('customer_id', '\{[^']+\}'\)/);
  });

  it("reads the move's own slot and counts its fence trigger on the move's tables only", () => {
    expect(slotStateSql(move)).toContain(`slot_name = 'scalable_move_v3_s0_s2'`);
    const fenced = fencedTablesSql(move);
    expect(fenced).toContain(`tgname = '${fenceTriggerName(move)}'`);
    expect(fenced).toContain(`to_regclass('"public"."items"'), to_regclass('"public"."visits"')`);
    // No table: an empty array, never a syntax error.
    expect(fencedTablesSql({ ...move, tables: [] })).toContain('ARRAY[NULL]::regclass[]');
  });

  it('drops the fence triggers in one statement the schema restore can run in its transaction', () => {
    const sql = dropFenceTriggersSql();
    expect(sql).toMatch(/^DO \$drop\$ .* END \$drop\$$/s);
    expect(sql).toContain(`FOR s IN ${fenceTriggersSql()} LOOP EXECUTE s;`);
  });

  it('finds identity and nextval() columns of the tables holding the key, the key quoted', () => {
    const sql = sequencedColumnsSql("o'id");
    expect(sql).toContain("k.attname = 'o''id'");
    expect(sql).toContain("a.attidentity <> ''");
    expect(sql).toContain("LIKE '%nextval(%'");
    expect(
      sequencedColumnNames([
        { schema: 'public', name: 'visits', column: 'id', kind: 'identity' },
        { schema: 'app', name: 'orders', column: 'no', kind: 'nextval' },
      ]),
    ).toEqual(['public.visits.id (identity)', 'app.orders.no (nextval)']);
  });
});
