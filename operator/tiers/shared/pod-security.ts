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
  return ['topology.kubernetes.io/zone', 'kubernetes.io/hostname'].map((topologyKey) => ({
    maxSkew: 1,
    topologyKey,
    whenUnsatisfiable: app.topology.whenUnsatisfiable,
    labelSelector: { matchLabels: selector },
  }));
}
