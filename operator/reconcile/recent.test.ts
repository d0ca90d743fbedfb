import { afterEach, describe, expect, it, vi } from 'vitest';
import { Recent } from './plans.ts';

describe('Recent', () => {
  afterEach(() => vi.useRealTimers());

  it('forgets writes nobody reads again once their lifetime is over', () => {
    vi.useFakeTimers();
    const recent = new Recent(1_000);
    for (let i = 0; i < 100; i++) recent.set(`status|ns/app-${i}`, 'h', String(i), { big: i });
    expect(recent.size).toBe(100);
    expect(recent.get('status|ns/app-7')?.rv).toBe('7');
    vi.advanceTimersByTime(1_001);
    recent.set('status|ns/other', 'h', '1');
    // The 100 expired entries are gone without being read; the new one stays.
    expect(recent.size).toBe(1);
    expect(recent.get('status|ns/app-7')).toBeUndefined();
    expect(recent.get('status|ns/other')?.rv).toBe('1');
  });

  it('keeps an entry with a longer lifetime of its own past the sweep', () => {
    vi.useFakeTimers();
    const recent = new Recent(1_000);
    recent.set('issued', 'h', '5', undefined, 10_000);
    vi.advanceTimersByTime(2_000);
    recent.set('other', 'h', '6');
    expect(recent.get('issued')?.rv).toBe('5');
  });
});
