// What the operator may do, written down once: no wildcards. The Helm chart's ClusterRole
// and leader-election Role are generated from this file (`npm run gen:chart`; a unit test
// fails when charts/ is stale). Children: the verbs apply, prune and watch need, for every
// kind in OWNED_KINDS.
import {
  APP_KIND,
  EVENT_KIND,
  LEASE_KIND,
  OWNED_KINDS,
  POD_KIND,
  PVC_KIND,
} from './reconcile/kinds.ts';
import type { KindInfo } from './reconcile/kinds.ts';
import { CA_SECRET_NAME } from './reconcile/certificates.ts';
import { DEFAULT_RBAC } from './api/model.ts';

export interface PolicyRule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly resourceNames?: readonly string[];
  readonly verbs: readonly string[];
}

/**
 * Informers list and watch; apply is a PATCH (and needs create when the object is absent);
 * prune is a DELETE. No get: the reconciler reads children from its caches, never one by one
 * (the exceptions are listed below). Minimal as measured: test/integration/rbac-minimal.test.ts
 * drives one operator bound to exactly these rules through every right and asserts from the
 * API server's audit log that each was used and none refused; `npm run rbac:audit` lists
 * which rights a whole integration run's ServiceAccount-bound operators used.
 */
const WATCH = ['list', 'watch'] as const;
const MANAGE = [...WATCH, 'create', 'patch', 'delete'] as const;

function grouped(kinds: readonly KindInfo[], verbs: readonly string[]): PolicyRule[] {
  const byGroup = new Map<string, string[]>();
  for (const k of kinds) byGroup.set(k.group, [...(byGroup.get(k.group) ?? []), k.plural]);
  return [...byGroup].map(([group, resources]) => ({
    apiGroups: [group],
    resources: [...new Set(resources)],
    verbs,
  }));
}

/**
 * Held only to be granted, never used as a request of its own: `bind` on the chart's Patroni
 * ClusterRole (tiers/database/rbac.ts), which lets the operator write the RoleBinding that
 * gives Patroni its rights without holding them. RBAC checks it when the RoleBinding is
 * created; the audit check (test/integration/rbac-audit.ts) tells it apart from rights used.
 * Before, the operator held Patroni's rights itself (pod get/update/patch and ConfigMap update
 * in every namespace) only to be allowed to write Patroni a Role.
 */
export const grantOnlyRules = (
  patroniClusterRole: string = DEFAULT_RBAC.patroniClusterRole,
): readonly PolicyRule[] => [
  {
    apiGroups: ['rbac.authorization.k8s.io'],
    resources: ['clusterroles'],
    resourceNames: [patroniClusterRole],
    verbs: ['bind'],
  },
];
export const GRANT_ONLY_RULES: readonly PolicyRule[] = grantOnlyRules();

/**
 * pods/exec: the database tier's resharding runs its SQL inside a shard's primary pod, over
 * the pod's socket as the superuser (tiers/database/shard-sql-exec.ts): the superuser has no
 * TCP login, and the operator reads no password. Used only where kubelets run pods (kind), so
 * the integration control plane's audit (rbac-minimal.test.ts) cannot see it used: exempt.
 */
export const KUBELET_ONLY_RULES: readonly PolicyRule[] = [
  // get: the exec's WebSocket upgrade is a GET (refused on kind 1.36 without it); create:
  // the same exec as a POST, and what newer API servers check for the upgrade too.
  { apiGroups: [POD_KIND.group], resources: [`${POD_KIND.plural}/exec`], verbs: ['create', 'get'] },
];

/**
 * ClusterRole rules: the operator watches apps in every namespace. The chart's admission
 * policy (operator/admission.ts) narrows them further: no write in kube-system, only objects
 * labelled with an app, no Secret of another type than Opaque or kubernetes.io/tls, no
 * RoleBinding but Patroni's.
 */
export function operatorRules(
  patroniClusterRole: string = DEFAULT_RBAC.patroniClusterRole,
): readonly PolicyRule[] {
  return [
    // patch: the data finalizer (deletionPolicy: Delete) on the app itself.
    { apiGroups: [APP_KIND.group], resources: [APP_KIND.plural], verbs: [...WATCH, 'patch'] },
    // One merge patch per status change.
    { apiGroups: [APP_KIND.group], resources: [`${APP_KIND.plural}/status`], verbs: ['patch'] },
    ...grouped(
      OWNED_KINDS.filter((k) => !k.createOnly && !k.neverPruned && !k.pruneOnly),
      [...MANAGE],
    ),
    // The web tier's HPA is wanted for as long as its app exists: never pruned, so no delete
    // (kinds.ts neverPruned; the audit test found delete unused).
    ...grouped(
      OWNED_KINDS.filter((k) => !k.createOnly && k.neverPruned),
      [...WATCH, 'create', 'patch'],
    ),
    // Kinds no tier builds any more, watched only to prune what an earlier version created
    // (Patroni's per-app Role): no create, no patch.
    ...grouped(
      OWNED_KINDS.filter((k) => k.pruneOnly),
      [...WATCH, 'delete'],
    ),
    // Generated Secrets: create and delete only. No get, list or watch (the operator never
    // reads a Secret, so it cannot leak one), no patch (its answer would be the whole
    // Secret). Delete, by name: a database's password Secrets carry no owner (they must
    // outlive the app under Retain), so deletionPolicy: Delete has the finalizer delete them
    // with the data. Update: a renewed TLS certificate replaces its Secret whole (PUT), and a
    // PUT answers with what was sent, so it reads nothing (reconcile/certificates.ts).
    ...grouped(
      OWNED_KINDS.filter((k) => k.createOnly),
      ['create', 'update', 'delete'],
    ),
    // get: the database tier's hooks read Patroni's ConfigMaps and a shard's StatefulSet fresh
    // from the API server (tiers/database/rollout-step.ts, dcs-sync.ts).
    { apiGroups: [''], resources: ['configmaps'], verbs: ['get'] },
    { apiGroups: ['apps'], resources: ['statefulsets'], verbs: ['get'] },
    // delete: the database tier restarts Postgres pods itself, replicas before the primary.
    { apiGroups: [POD_KIND.group], resources: [POD_KIND.plural], verbs: [...WATCH, 'delete'] },
    // Volumes: listed and deleted only by the data clean-up of deletionPolicy: Delete.
    { apiGroups: [PVC_KIND.group], resources: [PVC_KIND.plural], verbs: ['list', 'delete'] },
    { apiGroups: [EVENT_KIND.group], resources: [EVENT_KIND.plural], verbs: ['create'] },
    ...grantOnlyRules(patroniClusterRole),
    ...KUBELET_ONLY_RULES,
  ];
}

/** The rules with the default Patroni ClusterRole name (the chart names it after the release). */
export const OPERATOR_RULES: readonly PolicyRule[] = operatorRules();

/**
 * Role in the operator's own namespace: its leader-election Lease, only that one by name, and
 * its CA Secret, only that one by name. Namespaced on purpose: write access to Leases
 * cluster-wide would reach the node heartbeats (kube-node-lease) and other controllers' leader
 * elections. `create` cannot be limited by name (RBAC does not know the name before the object
 * exists); a created Lease or Secret of another name is still not readable or writable
 * afterwards.
 */
export function leaderElectionRules(leaseName: string): readonly PolicyRule[] {
  return [
    { apiGroups: [LEASE_KIND.group], resources: [LEASE_KIND.plural], verbs: ['create'] },
    {
      apiGroups: [LEASE_KIND.group],
      resources: [LEASE_KIND.plural],
      resourceNames: [leaseName],
      verbs: ['get', 'update'],
    },
    // The apps' CAs (reconcile/certificates.ts caStore): one Secret, created once, then read
    // and updated (a PUT with the resourceVersion read) as apps get or rotate their CA.
    { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
    {
      apiGroups: [''],
      resources: ['secrets'],
      resourceNames: [CA_SECRET_NAME],
      verbs: ['get', 'update'],
    },
  ];
}

/** As a ClusterRole object (the chart adds its labels). */
export function clusterRole(name = 'scalable-operator'): Record<string, unknown> {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name },
    rules: OPERATOR_RULES.map((r) => ({ ...r })),
  };
}

/**
 * Watch-namespaces mode (SCALABLE_WATCH_NAMESPACES): the same rules as a Role in each
 * watched namespace, and no cluster-wide grant at all.
 */
export function namespacedRole(name: string, namespace: string): Record<string, unknown> {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name, namespace },
    rules: OPERATOR_RULES.map((r) => ({ ...r })),
  };
}

/** The leader-election Role, in the namespace the operator runs in. */
export function leaderElectionRole(
  name: string,
  namespace: string,
  leaseName: string,
): Record<string, unknown> {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name, namespace },
    rules: leaderElectionRules(leaseName).map((r) => ({ ...r })),
  };
}
