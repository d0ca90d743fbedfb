// The client port: what the reconciler, the events and the hooks' ClusterAccess need of the
// Kubernetes API, below both reconcile/ and runtime/ so every import points down. The
// runtime's KubeClient (runtime/kube-client.ts) is the one implementation; tests may hand
// in the same class.

import type { PodExec } from './pod-exec.ts';

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'apply' | 'delete';

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    /** 429: how long the server asked us to wait (Retry-After). */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const isNotFound = (e: unknown): boolean => e instanceof ApiError && e.code === 404;
export const isConflict = (e: unknown): boolean => e instanceof ApiError && e.code === 409;
export const isForbidden = (e: unknown): e is ApiError => e instanceof ApiError && e.code === 403;

export interface RequestOptions {
  readonly verb: Verb;
  /** Resource name for metrics, e.g. deployments or scalableapps/status. */
  readonly resource: string;
  readonly query?: Record<string, string | number | boolean | undefined>;
  readonly body?: unknown;
  readonly contentType?: string;
  /** Hard deadline of the whole request (default 30 s), not a socket idle timeout. */
  readonly timeoutMs?: number;
  /** Aborts the request (e.g. leadership lost). */
  readonly signal?: AbortSignal;
}

export interface KubeApi {
  /** One request; resolves with the parsed JSON body, rejects with ApiError on >= 400. */
  request<T = Record<string, unknown>>(
    method: string | undefined,
    path: string,
    options: RequestOptions,
  ): Promise<T>;
  /** A command in a pod's container (pods/exec); absent where nothing can run one. */
  exec?: PodExec;
}
