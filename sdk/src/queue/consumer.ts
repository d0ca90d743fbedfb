// A worker's side of a Redis Streams consumer group, at-least-once:
// - read new messages with XREADGROUP, ack (XACK) only after the handler succeeded;
// - a message whose handler failed, or whose consumer died, stays pending; once it has been
//   idle for claimIdleMs any consumer claims it (XCLAIM with that min-idle, so two never
//   both win) and handles it again; while a handler runs, its messages' idle time is reset
//   (XCLAIM ... JUSTID) so a slow handler is not mistaken for a dead one;
// - a message delivered maxDeliveries times without success goes to the dead-letter
//   stream with its original fields, and is acked, atomically (MULTI);
// - stop() (SIGTERM by default) stops reading, lets in-flight handlers finish and ack,
//   then resolves `done`. Nothing read is dropped: what is not acked stays pending.
import type { Redis } from 'ioredis';
import { PAYLOAD_FIELD, fieldsOf } from './producer.ts';

export interface Message<T = unknown> {
  readonly id: string;
  readonly stream: string;
  readonly payload: T;
  /** 1 on the first delivery; more when retried or claimed from a dead consumer. */
  readonly deliveries: number;
}

export type Handler<T = unknown> = (message: Message<T>) => Promise<void>;

export interface ConsumerOptions {
  readonly stream: string;
  readonly group: string;
  readonly consumer: string;
  readonly deadLetterStream: string;
  readonly maxDeliveries: number;
  readonly concurrency: number;
  readonly claimIdleMs: number;
  /** How long one XREADGROUP waits; bounds how long stop() takes to stop reading. */
  readonly blockMs?: number;
  /** Signals that stop the consumer gracefully (default SIGTERM, SIGINT). */
  readonly signals?: readonly NodeJS.Signals[];
  readonly onError?: (where: string, e: Error) => void;
}

export class Consumer {
  readonly #redis: Redis;
  readonly #blocking: Redis;
  readonly #o: ConsumerOptions;
  readonly #handler: Handler;
  readonly #inflight = new Map<string, Promise<void>>();
  readonly #lastError = new Map<string, string>();
  #stopping = false;
  readonly #signalHandlers: Array<[NodeJS.Signals, () => void]> = [];
  /** Resolves when the consumer stopped and every in-flight message is done. */
  readonly done: Promise<void>;

  constructor(redis: Redis, handler: Handler, options: ConsumerOptions) {
    this.#redis = redis;
    // XREADGROUP BLOCK holds its connection; the acks and claims need their own.
    this.#blocking = redis.duplicate();
    this.#blocking.on('error', () => undefined);
    this.#handler = handler;
    this.#o = options;
    for (const signal of options.signals ?? ['SIGTERM', 'SIGINT']) {
      const h = () => void this.stop();
      process.once(signal, h);
      this.#signalHandlers.push([signal, h]);
    }
    this.done = this.#run().finally(() => {
      for (const [signal, h] of this.#signalHandlers) process.removeListener(signal, h);
      this.#blocking.disconnect();
    });
  }

  /** Stop reading; `done` resolves once in-flight messages are handled and acked. */
  stop(): Promise<void> {
    this.#stopping = true;
    return this.done;
  }

  get inflight(): number {
    return this.#inflight.size;
  }

  async #run(): Promise<void> {
    const o = this.#o;
    await this.#ensureGroup();
    const heartbeat = setInterval(() => void this.#heartbeat(), Math.max(50, o.claimIdleMs / 3));
    heartbeat.unref();
    let lastClaim = 0;
    try {
      while (!this.#stopping) {
        try {
          if (Date.now() - lastClaim >= Math.min(o.claimIdleMs, 1_000)) {
            lastClaim = Date.now();
            await this.#claimStuck();
          }
          const room = o.concurrency - this.#inflight.size;
          if (room <= 0) {
            await Promise.race(this.#inflight.values());
            continue;
          }
          const res = (await this.#blocking.xreadgroup(
            'GROUP',
            o.group,
            o.consumer,
            'COUNT',
            room,
            'BLOCK',
            o.blockMs ?? 1_000,
            'STREAMS',
            o.stream,
            '>',
          )) as [string, [string, string[]][]][] | null;
          for (const [, entries] of res ?? []) {
            for (const [id, flat] of entries) this.#start(id, flat, 1);
          }
        } catch (e) {
          if (this.#stopping) break;
          o.onError?.('queue read', e as Error);
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    } finally {
      await Promise.allSettled(this.#inflight.values());
      clearInterval(heartbeat);
    }
  }

  async #ensureGroup(): Promise<void> {
    try {
      await this.#redis.xgroup('CREATE', this.#o.stream, this.#o.group, '0', 'MKSTREAM');
    } catch (e) {
      if (!String(e).includes('BUSYGROUP')) throw e;
    }
  }

  #start(id: string, flat: string[], deliveries: number): void {
    const run = this.#handle(id, flat, deliveries)
      // Redis failed the ack: the message stays pending and is claimed again later.
      .catch((e: Error) => this.#o.onError?.(`ack ${this.#o.stream} ${id}`, e))
      .finally(() => this.#inflight.delete(id));
    this.#inflight.set(id, run);
  }

  async #handle(id: string, flat: string[], deliveries: number): Promise<void> {
    const o = this.#o;
    const fields = fieldsOf(flat);
    let payload: unknown;
    try {
      payload = JSON.parse(fields[PAYLOAD_FIELD] ?? 'null');
      await this.#handler({ id, stream: o.stream, payload, deliveries });
    } catch (e) {
      this.#lastError.set(id, String((e as Error)?.message ?? e));
      o.onError?.(`handler ${o.stream} ${id} (delivery ${deliveries})`, e as Error);
      // Out of retries now: dead-letter at once rather than after another idle period.
      if (deliveries >= o.maxDeliveries) await this.#deadLetter(id, flat, deliveries);
      return;
    }
    this.#lastError.delete(id);
    await this.#redis.xack(o.stream, o.group, id);
  }

  /** Claim messages idle for claimIdleMs (their consumer died or failed them); retry or dead-letter. */
  async #claimStuck(): Promise<void> {
    const o = this.#o;
    const pending = (await this.#redis.xpending(
      o.stream,
      o.group,
      'IDLE',
      o.claimIdleMs,
      '-',
      '+',
      Math.max(o.concurrency * 2, 10),
    )) as [string, string, number, number][];
    for (const [id, , , deliveries] of pending) {
      if (this.#stopping || this.#inflight.has(id)) continue;
      if (deliveries >= o.maxDeliveries) {
        const claimed = await this.#claim(id);
        if (claimed) await this.#deadLetter(id, claimed, deliveries);
        continue;
      }
      if (this.#inflight.size >= o.concurrency) break;
      const claimed = await this.#claim(id);
      // XCLAIM counted this delivery.
      if (claimed) this.#start(id, claimed, deliveries + 1);
    }
  }

  /** Our fields for the message, or undefined when another consumer claimed it first. */
  async #claim(id: string): Promise<string[] | undefined> {
    const o = this.#o;
    const res = (await this.#redis.xclaim(o.stream, o.group, o.consumer, o.claimIdleMs, id)) as [
      string,
      string[] | null,
    ][];
    const entry = res[0];
    if (!entry) return undefined;
    if (!entry[1]) {
      // Trimmed from the stream while pending: nothing left to handle.
      await this.#redis.xack(o.stream, o.group, id);
      return undefined;
    }
    return entry[1];
  }

  async #deadLetter(id: string, flat: string[], deliveries: number): Promise<void> {
    const o = this.#o;
    await this.#redis
      .multi()
      .xadd(
        o.deadLetterStream,
        '*',
        ...flat,
        'original-stream',
        o.stream,
        'original-id',
        id,
        'deliveries',
        String(deliveries),
        'last-error',
        this.#lastError.get(id) ?? 'consumer died while handling it',
      )
      .xack(o.stream, o.group, id)
      .exec();
    this.#lastError.delete(id);
  }

  /** Reset the idle time of messages still being handled, so nobody claims them. */
  async #heartbeat(): Promise<void> {
    const ids = [...this.#inflight.keys()];
    if (ids.length === 0) return;
    const o = this.#o;
    try {
      await this.#redis.xclaim(o.stream, o.group, o.consumer, 0, ...ids, 'JUSTID');
    } catch (e) {
      o.onError?.('queue heartbeat', e as Error);
    }
  }
}
