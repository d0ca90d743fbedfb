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

export interface PolicyRule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
  readonly resourceNames?: readonly string[];
}

const WATCH = ['get', 'list', 'watch'] as const;
/** apply is a PATCH (create when absent); prune is a DELETE. */
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

/** ClusterRole rules: the operator watches apps in every namespace. */
export const OPERATOR_RULES: readonly PolicyRule[] = [
  // patch: the data finalizer (deletionPolicy: Delete) on the app itself.
  { apiGroups: [APP_KIND.group], resources: [APP_KIND.plural], verbs: [...WATCH, 'patch'] },
  {
    apiGroups: [APP_KIND.group],
    resources: [`${APP_KIND.plural}/status`],
    verbs: ['get', 'patch', 'update'],
  },
  ...grouped(
    OWNED_KINDS.filter((k) => !k.createOnly),
    [...MANAGE],
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
  // The Role the database tier gives Patroni (Kubernetes API as its DCS): RBAC lets us grant
  // only what we hold ourselves (no escalate/bind), so we hold exactly Patroni's needs.
  {
    apiGroups: [''],
    resources: ['endpoints'],
    verbs: [...WATCH, 'create', 'update', 'patch', 'delete'],
  },
  { apiGroups: [''], resources: ['configmaps'], verbs: ['update'] },
  // delete: the database tier restarts Postgres pods itself, replicas before the primary.
  {
    apiGroups: [POD_KIND.group],
    resources: [POD_KIND.plural],
    verbs: [...WATCH, 'update', 'patch', 'delete'],
  },
  { apiGroups: [PVC_KIND.group], resources: [PVC_KIND.plural], verbs: [...WATCH, 'delete'] },
  { apiGroups: [EVENT_KIND.group], resources: [EVENT_KIND.plural], verbs: ['create', 'patch'] },
  { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
];

/**
 * Role in the operator's own namespace: its leader-election Lease and its CA Secret. Namespaced on purpose:
 * write access to Leases cluster-wide would reach the node heartbeats (kube-node-lease)
 * and other controllers' leader elections.
 */
export const LEADER_ELECTION_RULES: readonly PolicyRule[] = [
  {
    apiGroups: [LEASE_KIND.group],
    resources: [LEASE_KIND.plural],
    verbs: ['get', 'create', 'update'],
  },
  // The operator's CA (reconcile/certificates.ts): read and replace that one Secret by name;
  // create cannot be limited to a name, so it is limited to this namespace.
  {
    apiGroups: [''],
    resources: ['secrets'],
    verbs: ['get', 'update'],
    resourceNames: [CA_SECRET_NAME],
  },
  { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
];

/** As a ClusterRole object (the chart adds its labels). */
export function clusterRole(name = 'scalable-operator'): Record<string, unknown> {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name },
    rules: OPERATOR_RULES.map((r) => ({ ...r })),
  };
}

/** The leader-election Role, in the namespace the operator runs in. */
export function leaderElectionRole(name: string, namespace: string): Record<string, unknown> {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name, namespace },
    rules: LEADER_ELECTION_RULES.map((r) => ({ ...r })),
  };
}
