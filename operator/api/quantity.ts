// Kubernetes resource quantities as numbers, and the subset of the API server's CEL quantity
// library (k8s.io/apiserver/pkg/cel/library/quantity.go) the rule table uses, so that
// `scalable validate` evaluates quantity rules exactly as the CRD's x-kubernetes-validations do.
import { CelScalar, celFunc, celMethod, mapType } from '@bufbuild/cel';
import type { CelFunc } from '@bufbuild/cel';

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

// @bufbuild/cel has no opaque types: a quantity is a one-key map holding its value. Doubles
// are exact enough for the bounds the rules compare against (powers of two and ten).
const QUANTITY = mapType(CelScalar.STRING, CelScalar.DYN);
const KEY = 'k8s.quantity';
type Q = ReadonlyMap<string, unknown> & { get(k: string): unknown };
const valueOf = (q: unknown): number => Number((q as Q).get(KEY));
const cmp = (a: number, b: number): number => (a < b ? -1 : a > b ? 1 : 0);

export const QUANTITY_FUNCS: readonly CelFunc[] = [
  celFunc('quantity', [CelScalar.STRING], QUANTITY, (s) => new Map([[KEY, parseQuantity(s)]])),
  celFunc('isQuantity', [CelScalar.STRING], CelScalar.BOOL, (s) => {
    try {
      parseQuantity(s);
      return true;
    } catch {
      return false;
    }
  }),
  celMethod('sign', QUANTITY, [], CelScalar.INT, function () {
    return BigInt(Math.sign(valueOf(this)));
  }),
  celMethod('compareTo', QUANTITY, [QUANTITY], CelScalar.INT, function (other) {
    return BigInt(cmp(valueOf(this), valueOf(other)));
  }),
  celMethod('isGreaterThan', QUANTITY, [QUANTITY], CelScalar.BOOL, function (other) {
    return valueOf(this) > valueOf(other);
  }),
  celMethod('isLessThan', QUANTITY, [QUANTITY], CelScalar.BOOL, function (other) {
    return valueOf(this) < valueOf(other);
  }),
];
