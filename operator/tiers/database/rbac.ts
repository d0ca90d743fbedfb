// What Patroni needs on the Kubernetes API in ConfigMap mode, and nothing more: list and
// watch its pods and ConfigMaps, create the ConfigMaps, and read/patch only the ones named
// after its scopes, and patch only its own pods (role label + status annotation). No
// Endpoints, no Services, no delete. Verified by the Patroni engine test, which runs
// Patroni with a token of exactly this ServiceAccount.
import { k8s } from '../shared/k8s.ts';
import type { Chart } from 'cdk8s';
import type { AppModel } from '../../api/model.ts';
import { metadataOf } from '../shared/meta.ts';
import { PATRONI_CONFIGMAP_KEYS, podName, shardIndexes, shardName, tierName } from './names.ts';

export function patroniRules(app: AppModel) {
  const shards = shardIndexes(app);
  const members = (app.database?.replicasPerShard ?? 0) + 1;
  const configMaps = shards.flatMap((i) =>
    PATRONI_CONFIGMAP_KEYS.map((k) => `${shardName(app, i)}-${k}`),
  );
  const pods = shards.flatMap((i) => Array.from({ length: members }, (_, n) => podName(app, i, n)));
  return [
    // create cannot be limited by name (the name is not known before the object exists).
    { apiGroups: [''], resources: ['configmaps'], verbs: ['create', 'list', 'watch'] },
    {
      apiGroups: [''],
      resources: ['configmaps'],
      resourceNames: configMaps,
      verbs: ['get', 'patch', 'update'],
    },
    { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: [''], resources: ['pods'], resourceNames: pods, verbs: ['patch', 'update'] },
  ];
}

export function patroniRbac(chart: Chart, app: AppModel): void {
  const name = tierName(app);
  const metadata = metadataOf(app, 'database', name, 'postgres');
  new k8s.KubeServiceAccount(chart, 'db-sa', { metadata, automountServiceAccountToken: false });
  new k8s.KubeRole(chart, 'db-role', { metadata, rules: patroniRules(app) });
  new k8s.KubeRoleBinding(chart, 'db-rolebinding', {
    metadata,
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
    subjects: [{ kind: 'ServiceAccount', name, namespace: app.namespace }],
  });
}
