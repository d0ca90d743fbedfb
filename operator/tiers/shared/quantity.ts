// Kubernetes quantities: pass-through for manifests, parsing where a builder must compute
// (e.g. Redis maxmemory below the container's memory limit).
import { k8s } from './k8s.ts';

export { parseQuantity } from '../../api/quantity.ts';

export function quantity(value: string | number): k8s.Quantity {
  return typeof value === 'number'
    ? k8s.Quantity.fromNumber(value)
    : k8s.Quantity.fromString(value);
}

/**
 * An ephemeral-storage request: the scheduler then counts the container's logs, writable
 * layer and emptyDirs against the node's disk. No limit: exceeding one evicts the pod, and
 * for a database or a Redis master an eviction is a failover.
 */
export const ephemeralStorage = (size: string) => ({ 'ephemeral-storage': quantity(size) });

/** A tier's `resources` section as a container's requests and limits (CPU limit only if set). */
export function resourcesOf(
  r: {
    readonly requests: { readonly cpu: string | number; readonly memory: string | number };
    readonly limits: { readonly cpu?: string | number; readonly memory: string | number };
  },
  ephemeral: string,
) {
  return {
    requests: {
      cpu: quantity(r.requests.cpu),
      memory: quantity(r.requests.memory),
      ...ephemeralStorage(ephemeral),
    },
    limits: {
      ...(r.limits.cpu !== undefined ? { cpu: quantity(r.limits.cpu) } : {}),
      memory: quantity(r.limits.memory),
    },
  };
}
