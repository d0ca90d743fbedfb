// The AppModel: a validated, fully defaulted, read-only view of one ScalableApp, with
// switched-off sections removed, so builders only ask "is the section there?".
import { DEFAULT_IMAGES } from './images.ts';
import type { Images } from './images.ts';
import { defaultFailoverSeconds } from './failover-defaults.ts';
import type { ScalableAppObject, ScalableAppSpecModel } from './schema.ts';

export type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

type Spec = DeepReadonly<ScalableAppSpecModel>;

/** The database section with its mode-dependent default filled in. */
export type DatabaseModel = Omit<NonNullable<Spec['database']>, 'failoverSeconds'> & {
  readonly failoverSeconds: number;
};

/** PgBouncer in front of each shard's primary, when database.pooler is present. */
export type PoolerModel = NonNullable<DatabaseModel['pooler']>;

export interface AppModel {
  readonly name: string;
  readonly namespace: string;
  /** UID of the ScalableApp, for owner references; absent when rendering offline. */
  readonly uid?: string;
  readonly web: Spec['web'];
  readonly ingress?: NonNullable<Spec['ingress']>;
  readonly cdn?: NonNullable<Spec['cdn']>;
  readonly cache?: NonNullable<Spec['cache']>;
  readonly sessions?: NonNullable<Spec['sessions']>;
  readonly database?: DatabaseModel;
  readonly queue?: NonNullable<Spec['queue']>;
  readonly monitoring?: NonNullable<Spec['monitoring']>;
  readonly topology: Spec['topology'];
  readonly images: Images;
  readonly network: NetworkDefaults;
  readonly rbac: RbacDefaults;
}

/**
 * What the chart installs beside the operator that builders name: the ClusterRole Patroni is
 * bound to (a RoleBinding per app). The operator holds only `bind` on it, never its rights.
 */
export interface RbacDefaults {
  readonly patroniClusterRole: string;
}

export const DEFAULT_RBAC: RbacDefaults = { patroniClusterRole: 'scalable-operator-patroni' };

/**
 * Operator-wide network defaults (Helm values -> SCALABLE_* env), never per app today:
 * who may reach an app's web pods (the ingress controllers' namespaces) and its metrics
 * ports (Prometheus's namespaces), and where the data tiers' pods may send DNS queries.
 */
export interface NetworkDefaults {
  readonly ingressNamespaces: readonly string[];
  readonly monitoringNamespaces: readonly string[];
  readonly dns: DnsPeers;
  /**
   * The API server's addresses (the kubernetes Service's cluster IP and its endpoints), the
   * only peers Patroni may reach on the API server's ports. Empty: by port alone (offline
   * renders; a cluster where the chart could not look them up).
   */
  readonly apiServerCidrs: readonly string[];
}

/**
 * The cluster's DNS servers, the only peers a data-tier pod may send to on port 53: DNS to
 * any address would be a channel out of the cluster (and let a redirected client reach any
 * listener on :53). Pods by namespace and labels (kube-dns / CoreDNS), plus addresses for
 * servers that are not pods, e.g. node-local DNS on a link-local IP.
 */
export interface DnsPeers {
  readonly namespace: string;
  readonly podLabels: Readonly<Record<string, string>>;
  readonly cidrs: readonly string[];
}

/** The usual ingress and gateway controllers' namespaces, and the usual Prometheus one. */
export const DEFAULT_NETWORK: NetworkDefaults = {
  ingressNamespaces: [
    'ingress-nginx',
    'traefik',
    'haproxy-controller',
    'envoy-gateway-system',
    'kube-system',
  ],
  monitoringNamespaces: ['monitoring'],
  // CoreDNS keeps kube-dns's label in kubeadm, kind, EKS, GKE and AKS clusters.
  dns: { namespace: 'kube-system', podLabels: { 'k8s-app': 'kube-dns' }, cidrs: [] },
  apiServerCidrs: [],
};

export interface ModelOptions {
  readonly images?: Images;
  readonly network?: NetworkDefaults;
  readonly rbac?: RbacDefaults;
  /** Namespace for apps that name none (kubectl's default). */
  readonly defaultNamespace?: string;
}

/** Pure: a validated ScalableApp -> its model. `enabled: false` switches a section off. */
export function toModel(app: ScalableAppObject, options: ModelOptions = {}): AppModel {
  const s = app.spec;
  return deepFreeze({
    name: app.metadata.name,
    namespace: app.metadata.namespace ?? options.defaultNamespace ?? 'default',
    ...(app.metadata.uid ? { uid: app.metadata.uid } : {}),
    web: s.web,
    ...(s.ingress ? { ingress: s.ingress } : {}),
    ...(s.cdn ? { cdn: s.cdn } : {}),
    ...(s.cache && s.cache.enabled ? { cache: s.cache } : {}),
    ...(s.sessions ? { sessions: s.sessions } : {}),
    ...(s.database && s.database.enabled
      ? {
          database: {
            ...s.database,
            failoverSeconds:
              s.database.failoverSeconds ?? defaultFailoverSeconds(s.database.synchronous),
          },
        }
      : {}),
    ...(s.queue ? { queue: s.queue } : {}),
    ...(s.monitoring && s.monitoring.enabled ? { monitoring: s.monitoring } : {}),
    topology: s.topology,
    images: options.images ?? DEFAULT_IMAGES,
    network: options.network ?? DEFAULT_NETWORK,
    rbac: options.rbac ?? DEFAULT_RBAC,
  });
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
