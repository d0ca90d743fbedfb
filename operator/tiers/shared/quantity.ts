// Kubernetes quantities: pass-through for manifests, parsing where a builder must compute
// (e.g. Redis maxmemory below the container's memory limit).
import { k8s } from './k8s.ts';

export function quantity(value: string | number): k8s.Quantity {
  return typeof value === 'number'
    ? k8s.Quantity.fromNumber(value)
    : k8s.Quantity.fromString(value);
}

const BINARY: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const DECIMAL: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

/** A quantity as a plain number (bytes for memory, cores for CPU). */
export function parseQuantity(value: string | number): number {
  if (typeof value === 'number') return value;
  const m = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:([KMGTPE]i)|([numkMGTPE]?)|[eE]([+-]?\d+))$/.exec(
    value.trim(),
  );
  if (!m) throw new Error(`not a quantity: ${value}`);
  const n = Number(m[1]);
  if (m[2]) return n * (BINARY[m[2]] ?? 1);
  if (m[4] !== undefined) return n * 10 ** Number(m[4]);
  return n * (DECIMAL[m[3] ?? ''] ?? 1);
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
