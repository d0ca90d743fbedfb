// Every kind the operator writes, watched or pruned: the one table that informers, the
// applier, pruning, discovery and RBAC (operator/rbac.ts) all read.
import { GROUP, PLURAL, VERSION } from '../api/schema.ts';

export interface KindInfo {
  readonly group: string; // '' for the core group
  readonly version: string;
  readonly kind: string;
  readonly plural: string;
  /** Served only when an add-on is installed (KEDA, Prometheus Operator, Gateway API, Traefik, cert-manager). */
  readonly optional: boolean;
  /**
   * Created once and never read back (generated Secrets): no informer, and RBAC grants only
   * `create`. A cluster-wide list/watch of Secrets would let the operator (or whoever takes
   * it over) read every Secret of the cluster; create answers 201 or 409 AlreadyExists, which
   * is all the reconciler needs to know.
   */
  readonly createOnly?: boolean;
  /**
   * Never pruned, so RBAC grants no `delete`: while its app exists the app always wants its
   * one object of this kind, which goes with the app (ownerReference, garbage collector).
   */
  readonly neverPruned?: boolean;
  /**
   * No tier builds it any more: watched and pruned only, to remove what an earlier version
   * created (RBAC: list, watch, delete).
   */
  readonly pruneOnly?: boolean;
}

const k = (
  group: string,
  version: string,
  kind: string,
  plural: string,
  optional = false,
): KindInfo => ({ group, version, kind, plural, optional });

/** Kinds the tiers build (now or soon), in apply order: dependencies first. */
export const OWNED_KINDS: readonly KindInfo[] = [
  k('', 'v1', 'ServiceAccount', 'serviceaccounts'),
  // Patroni's per-app Role until issue 36; its rights now come from the chart's ClusterRole.
  { ...k('rbac.authorization.k8s.io', 'v1', 'Role', 'roles'), pruneOnly: true },
  k('rbac.authorization.k8s.io', 'v1', 'RoleBinding', 'rolebindings'),
  // cert-manager: a CA Issuer before the Certificates it signs (shared/tls/cert-manager.ts).
  k('cert-manager.io', 'v1', 'Issuer', 'issuers', true),
  k('cert-manager.io', 'v1', 'Certificate', 'certificates', true),
  { ...k('', 'v1', 'Secret', 'secrets'), createOnly: true },
  k('', 'v1', 'ConfigMap', 'configmaps'),
  k('', 'v1', 'Service', 'services'),
  k('apps', 'v1', 'Deployment', 'deployments'),
  k('apps', 'v1', 'StatefulSet', 'statefulsets'),
  // The web tier's one HPA, <app>-web: web is required and always autoscaled.
  {
    ...k('autoscaling', 'v2', 'HorizontalPodAutoscaler', 'horizontalpodautoscalers'),
    neverPruned: true,
  },
  k('policy', 'v1', 'PodDisruptionBudget', 'poddisruptionbudgets'),
  k('networking.k8s.io', 'v1', 'NetworkPolicy', 'networkpolicies'),
  k('networking.k8s.io', 'v1', 'Ingress', 'ingresses'),
  k('gateway.networking.k8s.io', 'v1', 'HTTPRoute', 'httproutes', true),
  k('traefik.io', 'v1alpha1', 'Middleware', 'middlewares', true),
  k('keda.sh', 'v1alpha1', 'TriggerAuthentication', 'triggerauthentications', true),
  k('keda.sh', 'v1alpha1', 'ScaledObject', 'scaledobjects', true),
  k('monitoring.coreos.com', 'v1', 'PodMonitor', 'podmonitors', true),
  k('monitoring.coreos.com', 'v1', 'PrometheusRule', 'prometheusrules', true),
];

/** Volumes of StatefulSets: never applied or pruned; deleted only by a tier's data clean-up. */
export const PVC_KIND: KindInfo = k('', 'v1', 'PersistentVolumeClaim', 'persistentvolumeclaims');

export const POD_KIND: KindInfo = k('', 'v1', 'Pod', 'pods');
export const LEASE_KIND: KindInfo = k('coordination.k8s.io', 'v1', 'Lease', 'leases');
export const EVENT_KIND: KindInfo = k('', 'v1', 'Event', 'events');
export const APP_KIND: KindInfo = k(GROUP, VERSION, 'ScalableApp', PLURAL);

export const apiVersionOf = (info: KindInfo): string =>
  info.group === '' ? info.version : `${info.group}/${info.version}`;

export const groupVersionOf = apiVersionOf;

// The app itself too: a tier's watch reads it and writes its own part of its status.
const BY_API_KIND = new Map(
  [...OWNED_KINDS, PVC_KIND, POD_KIND, APP_KIND].map((info) => [
    `${apiVersionOf(info)}|${info.kind}`,
    info,
  ]),
);

export const kindOf = (apiVersion: string, kind: string): KindInfo | undefined =>
  BY_API_KIND.get(`${apiVersion}|${kind}`);

/** REST path of a collection (all namespaces when namespace is undefined) or one object. */
export function pathOf(info: KindInfo, namespace?: string, name?: string, sub?: string): string {
  const base = info.group === '' ? `/api/${info.version}` : `/apis/${info.group}/${info.version}`;
  const ns = namespace === undefined ? '' : `/namespaces/${encodeURIComponent(namespace)}`;
  const obj = name === undefined ? '' : `/${encodeURIComponent(name)}`;
  return `${base}${ns}/${info.plural}${obj}${sub ? `/${sub}` : ''}`;
}
