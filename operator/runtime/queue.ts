// A keyed work queue in the manner of client-go's workqueue: a key waits at most once
// (dedup), is processed by at most one worker at a time (a key added while it is being
// processed is requeued when that worker is done), and failures come back after an
// exponential, capped delay. Forgetting a key resets its backoff.

export interface BackoffOptions {
  readonly baseMs: number;
  readonly capMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 200, capMs: 120_000 };

/** Delay before the n-th retry (n from 0): base * 2^n, capped. Pure. */
export const backoffDelay = (failures: number, opts: BackoffOptions = DEFAULT_BACKOFF): number =>
  Math.min(opts.capMs, opts.baseMs * 2 ** Math.min(failures, 30));

export class WorkQueue {
  private readonly order: string[] = [];
  private readonly waiting = new Set<string>();
  private readonly processing = new Set<string>();
  /** Keys added while processing: requeued by done(). */
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly getters: Array<(key: string | undefined) => void> = [];
  private shuttingDown = false;

  constructor(
    private readonly backoff: BackoffOptions = DEFAULT_BACKOFF,
    private readonly onDepth: (depth: number) => void = () => undefined,
  ) {}

  get depth(): number {
    return this.order.length;
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.waiting.has(key)) return;
    const getter = this.getters.shift();
    if (getter) {
      this.processing.add(key);
      getter(key);
      return;
    }
    this.waiting.add(key);
    this.order.push(key);
    this.onDepth(this.order.length);
  }

  /** Add after delayMs; an earlier pending delayed add of the same key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown || this.timers.has(key)) return;
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.timers.set(key, timer);
  }

  /** Retry a failed key after its backoff delay; returns the delay. */
  addRateLimited(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = backoffDelay(n, this.backoff);
    this.addAfter(key, delay);
    return delay;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** The next key, waiting until one arrives; undefined once shut down. */
  get(): Promise<string | undefined> {
    const key = this.order.shift();
    if (key !== undefined) {
      this.waiting.delete(key);
      this.processing.add(key);
      this.onDepth(this.order.length);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.getters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.delete(key)) this.add(key);
  }

  get inFlight(): number {
    return this.processing.size;
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const g of this.getters.splice(0)) g(undefined);
  }
}
