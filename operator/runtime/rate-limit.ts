// Client-side rate limiting, as client-go's flowcontrol token bucket: `burst` requests at once,
// then `qps` per second; callers are served in order (a reservation may drive the balance
// negative, and each waits for its own deficit to refill). Measured on the monotonic clock.
// And the server's own push-back: 429 Too Many Requests with Retry-After (API Priority and
// Fairness sends it when the operator's flow is over its share).
import { performance } from 'node:perf_hooks';

export class TokenBucket {
  private tokens: number;
  private last = performance.now();

  constructor(
    readonly qps: number,
    readonly burst: number,
  ) {
    this.tokens = burst;
  }

  /** Reserves one token; returns how long to wait (ms) before using it. */
  reserve(now = performance.now()): number {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
  }
}

/** Seconds of a Retry-After header (delta-seconds or HTTP date), bounded; default 1 s. */
export function retryAfterMs(header: string | undefined, now = Date.now(), maxMs = 60_000): number {
  if (header === undefined || header.trim() === '') return 1_000;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - now;
  return Number.isFinite(ms) ? Math.min(maxMs, Math.max(0, ms)) : 1_000;
}
