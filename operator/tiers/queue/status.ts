// Pure: the queue's verdict: QueueReady and status.queue. The store must be up for the queue
// to be usable; workers at zero replicas are fine when KEDA scales them (an empty stream).
// KEDA missing is said here, naming it, since the workers then run at fixed replicas.
import type { AppModel } from '../../api/model.ts';
import { SENTINEL_COUNT, SENTINEL_QUORUM } from '../../engines/redis/config.ts';
import { condition, findObject } from '../shared/report.ts';
import type { Observed, TierCondition, TierReport } from '../shared/report.ts';
import { missing, podProblem, ratio, tierStatus, workload } from '../shared/workload-status.ts';
import type { ObjectRef } from '../tier.ts';
import { QUEUE_TIER, queueNames } from './store.ts';
import { KEDA_API_VERSION, fixedReplicasOf, workerName } from './workers.ts';

export const QUEUE_READY = 'QueueReady';

type Json = Record<string, unknown>;

export function queueReport(
  app: AppModel,
  observed: Observed,
  wanted: readonly ObjectRef[],
): TierReport {
  const queue = app.queue;
  if (!queue) return { condition: condition(QUEUE_READY, 'Unknown', 'Off', 'no queue') };
  const n = queueNames(app);
  // The ScaledObjects the cluster serves; none when keda.sh is not installed.
  const keda = wanted.some((w) => w.kind === 'ScaledObject');
  const store = workload(observed, 'StatefulSet', n.queue, queue.replicas + 1);
  const sentinel =
    queue.replicas > 0 ? workload(observed, 'StatefulSet', n.sentinel, SENTINEL_COUNT) : undefined;
  const consumers = queue.consumers.map((c) => {
    const d = findObject(observed, 'Deployment', workerName(app, c));
    const s = (d?.status ?? {}) as Json;
    return {
      name: c.name,
      replicas: typeof s['replicas'] === 'number' ? s['replicas'] : 0,
      scaler: keda ? 'KEDA' : 'None',
    };
  });
  const report = (status: TierCondition['status'], reason: string, message: string) => ({
    condition: condition(QUEUE_READY, status, reason, message),
    fields: { queue: { ...tierStatus(store), consumers } },
  });

  const absent = missing(observed, [
    ['Secret', n.users],
    ['StatefulSet', n.queue],
    ...(sentinel ? [['StatefulSet', n.sentinel] as [string, string]] : []),
    ...queue.consumers.map((c) => ['Deployment', workerName(app, c)] as [string, string]),
    ...(keda
      ? queue.consumers.map((c) => ['ScaledObject', workerName(app, c)] as [string, string])
      : []),
  ]);
  if (absent.length > 0) return report('False', 'Creating', `waiting for ${absent.join(', ')}`);
  const counts =
    `${ratio(store)} queue Redis pods ready` +
    (sentinel ? `, ${ratio(sentinel)} Sentinels ready (quorum ${SENTINEL_QUORUM})` : '');
  if (store.ready < 1 || (sentinel && sentinel.ready < SENTINEL_QUORUM)) {
    const problem = podProblem(app, observed, QUEUE_TIER);
    if (problem) return report('False', problem.reason, `${counts}; ${problem.message}`);
    if (sentinel && store.ready >= 1)
      return report('False', 'NoSentinelQuorum', `${counts}: no failover and no master discovery`);
    return report('False', 'NotReady', counts);
  }
  const workers = consumers.map((c) => `${c.name}: ${c.replicas}`).join(', ');
  if (!keda)
    return report(
      'False',
      'APIUnavailable',
      `KEDA (${KEDA_API_VERSION}) is not installed: workers run at fixed replicas ` +
        `(${queue.consumers.map((c) => `${c.name}: ${fixedReplicasOf(c)}`).join(', ')}) ` +
        'and are not scaled on their backlog; install KEDA to scale them, down to zero',
    );
  // A ScaledObject KEDA cannot act on (e.g. it cannot reach the store) scales nothing.
  for (const c of queue.consumers) {
    const so = findObject(observed, 'ScaledObject', workerName(app, c));
    const conds = (((so?.status ?? {}) as Json)['conditions'] ?? []) as Json[];
    const ready = conds.find((x) => x['type'] === 'Ready');
    if (ready?.['status'] === 'False')
      return report(
        'False',
        'ScalerNotReady',
        `${counts}; ScaledObject ${workerName(app, c)}: ${String(ready['message'] ?? ready['reason'] ?? 'not ready')}`,
      );
  }
  if (store.ready < store.desired || (sentinel && sentinel.ready < sentinel.desired))
    return report('True', 'Degraded', `${counts}; workers ${workers}`);
  if (store.outdated || sentinel?.outdated)
    return report('True', 'Updating', `${counts}; rolling out; workers ${workers}`);
  return report('True', 'Ready', `${counts}; workers ${workers}`);
}

/** What stays when the queue is switched off: the store's volume and its messages. */
export function queueRetained(app: AppModel): string {
  const n = queueNames(app);
  return (
    `the queue is off; its messages stay on the PersistentVolumeClaims data-${n.queue}-<i> ` +
    `(kubectl delete pvc -n ${app.namespace} -l scalable.dev/app=${app.name},scalable.dev/tier=queue deletes them)`
  );
}
