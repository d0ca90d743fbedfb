// The queue store from the worker's and the producer's side.
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { QueueSettings } from '../env.ts';
import { Consumer } from './consumer.ts';
import type { ConsumerOptions, Handler } from './consumer.ts';
import { enqueue } from './producer.ts';
import type { EnqueueOptions } from './producer.ts';

export type { ConsumerOptions, Handler, Message } from './consumer.ts';
export type { EnqueueOptions } from './producer.ts';
export { Consumer } from './consumer.ts';

export class Queue {
  readonly redis: Redis;
  readonly #settings: QueueSettings;
  readonly #onError: ((where: string, e: Error) => void) | undefined;
  readonly #consumers = new Set<Consumer>();

  constructor(redis: Redis, settings: QueueSettings, onError?: (where: string, e: Error) => void) {
    this.redis = redis;
    this.#settings = settings;
    this.#onError = onError;
  }

  /** Append a message (JSON) to a stream; returns its id. Trims to QUEUE_MAX_LENGTH unless told. */
  enqueue(stream: string, payload: unknown, options?: EnqueueOptions): Promise<string> {
    const maxLen = options?.maxLen ?? this.#settings.maxLength;
    return enqueue(this.redis, stream, payload, maxLen === undefined ? {} : { maxLen });
  }

  /**
   * Handle this worker's stream (QUEUE_STREAM, QUEUE_GROUP, QUEUE_CONSUMER from the env;
   * any of them overridable). Returns at once; `consumer.done` resolves after a stop.
   */
  consume<T = unknown>(handler: Handler<T>, overrides: Partial<ConsumerOptions> = {}): Consumer {
    const s = this.#settings;
    const stream = overrides.stream ?? s.stream;
    const group = overrides.group ?? s.group;
    if (!stream || !group)
      throw new Error('consume needs QUEUE_STREAM and QUEUE_GROUP (set on worker pods)');
    const consumer = new Consumer(this.redis, handler as Handler, {
      stream,
      group,
      consumer: s.consumer ?? hostname(),
      deadLetterStream: s.deadLetterStream ?? `${stream}:dead`,
      maxDeliveries: s.maxDeliveries,
      concurrency: s.concurrency,
      claimIdleMs: s.claimIdleMs,
      ...(this.#onError ? { onError: this.#onError } : {}),
      ...overrides,
    });
    this.#consumers.add(consumer);
    void consumer.done.finally(() => this.#consumers.delete(consumer));
    return consumer;
  }

  /** Stop every consumer (in-flight messages finish), then close the connection. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#consumers].map((c) => c.stop()));
    await this.redis.quit().catch(() => undefined);
  }
}
