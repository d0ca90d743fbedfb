// The document `scalable status <app> -o json` prints, and what the text view and the diagram
// are drawn from. Its shape is a contract for scripts: fields may be added, never renamed or
// removed, within `apiVersion` scalable.dev/status-v1. Absent knowledge is `null`, never a
// guess (a zone the user may not read, a lag Patroni did not publish).

/** What a pod does in its tier. */
export type PodRole =
  | 'web'
  /** A Postgres member holding its shard's leader lock (Patroni's role label). */
  | 'primary'
  /** A Postgres member named in Patroni's `<scope>-sync` key for the current primary. */
  | 'sync-standby'
  | 'replica'
  /** A Redis without Sentinel: the only pod is the master. */
  | 'master'
  /** A Redis of a Sentinel set: master or replica, which only Sentinel knows. */
  | 'redis'
  | 'sentinel'
  | 'worker';

export interface PodView {
  readonly name: string;
  /** null: not scheduled yet. */
  readonly node: string | null;
  /** The node's topology.kubernetes.io/zone; null: unknown (node unreadable or unlabelled). */
  readonly zone: string | null;
  /** The pod's Ready condition. */
  readonly ready: boolean;
  /** status.phase (Pending, Running, ...), "Terminating" while it is being deleted. */
  readonly phase: string;
  readonly role: PodRole | null;
  /**
   * Postgres replicas: bytes of WAL behind the primary (Patroni's xlog_location of each,
   * from the pods' `status` annotation); null: unknown. Absent on other pods.
   */
  readonly lagBytes?: number | null;
  /** Postgres members: Patroni's state (running, starting, ...); null: not published. */
  readonly patroniState?: string | null;
}

export interface ShardInfo {
  readonly index: number;
  /** The member labelled primary by Patroni; null: none. */
  readonly primary: string | null;
  /** Patroni's synchronous standbys for that primary (empty on an asynchronous shard). */
  readonly syncStandbys: readonly string[];
}

/** One workload of a tier: the web Deployment, a Redis set, its Sentinels, a worker, a shard. */
export interface GroupView {
  readonly name: string;
  readonly kind: 'web' | 'redis' | 'sentinel' | 'worker' | 'shard' | 'other';
  readonly pods: readonly PodView[];
  /**
   * Redis sets: the master's pod when the API can tell (no Sentinel: the one pod); null when
   * only Sentinel knows (`SENTINEL get-master-addr-by-name <sentinelMasterName>`).
   */
  readonly master?: string | null;
  /** Redis sets with Sentinel: the name Sentinel knows the master by. */
  readonly sentinelMasterName?: string;
  readonly shard?: ShardInfo;
}

export interface TierView {
  /** The scalable.dev/tier label: web, cache, sessions, queue, database, or another. */
  readonly tier: string;
  /** Ready over desired pods as the app's status says (e.g. "2/2"); null: not said. */
  readonly ready: string | null;
  readonly groups: readonly GroupView[];
}

export interface ShardMapView {
  readonly version: number;
  readonly configMapName: string;
  readonly buckets: number;
  /** Buckets per shard, from status.shardMap.ranges; every shard of the app, 0 included. */
  readonly perShard: readonly { readonly shard: number; readonly buckets: number }[];
  /**
   * A bucket move in progress, pending, or a conflict, as the app's conditions say
   * (DatabaseReady while status.resharding is there or ReshardingPending, ShardMapConflict on
   * Degraded); null: none.
   */
  readonly move: { readonly reason: string; readonly message: string } | null;
}

export interface UrlView {
  readonly url: string;
  /** Where it comes from: "Ingress shop-web", "HTTPRoute shop-web", "Service shop-web", "status.url". */
  readonly via: string;
}

export interface ConditionView {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  readonly lastTransitionTime: string | null;
  /** Whether this condition asks for attention (False; Degraded True; Progressing stuck). */
  readonly problem: boolean;
  /** The one thing to do next, for a problem; null otherwise. */
  readonly next: string | null;
}

export const STATUS_API_VERSION = 'scalable.dev/status-v1';

export interface StatusDocument {
  readonly apiVersion: typeof STATUS_API_VERSION;
  readonly kind: 'ScalableAppStatus';
  readonly app: {
    readonly namespace: string;
    readonly name: string;
    readonly generation: number | null;
    readonly observedGeneration: number | null;
  };
  /** The Ready condition's status; Unknown before the operator wrote one. */
  readonly ready: 'True' | 'False' | 'Unknown';
  /** Tiers with pods, in the order requests flow: web, cache, sessions, queue, database. */
  readonly tiers: readonly TierView[];
  readonly shardMap: ShardMapView | null;
  readonly urls: readonly UrlView[];
  readonly conditions: readonly ConditionView[];
  /** What could not be read, and so is shown as unknown (e.g. nodes: zone unknown). */
  readonly notes: readonly string[];
}
