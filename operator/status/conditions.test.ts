import { describe, expect, it } from 'vitest';
import { condition } from '../tiers/shared/report.ts';
import { withTransitions } from './conditions.ts';

describe('withTransitions', () => {
  it('keeps lastTransitionTime while the status stays, moves it when the status moves', () => {
    const prev = [
      {
        type: 'Ready',
        status: 'False' as const,
        reason: 'X',
        message: '',
        lastTransitionTime: 'T0',
      },
      {
        type: 'WebReady',
        status: 'True' as const,
        reason: 'Y',
        message: '',
        lastTransitionTime: 'T0',
      },
    ];
    const next = withTransitions(
      prev,
      [
        condition('Ready', 'True', 'AllTiersReady', ''),
        condition('WebReady', 'True', 'PodsReady', '2/2'),
      ],
      'T1',
      3,
    );
    expect(next.map((c) => c.lastTransitionTime)).toEqual(['T1', 'T0']);
    expect(next.every((c) => c.observedGeneration === 3)).toBe(true);
  });
});
