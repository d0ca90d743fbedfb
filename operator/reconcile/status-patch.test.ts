import { describe, expect, it } from 'vitest';
import { statusPatch } from './status-patch.ts';

describe('statusPatch', () => {
  const previous = { observedGeneration: 1, phase: 'Progressing', shards: [1] };
  const next = { observedGeneration: 2, phase: 'Ready' };

  it('is conditional on the app version the status was computed from', () => {
    expect(statusPatch(previous, next, ['120', undefined])).toEqual({
      metadata: { resourceVersion: '120' },
      status: { observedGeneration: 2, phase: 'Ready', shards: null },
    });
  });

  it('takes our own last write when the cache is behind it, the app when it is ahead', () => {
    expect(statusPatch({}, next, ['120', '131'])['metadata']).toEqual({ resourceVersion: '131' });
    expect(statusPatch({}, next, ['140', '131'])['metadata']).toEqual({ resourceVersion: '140' });
    // Numerically, not as strings ('99' < '100').
    expect(statusPatch({}, next, ['99', '100'])['metadata']).toEqual({ resourceVersion: '100' });
  });

  it('has no precondition only when no version is known', () => {
    expect(statusPatch({}, next, [undefined, ''])).toEqual({ status: next });
  });
});
