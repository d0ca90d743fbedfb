// The subset of the API server's CEL CIDR library (k8s.io/apiserver/pkg/cel/library/cidr.go)
// the rule table uses, so `scalable validate` checks ipBlock CIDRs as the CRD's
// x-kubernetes-validations do. Parsing follows Go's netip.ParsePrefix: no zones, no
// leading zeros, host bits allowed.
import { BlockList, isIP } from 'node:net';
import { CelScalar, celFunc, celMethod, mapType } from '@bufbuild/cel';
import type { CelFunc } from '@bufbuild/cel';

export interface Cidr {
  readonly address: string;
  readonly family: 4 | 6;
  readonly prefix: number;
}

/** A CIDR such as 10.0.0.0/8 or 2001:db8::/32, or undefined when it is not one. */
export function parseCidr(value: string): Cidr | undefined {
  const slash = value.indexOf('/');
  if (slash < 0) return undefined;
  const address = value.slice(0, slash);
  const bits = value.slice(slash + 1);
  const family = isIP(address);
  if ((family !== 4 && family !== 6) || address.includes('%')) return undefined;
  if (!/^(0|[1-9][0-9]{0,2})$/.test(bits)) return undefined;
  const prefix = Number(bits);
  return prefix <= (family === 4 ? 32 : 128) ? { address, family, prefix } : undefined;
}

/** Whether `inner` lies within `outer` (same family, prefix at least as long). */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || inner.prefix < outer.prefix) return false;
  const type = outer.family === 4 ? 'ipv4' : 'ipv6';
  const block = new BlockList();
  block.addSubnet(outer.address, outer.prefix, type);
  return block.check(inner.address, type);
}

// @bufbuild/cel has no opaque types: a CIDR is a map holding its parsed parts.
const CIDR = mapType(CelScalar.STRING, CelScalar.DYN);
type M = ReadonlyMap<string, unknown> & { get(k: string): unknown };
const toMap = (c: Cidr) =>
  new Map<string, string | bigint>([
    ['address', c.address],
    ['family', BigInt(c.family)],
    ['prefix', BigInt(c.prefix)],
  ]);
const fromMap = (m: unknown): Cidr => {
  const map = m as M;
  return {
    address: String(map.get('address')),
    family: Number(map.get('family')) === 4 ? 4 : 6,
    prefix: Number(map.get('prefix')),
  };
};

export const CIDR_FUNCS: readonly CelFunc[] = [
  celFunc('isCIDR', [CelScalar.STRING], CelScalar.BOOL, (s) => parseCidr(s) !== undefined),
  celFunc('cidr', [CelScalar.STRING], CIDR, (s) => {
    const c = parseCidr(s);
    if (!c) throw new Error(`network address parse error during conversion from string: ${s}`);
    return toMap(c);
  }),
  celMethod('containsCIDR', CIDR, [CIDR], CelScalar.BOOL, function (other) {
    return cidrContains(fromMap(this), fromMap(other));
  }),
  celMethod('prefixLength', CIDR, [], CelScalar.INT, function () {
    return BigInt(fromMap(this).prefix);
  }),
];
