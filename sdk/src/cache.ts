// Cache-aside on the cache Redis: look up, on a miss load from the source of truth and
// store with a TTL (the operator's CACHE_TTL_SECONDS unless the caller says otherwise).
// Values are JSON. The cache is an optimisation, never a dependency: when Redis cannot
// answer, getOrSet still returns the loader's value, and the error goes to onError.
import type { Redis } from 'ioredis';
import { SingleFlight } from './single-flight.ts';

export interface CacheOptions {
  readonly ttlSeconds: number;
  readonly onError?: (where: string, e: Error) => void;
}

export class Cache {
  readonly #redis: Redis;
  readonly #options: CacheOptions;
  readonly #flight = new SingleFlight<unknown>();

  constructor(redis: Redis, options: CacheOptions) {
    this.#redis = redis;
    this.#options = options;
  }

  get defaultTtlSeconds(): number {
    return this.#options.ttlSeconds;
  }

  /** The client itself, for what cache-aside does not cover. */
  get redis(): Redis {
    return this.#redis;
  }

  /**
   * The cached value of `key`, or the loader's, which is then cached for `ttlSeconds`.
   * Concurrent misses of one key in this process share a single load.
   */
  async getOrSet<T>(key: string, loader: () => Promise<T>, ttlSeconds?: number): Promise<T> {
    return this.#flight.run(key, async () => {
      const hit = await this.get<T>(key);
      if (hit !== undefined) return hit;
      const value = await loader();
      await this.set(key, value, ttlSeconds);
      return value;
    }) as Promise<T>;
  }

  async get<T>(key: string): Promise<T | undefined> {
    try {
      const text = await this.#redis.get(key);
      return text === null ? undefined : (JSON.parse(text) as T);
    } catch (e) {
      this.#options.onError?.(`cache get ${key}`, e as Error);
      return undefined;
    }
  }

  /** Store a value (undefined is not cached: the next read loads again). */
  async set(key: string, value: unknown, ttlSeconds = this.#options.ttlSeconds): Promise<void> {
    if (value === undefined) return;
    try {
      await this.#redis.set(key, JSON.stringify(value), 'EX', ttlSeconds);
    } catch (e) {
      this.#options.onError?.(`cache set ${key}`, e as Error);
    }
  }

  /** Drop keys after a write, so the next read loads the new value. */
  async delete(...keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    try {
      await this.#redis.del(...keys);
    } catch (e) {
      this.#options.onError?.(`cache delete ${keys.join(' ')}`, e as Error);
    }
  }
}
