// The one thing to do next about a condition that needs attention: a table from the reasons
// the operator writes (operator/status/compute.ts and each tier's status.ts; a unit test scans
// them so a new reason cannot go without advice) to a sentence a user can act on. Pure.
import { PATRONI_CONFIG_FILE, POD_LAYOUT } from '../../tiers/database/patroni-config.ts';

export interface AdviceContext {
  readonly namespace: string;
  readonly app: string;
}

interface ConditionLike {
  readonly type: string;
  readonly status: string;
  readonly reason: string;
}

const PATRONICTL = `patronictl -c ${POD_LAYOUT.configDir}/${PATRONI_CONFIG_FILE} list`;
const PODS = 'kubectl describe pods -n {ns} -l scalable.dev/app={app},scalable.dev/tier={tier}';
const WAIT =
  "wait for the operator to create what the message names; if it stays missing, read the operator's logs (kubectl logs -n <its namespace> deploy/<its Deployment>)";
const IMAGE =
  'check that the image the message names exists and the nodes can pull it (the images are not published: build them with npm run images and load them, e.g. kind load docker-image), or fix the image in the spec';

/**
 * Reason -> advice. {ns}, {app} and {tier} (the condition's tier: WebReady -> web) are filled
 * in. Reasons of conditions that never need attention (AllTiersReady, PodsReady, ...) are not
 * here; `<Tier>NotReady` on Ready points at that tier's condition (see adviceFor).
 */
export const ADVICE: Readonly<Record<string, string>> = {
  InvalidSpec:
    'fix the field the message names (scalable validate -f <file> checks a spec offline), then apply the app again',
  ApplyFailed:
    'read the object and error in the message (usually a right the operator lacks, or an admission policy); kubectl describe scalableapp -n {ns} {app} lists the events',
  APIUnavailable:
    'install the API the message names (KEDA, the Prometheus Operator, the Gateway API), or remove the spec section that needs it',
  NotFound: WAIT,
  Creating: WAIT,
  RollingOut: `wait for the rollout: kubectl rollout status -n {ns} deployment/{app}-web; if it stops, ${PODS} says why`,
  PodsNotReady: `${PODS}: the events say why the pods are not ready (probe, image, scheduling)`,
  NotReady: `${PODS}: the events say why the pods are not ready (probe, image, scheduling)`,
  NoSentinelQuorum:
    'bring the Sentinel pods back (kubectl get pods -n {ns} -l scalable.dev/app={app},scalable.dev/tier={tier} -o wide: node capacity, a zone outage); they find the master again by themselves',
  ScalerNotReady:
    "kubectl describe scaledobject -n {ns} <the ScaledObject in the message>: KEDA says why it cannot scale, often that it cannot reach the queue's Redis",
  CrashLoopBackOff:
    'kubectl logs -n {ns} <pod> -c <container> --previous (both named in the message): the crash is in its last lines',
  ImagePullBackOff: IMAGE,
  ErrImagePull: IMAGE,
  InvalidImageName: 'fix the image reference in the spec: it is not a valid image name',
  CreateContainerConfigError:
    'kubectl describe pod -n {ns} <pod in the message>: a Secret or ConfigMap key the container needs is missing',
  CreateContainerError:
    'kubectl describe pod -n {ns} <pod in the message>: the container runtime says why it refused the container',
  Unschedulable:
    'add nodes or capacity, or set spec.topology.whenUnsatisfiable: ScheduleAnyway when the zone spread cannot be met (the message says which constraint failed; members of one shard, cache or queue need a node each unless the cluster has fewer nodes than members)',
  MultiplePrimaries: `see which pod holds the leader lock: kubectl -n {ns} exec <pod in the message> -c postgres -- ${PATRONICTL}; the other is fenced once the lock holder is known (docs/runbooks.md, ScalableDatabaseNoPrimary)`,
  MajorVersionMismatch:
    'set spec.database.version back to the major version of the data (the message names it): a major upgrade is not done in place',
  NoPrimary: `kubectl -n {ns} exec {app}-db-<shard>-0 -c postgres -- ${PATRONICTL} shows why no member holds the lock; then docs/runbooks.md, ScalableDatabaseNoPrimary`,
  RollingUpdate:
    'wait: the operator rolls each shard one pod at a time, switching over before it restarts the primary (the message says the next step)',
  ReplicasDegraded:
    'kubectl get pods -n {ns} -l scalable.dev/app={app},scalable.dev/tier=database -o wide: a member that is not Ready (its node lost, or Pending for want of a node of its own: members of a shard never share one) comes back with its node, or once the cluster has a node for it; writes go on meanwhile',
  CacheDegraded:
    'kubectl get pods -n {ns} -l scalable.dev/app={app},scalable.dev/tier=cache -o wide: a Redis or Sentinel that is not Ready (its node lost, or Pending for want of a node of its own) comes back with its node, or once the cluster has a node for it; the cache serves meanwhile',
  ShardMapConflict:
    'restore the recorded ranges (status.shardMap.ranges) in the shard map ConfigMap, or delete the ConfigMap to have the operator publish them again',
};

/** Said for a reason the table does not know (a newer operator, another controller). */
export const GENERIC_ADVICE = 'see kubectl describe scalableapp -n {ns} {app} and its events';

/** Normal states that a plain "status False" test would flag. */
const CALM: Readonly<Record<string, readonly string[]>> = {
  Progressing: ['Stable'],
};
/** Conditions where True is the bad news. */
const ABNORMAL_TRUE = new Set(['Degraded']);
/** A tier switched off keeps its data: said False, nothing to do. */
const INFORMATIONAL = new Set(['DataRetained']);

/** Whether the condition asks for attention. */
export function isProblem(c: ConditionLike): boolean {
  if (ABNORMAL_TRUE.has(c.type)) return c.status === 'True';
  if (c.status !== 'False') return false;
  if (INFORMATIONAL.has(c.reason)) return false;
  return !(CALM[c.type] ?? []).includes(c.reason);
}

const tierOfType = (type: string): string => type.replace(/Ready$/, '').toLowerCase();

/** The advice for a problem condition (null when it is none). */
export function adviceFor(c: ConditionLike, ctx: AdviceContext): string | null {
  if (!isProblem(c)) return null;
  const notReady = /^([A-Z][A-Za-z]*)NotReady$/.exec(c.reason);
  const template = Object.hasOwn(ADVICE, c.reason)
    ? (ADVICE[c.reason] as string)
    : notReady
      ? `see ${notReady[1]}Ready below: the first tier that is not ready, with its own advice`
      : GENERIC_ADVICE;
  return template
    .replaceAll('{ns}', ctx.namespace)
    .replaceAll('{app}', ctx.app)
    .replaceAll('{tier}', tierOfType(c.type));
}
