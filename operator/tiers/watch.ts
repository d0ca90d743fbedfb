// A tier's long-lived watch: work a tier does between reconciles, on events of objects it
// does not own (e.g. the database tier releases the leader lock of a Patroni primary that went
// silent). The runtime creates every tier's watches once (Tier.watches), starts them with the
// operator and stops them at shutdown; a watch runs on every replica, keeps its own cache, and
// writes only while this instance leads. What it needs comes in through WatchPorts, so a tier
// never imports the runtime and the runtime names no tier.
import type { Registry } from 'prom-client';
import type { Logger } from '../ports/log.ts';
import type { ClusterAccess } from '../ports/cluster-access.ts';

export type ChangeType = 'add' | 'update' | 'delete';

/** A cache of one kind, over the namespaces the operator watches. */
export interface CacheSpec<T> {
  readonly apiVersion: string;
  readonly kind: string;
  /** The cache's name in log lines, e.g. 'configmaps (Patroni)'. */
  readonly resource: string;
  readonly labelSelector?: string;
  /** What the cache keeps of each object. */
  readonly project: (obj: Record<string, unknown>) => T;
  readonly onChange?: (type: ChangeType, item: T) => void;
  /** The watch restarted (a gap in what was seen: events may have been missed). */
  readonly onRestart?: () => void;
}

/** An informer-backed cache (relists on 410, restarts stalled watches); the watch starts it. */
export interface WatchedCache<T> {
  readonly synced: boolean;
  list(): T[];
  start(): void;
  stop(): Promise<void>;
}

export interface EventTarget {
  readonly name: string;
  readonly namespace: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
}

export type EventType = 'Normal' | 'Warning';

/** Kubernetes Events on a ScalableApp (deduplicated, fire and forget). */
export interface EventSink {
  emit(target: EventTarget, type: EventType, reason: string, message: string): void;
}

/** An app as the operator's cache holds it. */
export interface WatchedApp {
  readonly uid: string;
  /** The spec as stored (the API server has applied the CRD's defaults). */
  readonly spec: unknown;
  readonly deleting: boolean;
  /** The status as the cache last saw it (may lag the API server's). */
  readonly status?: Readonly<Record<string, unknown>>;
  /** Of what the cache holds: a write conditional on it fails if the app changed since. */
  readonly resourceVersion?: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface WatchedAppKey {
  readonly namespace: string;
  readonly name: string;
}

export interface WatchPorts {
  readonly cache: <T>(spec: CacheSpec<T>) => WatchedCache<T>;
  /** Writes while this instance leads (they end with its term); undefined otherwise. */
  readonly writer: () => ClusterAccess | undefined;
  readonly events: EventSink;
  readonly app: (namespace: string, name: string) => WatchedApp | undefined;
  /** Every app in the cache. */
  readonly apps: () => readonly (WatchedApp & WatchedAppKey)[];
  readonly log: Logger;
  /** The operator's /metrics registry: a watch declares its own metrics here. */
  readonly registry: Registry;
}

export interface Watch {
  start(): void;
  stop(): Promise<void>;
}

export interface TierWatch {
  readonly name: string;
  /** Called once per operator process, before start; declares the watch's metrics. */
  create(ports: WatchPorts): Watch;
}
