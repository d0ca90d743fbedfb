// One in-flight call per key: concurrent callers share the first caller's promise, so a
// burst of cache misses for one key runs its loader once instead of once per request.
export class SingleFlight<T> {
  readonly #inflight = new Map<string, Promise<T>>();

  run(key: string, fn: () => Promise<T>): Promise<T> {
    const running = this.#inflight.get(key);
    if (running) return running;
    const p = fn().finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, p);
    return p;
  }

  get size(): number {
    return this.#inflight.size;
  }
}
