// One cache over the namespaces the operator watches: cluster scope is one Informer over all
// namespaces; watch-namespaces mode (SCALABLE_WATCH_NAMESPACES, RBAC as Roles there) is one
// Informer per namespace, since a Role cannot list across namespaces. Read as one cache.
import { Informer } from './informer.ts';
import type { InformerOptions } from './informer.ts';

export class InformerSet<T> {
  /** By namespace; the key '' holds the all-namespaces informer. */
  private readonly parts = new Map<string, Informer<T>>();

  /**
   * pathFor gives a kind's collection path in one namespace, or across all when undefined.
   */
  constructor(
    namespaces: readonly string[] | undefined,
    pathFor: (namespace: string | undefined) => string,
    opts: Omit<InformerOptions<T>, 'path'>,
  ) {
    if (namespaces === undefined)
      this.parts.set('', new Informer({ ...opts, path: pathFor(undefined) }));
    else
      for (const ns of namespaces) this.parts.set(ns, new Informer({ ...opts, path: pathFor(ns) }));
  }

  private all(): Informer<T>[] {
    return [...this.parts.values()];
  }

  get synced(): boolean {
    return this.all().every((i) => i.synced);
  }

  get size(): number {
    return this.all().reduce((n, i) => n + i.size, 0);
  }

  /** By 'namespace/name'. */
  get(key: string): T | undefined {
    const ns = key.slice(0, key.indexOf('/'));
    return (this.parts.get(ns) ?? this.parts.get(''))?.get(key);
  }

  list(): T[] {
    return this.all().flatMap((i) => i.list());
  }

  /** Indexes are app keys ('namespace/app'), so one namespace's informer holds each. */
  byIndex(index: string): T[] {
    const ns = index.slice(0, index.indexOf('/'));
    return (this.parts.get(ns) ?? this.parts.get(''))?.byIndex(index) ?? [];
  }

  whenSynced(): Promise<void> {
    return Promise.all(this.all().map((i) => i.whenSynced())).then(() => undefined);
  }

  start(): void {
    for (const i of this.all()) i.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.all().map((i) => i.stop()));
  }
}
