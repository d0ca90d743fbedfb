// What the reconciler may read and write; the controller wires it to informers and the API.
import type { KubeClient } from '../runtime/kube-client.ts';
import type { Logger } from '../runtime/log.ts';
import type { EventRecorder } from './events.ts';
import type { KeyPair } from '../tiers/shared/tls/x509.ts';
import type { KindInfo } from './kinds.ts';
import type { Plans, Recent } from './plans.ts';
import type { CachedApp, CachedChild, CachedPod } from './project.ts';

export interface ReconcileContext {
  readonly client: KubeClient;
  readonly log: Logger;
  readonly events: EventRecorder;
  readonly getApp: (key: string) => CachedApp | undefined;
  /** Cached children of one app, every owned kind. */
  readonly children: (namespace: string, app: string) => readonly CachedChild[];
  readonly pods: (namespace: string, app: string) => readonly CachedPod[];
  /** Whether the cluster serves the kind's API. */
  readonly served: (info: KindInfo) => boolean;
  /** Our own recent writes, to tell a stale cache from drift (see Recent). */
  readonly recent: Recent;
  /** Model and desired objects per app generation (see Plans). */
  readonly plans: Plans;
  /** The operator's CA (certificates.ts caLoader), for the TLS Secrets tiers declare. */
  readonly certificateAuthority: () => Promise<KeyPair>;
  readonly onWrite?: (kind: string, action: 'created' | 'updated' | 'deleted') => void;
}
