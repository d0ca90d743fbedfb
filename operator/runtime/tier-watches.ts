// The runtime's side of tiers' watches (tiers/watch.ts): caches over the namespaces the
// operator watches, by apiVersion and kind, on the same informer as the controller's own.
import { kindOf, pathOf } from '../reconcile/kinds.ts';
import type { CacheSpec, WatchedCache } from '../tiers/watch.ts';
import { InformerSet } from './informer-set.ts';
import type { KubeClient } from './kube-client.ts';
import type { Logger } from './log.ts';

export interface CacheOpenerOptions {
  readonly client: KubeClient;
  /** Namespaces to watch; undefined: all namespaces. */
  readonly namespaces: readonly string[] | undefined;
  readonly log: Logger;
  readonly idleMs?: number;
}

/** WatchPorts.cache: a cache of one kind the operator knows (and so holds RBAC for). */
export function cacheOpener(opts: CacheOpenerOptions) {
  return <T>(spec: CacheSpec<T>): WatchedCache<T> => {
    const info = kindOf(spec.apiVersion, spec.kind);
    if (!info) throw new Error(`the operator does not manage ${spec.apiVersion} ${spec.kind}`);
    const { onChange, onRestart } = spec;
    return new InformerSet<T>(opts.namespaces, (ns) => pathOf(info, ns), {
      client: opts.client,
      log: opts.log,
      resource: spec.resource,
      ...(spec.labelSelector !== undefined ? { labelSelector: spec.labelSelector } : {}),
      project: spec.project,
      onChange: (type, item) => onChange?.(type, item),
      ...(onRestart ? { onRestart: () => onRestart() } : {}),
      ...(opts.idleMs !== undefined ? { idleMs: opts.idleMs } : {}),
    });
  };
}
