// Per shard: <app>-db-<i> selects the pod Patroni labels primary, <app>-db-<i>-ro the pods
// it labels replica, and a headless Service gives the StatefulSet's pods stable DNS.
import { k8s } from '../shared/k8s.ts';
import type { Chart } from 'cdk8s';
import type { AppModel } from '../../api/model.ts';
import { metadataOf } from '../shared/meta.ts';
import {
  PATRONI_PORT,
  POSTGRES_PORT,
  PRIMARY_ROLE,
  REPLICA_ROLE,
  ROLE_LABEL,
  headlessServiceName,
  replicaServiceName,
  shardName,
  shardSelector,
} from './names.ts';

const postgresPort = {
  name: 'postgresql',
  port: POSTGRES_PORT,
  targetPort: k8s.IntOrString.fromString('postgresql'),
};

export function shardServices(chart: Chart, app: AppModel, shard: number): void {
  const selector = shardSelector(app, shard);
  const service = (id: string, name: string, role: string) =>
    new k8s.KubeService(chart, `${id}-${shard}`, {
      metadata: metadataOf(app, 'database', name, 'postgres'),
      spec: {
        type: 'ClusterIP',
        selector: { ...selector, [ROLE_LABEL]: role },
        ports: [postgresPort],
      },
    });
  service('svc-rw', shardName(app, shard), PRIMARY_ROLE);
  service('svc-ro', replicaServiceName(app, shard), REPLICA_ROLE);
  new k8s.KubeService(chart, `svc-hl-${shard}`, {
    metadata: metadataOf(app, 'database', headlessServiceName(app, shard), 'postgres'),
    spec: {
      clusterIp: 'None',
      // Members must resolve each other while bootstrapping, before they are ready.
      publishNotReadyAddresses: true,
      selector,
      ports: [
        postgresPort,
        { name: 'patroni', port: PATRONI_PORT, targetPort: k8s.IntOrString.fromString('patroni') },
      ],
    },
  });
}
