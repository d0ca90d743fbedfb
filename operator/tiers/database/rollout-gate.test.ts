import { describe, expect, it } from 'vitest';
import { HOLD_MS, RolloutGate } from './rollout-gate.ts';

describe('the operator-wide rollout gate', () => {
  it('lets one app roll at a time; the next goes on once the first is done', () => {
    const gate = new RolloutGate();
    expect(gate.tryEnter('a/shop', 0)).toBe(true);
    expect(gate.tryEnter('b/blog', 1_000)).toBe(false);
    expect(gate.tryEnter('a/shop', 2_000)).toBe(true); // the holder acts again
    gate.leave('b/blog'); // not the holder: no effect
    expect(gate.heldBy(2_000)).toBe('a/shop');
    gate.leave('a/shop');
    expect(gate.tryEnter('b/blog', 3_000)).toBe(true);
  });

  it('does not let a stuck rollout stop every other app', () => {
    const gate = new RolloutGate();
    gate.tryEnter('a/shop', 0);
    expect(gate.tryEnter('b/blog', HOLD_MS)).toBe(false);
    expect(gate.tryEnter('b/blog', HOLD_MS + 1)).toBe(true);
    expect(gate.heldBy(HOLD_MS + 1)).toBe('b/blog');
  });
});
