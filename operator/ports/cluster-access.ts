// The cluster port of tiers: what a tier's hooks and watches may do to the cluster
// (tiers/tier.ts, tiers/watch.ts).

import type { PodExec } from './pod-exec.ts';

/** A write lost to a concurrent change (HTTP 409); the reconcile is retried. */
export class ConflictError extends Error {
  override readonly name = 'ConflictError';
}

/**
 * The little of the cluster a hook may touch, by apiVersion and kind; the reconciler
 * implements it over its client (reconcile/cluster-access.ts), so tiers never import the
 * runtime. Reads go to the API server, not the caches: hooks read objects the operator does
 * not watch.
 */
export interface ClusterAccess {
  /** The object, or undefined when it does not exist. */
  get(apiVersion: string, kind: string, namespace: string, name: string): Promise<Json | undefined>;
  list(apiVersion: string, kind: string, namespace: string, labelSelector: string): Promise<Json[]>;
  /**
   * JSON merge patch (of the object, or of its `status` subresource); a resourceVersion in the
   * body makes a concurrent change a ConflictError.
   */
  mergePatch(
    apiVersion: string,
    kind: string,
    namespace: string,
    name: string,
    body: Json,
    subresource?: 'status',
  ): Promise<Json>;
  /**
   * Creates an object the operator does not own (e.g. Patroni's `<scope>-failover` ConfigMap,
   * which exists only after a first switchover); a 409 is a ConflictError.
   */
  create(apiVersion: string, kind: string, namespace: string, body: Json): Promise<Json>;
  /**
   * Deletes (background propagation); `uid` guards against deleting a successor;
   * `gracePeriodSeconds` overrides the pod's own (a fenced primary needs no clean shutdown);
   * `resourceVersion` deletes only that version: a change since is a ConflictError (not
   * swallowed as a uid mismatch is), so the caller knows nothing was deleted.
   */
  delete(
    apiVersion: string,
    kind: string,
    namespace: string,
    name: string,
    uid?: string,
    gracePeriodSeconds?: number,
    resourceVersion?: string,
  ): Promise<void>;
  /** A command in a pod's container (pods/exec); absent where the client cannot run one. */
  readonly exec?: PodExec;
}

type Json = Record<string, unknown>;
