// Kubernetes quantities: pass-through for manifests, parsing where a builder must compute
// (e.g. Redis maxmemory below the container's memory limit).
import { k8s } from './k8s.ts';

export { parseQuantity } from '../../api/quantity.ts';

export function quantity(value: string | number): k8s.Quantity {
  return typeof value === 'number'
    ? k8s.Quantity.fromNumber(value)
    : k8s.Quantity.fromString(value);
}

/** A tier's `resources` section as a container's requests and limits (CPU limit only if set). */
export function resourcesOf(r: {
  readonly requests: { readonly cpu: string | number; readonly memory: string | number };
  readonly limits: { readonly cpu?: string | number; readonly memory: string | number };
}) {
  return {
    requests: { cpu: quantity(r.requests.cpu), memory: quantity(r.requests.memory) },
    limits: {
      ...(r.limits.cpu !== undefined ? { cpu: quantity(r.limits.cpu) } : {}),
      memory: quantity(r.limits.memory),
    },
  };
}
