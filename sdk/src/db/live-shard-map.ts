// The shard map as the pod sees it: a file in a ConfigMap volume, which the kubelet
// replaces in place (a new timestamped directory, then an atomic swap of the `..data`
// symlink) when the operator publishes a new version. A directory watch reacts within
// milliseconds; a slow poll backs it up where inotify is absent or misses the swap.
// A map that fails to parse, or whose version is older than the one in use, is refused:
// the client keeps routing with the last good map rather than with a wrong one.
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseShardMap } from '../contract/index.ts';
import type { ShardMap } from '../contract/index.ts';

export interface LiveShardMapOptions {
  /** Backstop poll period; the directory watch normally reacts first. */
  readonly pollMs?: number;
  /** A map on disk was refused (bad JSON, gaps, an older version): the old one stays. */
  readonly onRefused?: (reason: Error) => void;
}

export class LiveShardMap {
  #map: ShardMap;
  #text: string;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout;
  #listeners = new Set<(map: ShardMap, previous: ShardMap) => void>();
  readonly #path: string;
  readonly #onRefused: (reason: Error) => void;
  /** Why the last map on disk was refused, until a good one arrives. */
  lastRefusal: Error | undefined;

  constructor(path: string, options: LiveShardMapOptions = {}) {
    this.#path = path;
    this.#onRefused = options.onRefused ?? (() => undefined);
    // The first map must be good: there is nothing to fall back on.
    this.#text = readFileSync(path, 'utf8');
    this.#map = parseShardMap(this.#text);
    try {
      this.#watcher = watch(dirname(path), () => this.refresh());
      this.#watcher.on('error', () => undefined);
      this.#watcher.unref();
    } catch {
      this.#watcher = undefined; // no inotify here: the poll alone follows the file
    }
    this.#timer = setInterval(() => this.refresh(), options.pollMs ?? 5_000);
    this.#timer.unref();
  }

  get current(): ShardMap {
    return this.#map;
  }

  /** Called with the new and the previous map whenever the map in use changes. */
  onChange(listener: (map: ShardMap, previous: ShardMap) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Re-read the file now; true when a new map was taken. */
  refresh(): boolean {
    let text: string;
    try {
      text = readFileSync(this.#path, 'utf8');
    } catch (e) {
      // Mid-swap the old target may be gone for an instant; the next event or poll retries.
      this.#refuse(new Error(`shard map ${this.#path} unreadable: ${String(e)}`));
      return false;
    }
    if (text === this.#text) return false;
    let next: ShardMap;
    try {
      next = parseShardMap(text);
    } catch (e) {
      this.#refuse(new Error(`shard map ${this.#path} refused: ${(e as Error).message}`));
      return false;
    }
    if (next.version < this.#map.version) {
      this.#refuse(
        new Error(`shard map v${next.version} refused: older than v${this.#map.version} in use`),
      );
      return false;
    }
    const previous = this.#map;
    this.#map = next;
    this.#text = text;
    this.lastRefusal = undefined;
    for (const l of this.#listeners) l(next, previous);
    return true;
  }

  close(): void {
    this.#watcher?.close();
    clearInterval(this.#timer);
    this.#listeners.clear();
  }

  #refuse(reason: Error): void {
    if (this.lastRefusal?.message === reason.message) return;
    this.lastRefusal = reason;
    this.#onRefused(reason);
  }
}
