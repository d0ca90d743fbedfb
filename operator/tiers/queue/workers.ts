// Workers: per consumer a Deployment that KEDA scales on its consumer group's lag, down to
// zero. The Deployment has no `replicas`: the ScaledObject owns the count (KEDA's own HPA
// between 1 and max, the KEDA operator between 0 and 1). Nothing of ours (no HPA) targets
// the same Deployment, so nothing fights KEDA over it.
import { k8s } from '../shared/k8s.ts';
import type { AppModel } from '../../api/model.ts';
import type { AppWiring, EnvVar } from '../tier.ts';
import { synth } from '../shared/chart.ts';
import type { K8sObject } from '../shared/chart.ts';
import { COMPONENT_LABEL, metadataOf, nameOf, selectorOf } from '../shared/meta.ts';
import { resourcesOf } from '../shared/quantity.ts';
import { appDeployment } from '../shared/app-pod.ts';
import { podNameEnv } from '../../engines/redis/pod.ts';
import { ACL_USERS } from '../../engines/redis/config.ts';
import { QUEUE_TIER, queueNames, queueTarget, queueTlsSecretName } from './store.ts';
import { TLS_FILES } from '../shared/tls/objects.ts';
import type { QueueSpec, QueueTarget } from './store.ts';
import { deadLetterStreamOf, groupOf, streamOf } from './streams.ts';
import type { ConsumerSpec } from './streams.ts';

export type { ConsumerSpec };
export { deadLetterStreamOf, groupOf, streamOf };

export const KEDA_API_VERSION = 'keda.sh/v1alpha1';

export const workerName = (app: AppModel, c: Pick<ConsumerSpec, 'name'>): string =>
  nameOf(app, 'worker', c.name);
export const workerComponent = (c: Pick<ConsumerSpec, 'name'>): string => `worker-${c.name}`;

/** Replicas when no ScaledObject scales the workers (KEDA not installed): at least one. */
export const fixedReplicasOf = (c: ConsumerSpec): number => Math.max(c.minReplicas, 1);

/** The consumer side, only on this consumer's pods. */
export function consumerEnv(c: ConsumerSpec): EnvVar[] {
  return [
    { name: 'QUEUE_STREAM', value: streamOf(c) },
    { name: 'QUEUE_GROUP', value: groupOf(c) },
    // The pod name: unique per worker, so a dead worker's pending messages can be told apart.
    { name: 'QUEUE_CONSUMER', valueFrom: podNameEnv.valueFrom ?? {} },
    { name: 'QUEUE_DEAD_LETTER_STREAM', value: deadLetterStreamOf(c) },
    { name: 'QUEUE_MAX_DELIVERIES', value: String(c.maxDeliveries) },
  ];
}

function userEnv(e: ConsumerSpec['env'][number]): EnvVar {
  if (e.value !== undefined) return { name: e.name, value: e.value };
  const ref = e.valueFrom?.secretKeyRef ?? e.valueFrom?.configMapKeyRef;
  const key = { name: ref?.name ?? '', key: ref?.key ?? '' };
  return {
    name: e.name,
    valueFrom: e.valueFrom?.secretKeyRef ? { secretKeyRef: key } : { configMapKeyRef: key },
  };
}

export function buildWorkers(app: AppModel, queue: QueueSpec, wiring: AppWiring): K8sObject[] {
  const n = queueNames(app);
  return synth((chart) => {
    for (const c of queue.consumers) {
      const name = workerName(app, c);
      const component = workerComponent(c);
      // Its own identity, without an API token: a worker talks to Redis, never to Kubernetes.
      new k8s.KubeServiceAccount(chart, `worker-${c.name}-sa`, {
        metadata: metadataOf(app, QUEUE_TIER, name, component),
        automountServiceAccountToken: false,
      });
      const selector = selectorOf(app, QUEUE_TIER, component);
      // A worker serves nothing: no traffic in. Its egress stays open, as the web tier's does:
      // a job may call anything (mail, object storage, other services of the user's).
      new k8s.KubeNetworkPolicy(chart, `worker-${c.name}-netpol`, {
        metadata: metadataOf(app, QUEUE_TIER, name, component),
        spec: { podSelector: { matchLabels: selector }, policyTypes: ['Ingress'] },
      });
      // No replicas: the ScaledObject owns them (see adjust.ts for a cluster without KEDA).
      appDeployment(chart, `worker-${c.name}`, {
        app,
        tier: QUEUE_TIER,
        component,
        name,
        selector,
        wiring,
        // SIGTERM stops reading; this long to finish and ack what the worker holds.
        terminationGracePeriodSeconds: c.terminationGracePeriodSeconds,
        container: {
          name: 'worker',
          image: c.image,
          env: [...wiring.env, ...consumerEnv(c), ...c.env.map(userEnv)] as k8s.EnvVar[],
          // /tmp (up to 256Mi) and logs.
          resources: resourcesOf(c.resources, '256Mi'),
        },
      });
    }
  }).concat(
    queue.consumers.map((c) => scaledObject(app, queue, c, n.keda)),
    [triggerAuthentication(app, queue)],
  );
}

/**
 * KEDA reads the app user's password from the generated Secret; it never appears in the spec
 * (the user name is in the trigger: no secret).
 * With TLS also the CA (PEM) from the store's certificate Secret, which its scalers verify
 * the server against (the name they dial, as the app does: the certificate carries it).
 */
function triggerAuthentication(app: AppModel, queue: QueueSpec): K8sObject {
  const n = queueNames(app);
  // The app user has the same password on the Sentinels as on Redis (start-sentinel.sh).
  const parameters = queue.replicas > 0 ? ['password', 'sentinelPassword'] : ['password'];
  return {
    apiVersion: KEDA_API_VERSION,
    kind: 'TriggerAuthentication',
    metadata: metadataOf(app, QUEUE_TIER, n.keda),
    spec: {
      secretTargetRef: [
        ...parameters.map((parameter) => ({ parameter, name: n.users, key: ACL_USERS.app.key })),
        ...(queue.tls
          ? [{ parameter: 'ca', name: queueTlsSecretName(app), key: TLS_FILES.ca }]
          : []),
      ],
    },
  };
}

/**
 * Two redis-streams triggers on the consumer group, each targeting targetBacklog per worker:
 * - lag (entries not yet delivered to the group): it grows with no worker running, so any
 *   lag (> activationLagCount 0) wakes a worker from zero;
 * - pending (delivered, not yet acknowledged): keeps the workers up until what they hold is
 *   acknowledged, so the cooldown starts when the work is done, not when it was read.
 *   It errors while the group does not exist, and KEDA never scales to zero on an error: the
 *   first worker (the first apply runs one) creates the group when it starts (the SDK does).
 */
function scaledObject(app: AppModel, queue: QueueSpec, c: ConsumerSpec, auth: string): K8sObject {
  const name = workerName(app, c);
  const meta = metadataOf(app, QUEUE_TIER, name, workerComponent(c), {
    // KEDA copies our labels onto the HPA it creates; that HPA is KEDA's, not ours.
    annotations: { 'scaledobject.keda.sh/hpa-excluded-labels': 'app.kubernetes.io/managed-by' },
  });
  return {
    apiVersion: KEDA_API_VERSION,
    kind: 'ScaledObject',
    metadata: meta,
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
      pollingInterval: c.pollingIntervalSeconds,
      cooldownPeriod: c.cooldownSeconds,
      minReplicaCount: c.minReplicas,
      maxReplicaCount: c.maxReplicas,
      triggers: [
        trigger(queueTarget(app, queue), c, auth, queue.tls, {
          lagCount: String(c.targetBacklog),
        }),
        trigger(queueTarget(app, queue), c, auth, queue.tls, {
          pendingEntriesCount: String(c.targetBacklog),
        }),
      ],
    },
  };
}

/**
 * One trigger. TLS is switched on here (enableTLS) rather than in the TriggerAuthentication
 * (`tls: enable`): an auth parameter can only come from a Secret key, and the flag is no
 * secret. KEDA refuses a trigger that sets it in both places.
 */
function trigger(
  to: QueueTarget,
  c: ConsumerSpec,
  auth: string,
  tls: boolean,
  target: Record<string, string>,
) {
  return {
    type: to.kind === 'url' ? 'redis-streams' : 'redis-sentinel-streams',
    metadata: {
      ...(to.kind === 'url'
        ? { address: to.address }
        : { addresses: to.sentinels.join(','), sentinelMaster: to.master }),
      // The app's ACL user (data commands only), on Redis and on the Sentinels.
      username: ACL_USERS.app.user,
      ...(to.kind === 'url' ? {} : { sentinelUsername: ACL_USERS.app.user }),
      stream: streamOf(c),
      consumerGroup: groupOf(c),
      ...target,
      // The activation threshold of either measure (KEDA names it after lag for both).
      activationLagCount: '0',
      ...(tls ? { enableTLS: 'true' } : {}),
    },
    authenticationRef: { name: auth },
  };
}

/** Is this a worker Deployment of ours? (its component label says worker-<name>) */
export const isWorker = (o: K8sObject): boolean =>
  o.kind === 'Deployment' && (o.metadata.labels?.[COMPONENT_LABEL] ?? '').startsWith('worker-');
