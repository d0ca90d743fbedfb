// What the reconciler may read and write; the controller wires it to informers and the API.
import type { KubeApi } from '../ports/kube-api.ts';
import type { Logger } from '../ports/log.ts';
import type { EventRecorder } from './events.ts';
import type { AppCas, AppRef } from './certificates.ts';
import type { KindInfo } from './kinds.ts';
import type { Plans, Recent } from './plans.ts';
import type { CachedApp, CachedChild, CachedPod } from './project.ts';

/**
 * Whether a reconcile can act on a kind now: its cache is synced (or it needs none); it is
 * still syncing (the app is reconciled again once it is); or the cluster does not serve it,
 * or refused to list it (403), which the affected tier's condition says.
 */
export type KindAccess =
  | { readonly state: 'ready' }
  | { readonly state: 'syncing' }
  | { readonly state: 'unavailable'; readonly why: string };

export interface ReconcileContext {
  readonly client: KubeApi;
  readonly log: Logger;
  readonly events: EventRecorder;
  readonly getApp: (key: string) => CachedApp | undefined;
  /** Cached children of one app, every owned kind. */
  readonly children: (namespace: string, app: string) => readonly CachedChild[];
  readonly pods: (namespace: string, app: string) => readonly CachedPod[];
  /**
   * Access to a kind an app's desired objects need: starts its cache on first need (only
   * kinds some app needs are watched) and remembers the app to reconcile when it syncs.
   */
  readonly access: (info: KindInfo, appKey: string) => KindAccess;
  /** Writes one reconcile may have in flight at once. */
  readonly concurrency: number;
  /** Our own recent writes, to tell a stale cache from drift (see Recent). */
  readonly recent: Recent;
  /** Model and desired objects per app generation (see Plans). */
  readonly plans: Plans;
  /** An app's CAs (certificates.ts caStore), for the TLS Secrets its tiers declare. */
  readonly certificateAuthority: (app: AppRef) => Promise<AppCas>;
  /** How long a new trust bundle must have been out before the next step relies on it. */
  readonly trustHoldMs?: number;
  readonly onWrite?: (kind: string, action: 'created' | 'updated' | 'deleted') => void;
}
