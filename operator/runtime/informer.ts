// A list-watch cache for one kind, built for a controller that must not go blind:
// - 410 Gone (a too-old resourceVersion) relists;
// - any other watch end (server timeout, connection loss, API server restart) re-watches
//   from the last resourceVersion after a capped backoff, and relists after repeated errors;
// - a watchdog ends a watch that stayed silent longer than idleMs (bookmarks keep a healthy
//   watch talking), so a half-open connection cannot stall the cache;
// - objects are stored through a projection, so the cache holds only what the operator reads.
// @kubernetes/client-node's informer stops on errors other than 410 and keeps whole objects,
// hence this one.
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeClient, WatchEvent } from './kube-client.ts';
import { ApiError } from './kube-client.ts';
import type { Logger } from './log.ts';

type Json = Record<string, unknown>;

export const WATCH_TIMEOUT_SECONDS = 120;
export const WATCH_TIMEOUT_SPREAD = 60;
/** Longer than any server-side watch timeout: only a stalled watch stays silent this long. */
export const DEFAULT_WATCH_IDLE_MS = (WATCH_TIMEOUT_SECONDS + WATCH_TIMEOUT_SPREAD + 20) * 1000;

export type ChangeType = 'add' | 'update' | 'delete';

export interface InformerOptions<T> {
  readonly client: KubeClient;
  /** Collection path for all namespaces, e.g. /apis/apps/v1/deployments. */
  readonly path: string;
  /** Resource name for logs and metrics. */
  readonly resource: string;
  readonly labelSelector?: string;
  readonly project: (obj: Json) => T;
  /** Secondary index, e.g. the owning app's key; undefined keeps the object out of it. */
  readonly indexOf?: (obj: T) => string | undefined;
  readonly onChange: (type: ChangeType, obj: T) => void;
  readonly log: Logger;
  readonly idleMs?: number;
  readonly pageSize?: number;
  readonly onRestart?: (cause: 'gone' | 'stalled' | 'error' | 'closed') => void;
  /** A list failed (e.g. 403 Forbidden, 404 Not Found); the informer keeps retrying. */
  readonly onListError?: (err: unknown) => void;
}

interface Entry<T> {
  readonly value: T;
  readonly rv: string;
  readonly index: string | undefined;
}

const keyOfRaw = (obj: Json): string => {
  const m = (obj['metadata'] ?? {}) as Json;
  return `${String(m['namespace'] ?? '')}/${String(m['name'] ?? '')}`;
};
const rvOfRaw = (obj: Json): string =>
  String(((obj['metadata'] ?? {}) as Json)['resourceVersion'] ?? '');

export class Informer<T> {
  private readonly store = new Map<string, Entry<T>>();
  private readonly index = new Map<string, Set<string>>();
  private running = false;
  private current: { abort: () => void } | undefined;
  private loop: Promise<void> | undefined;
  private lastRv = '';
  private syncedOnce = false;
  private readonly syncWaiters: Array<() => void> = [];
  /** Wall-clock time of the last list or watch event, for /readyz and debugging. */
  lastContact = 0;

  constructor(private readonly opts: InformerOptions<T>) {}

  get synced(): boolean {
    return this.syncedOnce;
  }

  get size(): number {
    return this.store.size;
  }

  get(key: string): T | undefined {
    return this.store.get(key)?.value;
  }

  list(): T[] {
    return [...this.store.values()].map((e) => e.value);
  }

  byIndex(index: string): T[] {
    const keys = this.index.get(index);
    if (!keys) return [];
    const out: T[] = [];
    for (const k of keys) {
      const e = this.store.get(k);
      if (e) out.push(e.value);
    }
    return out;
  }

  indexKeys(): string[] {
    return [...this.index.keys()];
  }

  whenSynced(): Promise<void> {
    if (this.syncedOnce) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.current?.abort();
    await this.loop;
  }

  private put(key: string, raw: Json): void {
    const value = this.opts.project(raw);
    const rv = rvOfRaw(raw);
    const old = this.store.get(key);
    if (old && old.rv === rv) return;
    const index = this.opts.indexOf?.(value);
    if (old && old.index !== index) this.unindex(key, old.index);
    if (index !== undefined) {
      let set = this.index.get(index);
      if (!set) this.index.set(index, (set = new Set()));
      set.add(key);
    }
    this.store.set(key, { value, rv, index });
    this.opts.onChange(old ? 'update' : 'add', value);
  }

  private remove(key: string): void {
    const old = this.store.get(key);
    if (!old) return;
    this.store.delete(key);
    this.unindex(key, old.index);
    this.opts.onChange('delete', old.value);
  }

  private unindex(key: string, index: string | undefined): void {
    if (index === undefined) return;
    const set = this.index.get(index);
    set?.delete(key);
    if (set && set.size === 0) this.index.delete(index);
  }

  /** A paginated list that replaces the store; returns the list's resourceVersion. */
  private async relist(): Promise<string> {
    const seen = new Set<string>();
    let cont: string | undefined;
    let rv = '';
    do {
      const page = await this.opts.client.request<Json>('GET', this.opts.path, {
        verb: 'list',
        resource: this.opts.resource,
        query: {
          labelSelector: this.opts.labelSelector,
          limit: this.opts.pageSize ?? 500,
          continue: cont,
        },
        timeoutMs: 60_000,
      });
      const meta = (page['metadata'] ?? {}) as Json;
      rv = String(meta['resourceVersion'] ?? rv);
      cont = meta['continue'] ? String(meta['continue']) : undefined;
      for (const item of (page['items'] ?? []) as Json[]) {
        const key = keyOfRaw(item);
        seen.add(key);
        this.put(key, item);
      }
    } while (cont);
    for (const key of [...this.store.keys()]) if (!seen.has(key)) this.remove(key);
    this.lastContact = Date.now();
    return rv;
  }

  private markSynced(): void {
    if (this.syncedOnce) return;
    this.syncedOnce = true;
    for (const w of this.syncWaiters.splice(0)) w();
  }

  private async run(): Promise<void> {
    const { log, resource } = this.opts;
    let failures = 0;
    let needList = true;
    while (this.running) {
      try {
        if (needList) {
          this.lastRv = await this.relist();
          needList = false;
          this.markSynced();
        }
        const outcome = await this.watchOnce();
        if (!this.running) break;
        this.opts.onRestart?.(outcome);
        if (outcome === 'gone') {
          log.info({ resource }, 'watch expired (410 Gone): relisting');
          needList = true;
          failures = 0;
          continue;
        }
        if (outcome === 'closed') {
          failures = 0;
          continue;
        }
        failures += 1;
        // Repeated trouble: the resourceVersion may be gone too; start over from a list.
        if (failures >= 3) needList = true;
      } catch (err) {
        if (!this.running) break;
        failures += 1;
        needList = true;
        const msg = err instanceof Error ? err.message : String(err);
        log.warn({ resource, err: msg, failures }, 'list failed');
        this.opts.onListError?.(err);
        if (err instanceof ApiError && err.code === 410) failures = 0;
      }
      await sleep(Math.min(30_000, 250 * 2 ** Math.min(failures, 7)));
    }
  }

  private async watchOnce(): Promise<'gone' | 'stalled' | 'error' | 'closed'> {
    let ended: 'gone' | 'error' | undefined;
    const handle = this.opts.client.watch(
      this.opts.path,
      {
        labelSelector: this.opts.labelSelector,
        resourceVersion: this.lastRv,
        allowWatchBookmarks: true,
        // The server ends a healthy watch after this (a random spread keeps clients from
        // reconnecting in step), so a watch silent for longer than idleMs is a stalled one.
        timeoutSeconds: WATCH_TIMEOUT_SECONDS + Math.floor(Math.random() * WATCH_TIMEOUT_SPREAD),
      },
      this.opts.resource,
      this.opts.idleMs ?? DEFAULT_WATCH_IDLE_MS,
      (event: WatchEvent) =>
        this.onEvent(event, (cause) => {
          ended = cause;
          handle.abort();
        }),
    );
    this.current = handle;
    const err = await handle.done;
    this.current = undefined;
    if (ended) return ended;
    if (err === null) return 'closed';
    if (err instanceof ApiError && err.code === 410) return 'gone';
    const stalled = err.message.includes('silent for');
    this.opts.log.warn(
      { resource: this.opts.resource, err: err.message },
      stalled ? 'watch stalled: restarting' : 'watch failed: restarting',
    );
    return stalled ? 'stalled' : 'error';
  }

  private onEvent(event: WatchEvent, end: (cause: 'gone' | 'error') => void): void {
    this.lastContact = Date.now();
    const obj = event.object;
    if (event.type === 'ERROR') {
      if (Number(obj['code']) === 410) end('gone');
      else {
        this.opts.log.warn({ resource: this.opts.resource, status: obj }, 'watch error event');
        end('error');
      }
      return;
    }
    const rv = rvOfRaw(obj);
    if (rv) this.lastRv = rv;
    if (event.type === 'BOOKMARK') return;
    const key = keyOfRaw(obj);
    if (event.type === 'DELETED') this.remove(key);
    else this.put(key, obj);
  }
}
