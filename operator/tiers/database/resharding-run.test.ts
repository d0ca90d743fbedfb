// The runner's pure helpers; the runner itself runs against real Postgres in
// test/engines/resharding-run.test.ts.
import { describe, expect, it } from 'vitest';
import { actionText, moveSqlOf, sameRecord, tableNames, withFenceLsn } from './resharding-run.ts';
import type { ReshardingStatus } from './resharding.ts';

const record: ReshardingStatus = {
  phase: 'Cutover',
  fromShards: 2,
  toShards: 3,
  mapVersion: 3,
  ranges: [],
  moves: [
    { id: 'v3_s0_s2', source: 0, target: 2, ranges: [{ from: 342, to: 512 }] },
    { id: 'v3_s1_s2', source: 1, target: 2, ranges: [{ from: 853, to: 1024 }] },
  ],
};

describe('resharding runner helpers', () => {
  it("sets one move's fence LSN and leaves the record given untouched", () => {
    const next = withFenceLsn(record, 'v3_s1_s2', '0/3000060');
    expect(next.moves.map((m) => m.fenceLsn)).toEqual([undefined, '0/3000060']);
    expect(record.moves.every((m) => m.fenceLsn === undefined)).toBe(true);
    expect(sameRecord(next, record)).toBe(false);
    expect(sameRecord(withFenceLsn(record, 'nope', '0/1'), record)).toBe(true);
  });

  it('compares records by content (undefined: no move)', () => {
    expect(sameRecord(undefined, undefined)).toBe(true);
    expect(sameRecord(record, undefined)).toBe(false);
    expect(sameRecord({ ...record }, record)).toBe(true);
    expect(sameRecord({ ...record, phase: 'Cleanup' }, record)).toBe(false);
  });

  it('names tables schema.name, as the state machine compares source and target', () => {
    expect(
      tableNames([
        { schema: 'public', name: 'items' },
        { schema: 'app', name: 'visits' },
      ]),
    ).toEqual(['public.items', 'app.visits']);
  });

  it("builds the move's SQL handle from the record and the tables found", () => {
    const t = { schema: 'public', name: 'items', keyColumn: 'k', keyType: 'text' };
    expect(moveSqlOf(record.moves[0]!, [t])).toEqual({
      id: 'v3_s0_s2',
      ranges: [{ from: 342, to: 512 }],
      tables: [t],
    });
  });

  it('names each action with its move and shard', () => {
    expect(actionText({ kind: 'fence', move: 'v3_s0_s2', shard: 0 })).toBe(
      'fence v3_s0_s2 on shard 0',
    );
    expect(actionText({ kind: 'copySchema', source: 0, target: 2 })).toBe('copySchema 0 -> 2');
    expect(actionText({ kind: 'publishMap', version: 3, ranges: [] })).toBe('publishMap v3');
    expect(actionText({ kind: 'prepareSource', shard: 1 })).toBe('prepareSource on shard 1');
  });
});
