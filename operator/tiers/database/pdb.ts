// One pod of a shard at a time may go during drains: Patroni fails over (or the replica
// rebuilds) before the next. A single-pod shard is not blocked: drains must finish.
import { k8s } from '../shared/k8s.ts';
import type { Chart } from 'cdk8s';
import type { AppModel } from '../../api/model.ts';
import { metadataOf } from '../shared/meta.ts';
import { shardName, shardSelector } from './names.ts';

export function shardPdb(chart: Chart, app: AppModel, shard: number): void {
  new k8s.KubePodDisruptionBudget(chart, `pdb-${shard}`, {
    metadata: metadataOf(app, 'database', shardName(app, shard), 'postgres'),
    spec: {
      maxUnavailable: k8s.IntOrString.fromNumber(1),
      selector: { matchLabels: shardSelector(app, shard) },
    },
  });
}
