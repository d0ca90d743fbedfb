// Who sets a worker Deployment's replicas depends on whether KEDA is installed, which a pure
// builder cannot know. The sign the reconciler gives us is the live ScaledObject: it exists
// only when keda.sh is served (objects of an API that is not served are skipped) and once we
// have created it. Without one, the worker gets max(minReplicas, 1) replicas of our own, so
// messages are handled (nothing scales); with one, `replicas` is left to KEDA. On the very
// first apply both go out together: the worker starts at that fixed count and KEDA takes the
// field over (down to zero after its cooldown) once the ScaledObject is seen.
import type { AppModel } from '../../api/model.ts';
import type { K8sObject } from '../shared/chart.ts';
import type { LiveView } from '../tier.ts';
import { fixedReplicasOf, isWorker } from './workers.ts';

export function adjustWorkers(
  app: AppModel,
  desired: readonly K8sObject[],
  live: LiveView,
): K8sObject[] {
  const consumers = app.queue?.consumers ?? [];
  return desired.map((o) => {
    if (!isWorker(o)) return o;
    const scaler = desired.find(
      (s) => s.kind === 'ScaledObject' && s.metadata.name === o.metadata.name,
    );
    if (scaler && live.object(scaler)) return o;
    const c = consumers.find((x) => o.metadata.name.endsWith(`-worker-${x.name}`));
    if (!c) return o;
    const spec = o['spec'] as Record<string, unknown>;
    return { ...o, spec: { replicas: fixedReplicasOf(c), ...spec } };
  });
}
