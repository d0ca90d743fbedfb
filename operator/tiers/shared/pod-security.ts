// Pod Security Standard "restricted", applied to every pod the operator creates.
import type { AppModel } from '../../api/model.ts';

/** Pod-level context: non-root, a fixed UID/GID, RuntimeDefault seccomp. */
export function restrictedPodSecurityContext(uid = 10001) {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: uid,
    fsGroup: uid,
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/** Container-level context: no privilege escalation, every capability dropped. */
export function restrictedContainerSecurityContext() {
  return {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    privileged: false,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/** Spread over zones and nodes, so losing a zone or a node never takes a whole tier. */
export function topologySpreadOf(app: AppModel, selector: Record<string, string>) {
  if (!app.topology.spreadAcrossZones) return undefined;
  return [ZONE_KEY, NODE_KEY].map((topologyKey) => ({
    maxSkew: 1,
    topologyKey,
    whenUnsatisfiable: app.topology.whenUnsatisfiable,
    labelSelector: { matchLabels: selector },
  }));
}

export const ZONE_KEY = 'topology.kubernetes.io/zone';
export const NODE_KEY = 'kubernetes.io/hostname';

/**
 * The members of one replicated data set (a shard's Postgres, a replicated Redis, its
 * Sentinels): copies of the same data or votes of the same quorum, so two on one node are
 * lost together. ScheduleAnyway only scores a spread, and on a 3-node kind cluster it let two
 * of a shard's three members share a node (other scores, or a node short of room, win); and
 * a preferred anti-affinity is a score too. So the node spread is hard (DoNotSchedule,
 * maxSkew 1), which holds exactly when there are nodes to hold it: with N eligible nodes and
 * fewer than N members there is always a node without one, so the global minimum is 0 and no
 * node may take a second; on one node (a laptop) the only domain is always within the skew,
 * and every member runs there. Eligible means untainted or tolerated (nodeTaintsPolicy
 * Honor): a tainted control plane or a cordoned node is no domain, so it neither holds the
 * minimum at 0 forever nor counts as room. whenUnsatisfiable: DoNotSchedule asks for more:
 * minDomains = the member count makes the minimum 0 while there are fewer eligible nodes than
 * members, so a member with no node of its own stays Pending rather than share one (as
 * CloudNativePG's podAntiAffinityType: required). Zones stay as asked (ScheduleAnyway by
 * default: a zone spread that a single-zone cluster cannot meet must not stop it). No
 * matchLabelKeys: every member counts, whatever revision its pod runs.
 */
export function memberSpreadOf(
  app: AppModel,
  selector: Record<string, string>,
  members: number,
): TopologySpread[] {
  const required = app.topology.whenUnsatisfiable === 'DoNotSchedule';
  const labelSelector = { matchLabels: selector };
  const node: TopologySpread = {
    maxSkew: 1,
    topologyKey: NODE_KEY,
    whenUnsatisfiable: 'DoNotSchedule',
    nodeTaintsPolicy: 'Honor',
    labelSelector,
    ...(required && members > 1 ? { minDomains: members } : {}),
  };
  if (!app.topology.spreadAcrossZones) return [node];
  const zone: TopologySpread = {
    maxSkew: 1,
    topologyKey: ZONE_KEY,
    whenUnsatisfiable: app.topology.whenUnsatisfiable,
    nodeTaintsPolicy: 'Honor',
    labelSelector,
  };
  return [zone, node];
}

export interface TopologySpread {
  readonly maxSkew: number;
  readonly topologyKey: string;
  readonly whenUnsatisfiable: 'DoNotSchedule' | 'ScheduleAnyway';
  readonly nodeTaintsPolicy?: 'Honor' | 'Ignore';
  readonly minDomains?: number;
  readonly labelSelector: { readonly matchLabels: Record<string, string> };
}
