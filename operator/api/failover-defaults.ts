// database.failoverSeconds has no schema default: its default depends on the mode, and the
// model fills it in (a CRD default cannot depend on another field).
// - synchronous: 10 s, by the operator's release of a silent primary's lock (only the
//   synchronous standby, which holds every acknowledged commit, can take it);
// - asynchronous: 30 s, Patroni's own lease (its default ttl): a replica promoted early may
//   lack acknowledged writes, so no early release; the pod's fence gets 15 s, so Patroni
//   stalling for up to 15 s (a GC pause, CPU starvation) costs nothing.
export const DEFAULT_FAILOVER_SECONDS = { synchronous: 10, asynchronous: 30 } as const;

/** Below this failoverSeconds an asynchronous shard is refused (Patroni's shortest lease). */
export const ASYNC_MIN_FAILOVER_SECONDS = 20;

export const defaultFailoverSeconds = (synchronous: boolean): number =>
  synchronous ? DEFAULT_FAILOVER_SECONDS.synchronous : DEFAULT_FAILOVER_SECONDS.asynchronous;
