import { describe, expect, it } from 'vitest';
import { modelOf } from '../shared/test-helpers.ts';
import { acknowledgedVersion } from './reshard-env.ts';
import { publishedMove as publishedRecord } from './shard-authority.ts';
import {
  RESHARD_ABORT_ANNOTATION,
  inCutover,
  noteOf,
  olderVersion,
  reshardSpecOf,
  wantsReshardStep,
  withNote,
} from './reshard-watch.ts';
import type { ReshardingStatus } from './resharding.ts';

const twoShards = {
  version: 2,
  ranges: [
    { from: 0, to: 512, shard: 0 },
    { from: 512, to: 1024, shard: 1 },
  ],
};
const app = (shards: number, status: Record<string, unknown> = {}, deleting = false) => ({
  uid: 'u',
  spec: { database: { enabled: true, shards, shardKey: 'tenant_id' } },
  deleting,
  status,
});
const record = (extra: Partial<ReshardingStatus> = {}): ReshardingStatus => ({
  phase: 'Cutover',
  fromShards: 2,
  toShards: 3,
  mapVersion: 3,
  ranges: [
    { from: 0, to: 341, shard: 0 },
    { from: 341, to: 683, shard: 1 },
    { from: 683, to: 1024, shard: 2 },
  ],
  moves: [],
  ...extra,
});

describe('the resharding watch', () => {
  it('steps apps whose shard count differs from the owning shards, or with a move on record', () => {
    expect(wantsReshardStep(app(2, { shardMap: twoShards }))).toBe(false);
    expect(wantsReshardStep(app(3, { shardMap: twoShards }))).toBe(true);
    expect(wantsReshardStep(app(3, { shardMap: twoShards }, true))).toBe(false);
    expect(wantsReshardStep(app(3, {}))).toBe(false); // nothing recorded yet: being created
    expect(wantsReshardStep(app(2, { shardMap: twoShards, resharding: record() }))).toBe(true);
  });

  it('takes the count, the key and the abort annotation from the app', () => {
    const model = modelOf({ database: { shards: 3, shardKey: 'tenant_id' } });
    expect(reshardSpecOf(model)).toEqual({ shards: 3, shardKey: 'tenant_id' });
    expect(reshardSpecOf(model, { [RESHARD_ABORT_ANNOTATION]: 'true' })).toMatchObject({
      abort: true,
    });
    expect(reshardSpecOf(model, { [RESHARD_ABORT_ANNOTATION]: 'yes' })).not.toHaveProperty('abort');
  });

  it('notes a stuck move on its record, and clears the note once it goes on', () => {
    expect(
      noteOf({ status: 'True', reason: 'Resharding', message: 'InitialCopy: ...' }),
    ).toBeUndefined();
    const note = noteOf({
      status: 'True',
      reason: 'SequenceColumnsRefused',
      message: 'refused: ...',
    });
    expect(note).toEqual({ reason: 'SequenceColumnsRefused', message: 'refused: ...' });
    expect(withNote(record(), note).note).toEqual(note);
    expect(withNote(record({ note }), undefined)).not.toHaveProperty('note');
  });

  it('does not step on a cache older than its own last write', () => {
    expect(olderVersion('99', '100')).toBe(true);
    expect(olderVersion('100', '100')).toBe(false);
    expect(olderVersion('101', '100')).toBe(false);
    expect(olderVersion(undefined, '100')).toBe(false);
  });

  it('counts the new map read by every pod only after the ack delay since the cutover', () => {
    const at = Date.parse('2026-12-07T15:00:00Z');
    const r = record({ publishedAt: '2026-12-07T15:00:00Z' });
    const live3 = { version: 3, ranges: r.ranges };
    expect(publishedRecord(record())).toBeUndefined();
    expect(publishedRecord(r)).toEqual({ version: 3, ranges: r.ranges });
    expect(acknowledgedVersion(r, twoShards, at + 600_000, 150_000)).toBe(2); // not live yet
    expect(acknowledgedVersion(r, live3, at + 149_000, 150_000)).toBe(2);
    expect(acknowledgedVersion(r, live3, at + 150_000, 150_000)).toBe(3);
    expect(acknowledgedVersion(undefined, twoShards, at, 150_000)).toBe(2);
    expect(acknowledgedVersion(r, undefined, at, 150_000)).toBeUndefined();
  });
});

describe('inCutover: the watch steps a cutover again at once', () => {
  const said = (reason: string) => ({
    decision: {
      resharding: undefined,
      actions: [],
      condition: { status: 'True' as const, reason, message: 'm' },
    },
  });
  it('until the flip is on record, unless the step says it is stuck', () => {
    expect(inCutover(record(), said('Resharding'))).toBe(true);
    expect(inCutover(record({ publishedAt: '2026-12-07T00:00:00Z' }), said('Resharding'))).toBe(
      false,
    );
    expect(inCutover(record(), said('ReshardingBlocked'))).toBe(false);
    expect(inCutover(record({ phase: 'CatchUp' }), said('Resharding'))).toBe(false);
    expect(inCutover(undefined, said('ShardsReady'))).toBe(false);
  });
});
