// What Patroni needs on the Kubernetes API in ConfigMap mode: list and watch its pods and
// ConfigMaps, create and patch its ConfigMaps, and patch its own pod (role label + status
// annotation). No Endpoints, no Services, no delete.
//
// The rules are one ClusterRole the chart installs (operator/admission.ts renders it), bound
// in the app's namespace by a RoleBinding per app. The operator holds only `bind` on that
// ClusterRole, never the rights themselves (a Role it wrote would need them: RBAC lets a
// subject grant only what it holds). RBAC cannot name objects that do not exist yet, so the
// rules reach every pod and ConfigMap of the namespace; the chart's admission policy
// (<release>-patroni) narrows a member to its own pod's role label and status annotation and
// to its own shards' ConfigMaps.
import { k8s } from '../shared/k8s.ts';
import type { Chart } from 'cdk8s';
import type { AppModel } from '../../api/model.ts';
import { metadataOf } from '../shared/meta.ts';
import { tierName } from './names.ts';

/**
 * A right no API serves, held only through Patroni's ClusterRole: the admission policy asks
 * the authorizer for it to recognise a Patroni member. A wildcard holder (an admin) holds
 * it too, and also NOT_A_MEMBER, which Patroni's role lacks: that tells the two apart.
 */
export const PATRONI_MARKER = {
  group: 'scalable.dev',
  resource: 'patroni',
  member: 'member',
  notMember: 'not-a-member',
} as const;

export const PATRONI_RULES = [
  {
    apiGroups: [''],
    resources: ['configmaps'],
    verbs: ['create', 'get', 'list', 'watch', 'patch', 'update'],
  },
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'patch', 'update'] },
  {
    apiGroups: [PATRONI_MARKER.group],
    resources: [PATRONI_MARKER.resource],
    verbs: [PATRONI_MARKER.member],
  },
] as const;

/** The RoleBinding's name: not the Role-era `<app>-db`, whose roleRef cannot change. */
export const patroniBindingName = (app: AppModel): string => `${tierName(app)}-patroni`;

export function patroniRbac(chart: Chart, app: AppModel): void {
  const name = tierName(app);
  const metadata = metadataOf(app, 'database', name, 'postgres');
  new k8s.KubeServiceAccount(chart, 'db-sa', { metadata, automountServiceAccountToken: false });
  new k8s.KubeRoleBinding(chart, 'db-rolebinding', {
    metadata: metadataOf(app, 'database', patroniBindingName(app), 'postgres'),
    roleRef: {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: app.rbac.patroniClusterRole,
    },
    subjects: [{ kind: 'ServiceAccount', name, namespace: app.namespace }],
  });
}
