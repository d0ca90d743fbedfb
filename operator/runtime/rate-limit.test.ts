import { describe, expect, it } from 'vitest';
import { mapLimit } from '../reconcile/map-limit.ts';
import { TokenBucket, retryAfterMs } from './rate-limit.ts';

describe('TokenBucket', () => {
  it('lets a burst through, then one request per 1/qps, in order', () => {
    const b = new TokenBucket(5, 10);
    const t0 = 1_000_000;
    const waits = Array.from({ length: 13 }, () => b.reserve(t0));
    expect(waits.slice(0, 10)).toEqual(Array(10).fill(0));
    expect(waits.slice(10)).toEqual([200, 400, 600]);
  });

  it('refills at qps up to the burst', () => {
    const b = new TokenBucket(5, 10);
    const t0 = 1_000_000;
    for (let i = 0; i < 10; i++) b.reserve(t0);
    // One second later: 5 tokens back.
    const waits = Array.from({ length: 6 }, () => b.reserve(t0 + 1_000));
    expect(waits).toEqual([0, 0, 0, 0, 0, 200]);
    // Long idle: never more than the burst.
    const later = Array.from({ length: 11 }, () => b.reserve(t0 + 3_600_000));
    expect(later.filter((w) => w === 0)).toHaveLength(10);
  });

  it('keeps the long-run rate at qps', () => {
    const b = new TokenBucket(20, 30);
    const waits = Array.from({ length: 230 }, () => b.reserve(1_000_000));
    // 230 requests: 30 at once, 200 more at 20/s = 10 s.
    expect(waits.at(-1)).toBeCloseTo(10_000, 6);
  });
});

describe('retryAfterMs', () => {
  it('reads seconds and HTTP dates, bounded', () => {
    expect(retryAfterMs('3')).toBe(3_000);
    expect(retryAfterMs(undefined)).toBe(1_000);
    expect(retryAfterMs('600')).toBe(60_000);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5_000);
    expect(retryAfterMs('soon')).toBe(1_000);
  });
});

describe('mapLimit', () => {
  it('never has more than the limit in flight and keeps the order', async () => {
    let inFlight = 0;
    let most = 0;
    const out = await mapLimit([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 5 * (8 - n)));
      inFlight -= 1;
      return n * 10;
    });
    expect(out).toEqual([10, 20, 30, 40, 50, 60, 70]);
    expect(most).toBe(3);
  });
});
