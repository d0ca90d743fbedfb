import { describe, expect, it } from 'vitest';
import { deleteOptions } from './writes.ts';

describe('deleteOptions', () => {
  const base = { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background' };

  it('has preconditions only for what is given', () => {
    expect(deleteOptions()).toEqual(base);
    expect(deleteOptions('u-1')).toEqual({ ...base, preconditions: { uid: 'u-1' } });
    expect(deleteOptions(undefined, 5)).toEqual({ ...base, gracePeriodSeconds: 5 });
  });

  it('a rollout step: the pod it planned on, by uid and resourceVersion, with its grace', () => {
    expect(deleteOptions('u-1', 5, '812')).toEqual({
      ...base,
      preconditions: { resourceVersion: '812', uid: 'u-1' },
      gracePeriodSeconds: 5,
    });
    // A zero grace period is a grace period (an immediate delete), not "none given".
    expect(deleteOptions(undefined, 0, '9')).toEqual({
      ...base,
      preconditions: { resourceVersion: '9' },
      gracePeriodSeconds: 0,
    });
  });
});
