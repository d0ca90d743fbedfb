// "Does the live object already hold what we would apply?" Answering yes skips the write,
// so a converged app costs zero mutating requests. Two checks:
// - the spec-hash annotation says the last apply sent exactly this desired object (so a
//   field we stopped sending, which apply would remove, is noticed);
// - every field we send has the same value live (so a hand edit of a field we own is
//   noticed). Fields other managers added are ignored: apply would keep them anyway.
import { createHash } from 'node:crypto';
import type { K8sObject } from '../tiers/shared/chart.ts';
import { withAnnotations } from '../tiers/shared/meta.ts';
import { parseQuantity } from '../tiers/shared/quantity.ts';

export const SPEC_HASH_ANNOTATION = 'scalable.dev/spec-hash';

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** JSON with sorted keys: equal objects hash equally whatever their key order. */
export function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (isObj(value)) {
    return `{${Object.keys(value)
      .sort()
      .filter((k) => value[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableStringify(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export const hashOf = (value: unknown): string =>
  createHash('sha256').update(stableStringify(value)).digest('hex').slice(0, 16);

/** The object as it will be applied: with the hash of its own content as an annotation. */
export function withSpecHash(obj: K8sObject): K8sObject {
  return withAnnotations(obj, { [SPEC_HASH_ANNOTATION]: hashOf(obj) });
}

const QUANTITY = /^[+-]?(\d+(\.\d*)?|\.\d+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$/;

function sameScalar(want: unknown, got: unknown): boolean {
  if (want === got) return true;
  // The API server canonicalises quantities (0.5 -> 500m, 1024Mi -> 1Gi).
  const ws = typeof want === 'string' && QUANTITY.test(want);
  const gs = typeof got === 'string' && QUANTITY.test(got);
  if ((ws || typeof want === 'number') && (gs || typeof got === 'number') && (ws || gs)) {
    try {
      return Math.abs(parseQuantity(want as string) - parseQuantity(got as string)) < 1e-9;
    } catch {
      return false;
    }
  }
  return false;
}

const isEmpty = (v: unknown): boolean =>
  v === null ||
  v === undefined ||
  (Array.isArray(v) && v.length === 0) ||
  (isObj(v) && Object.keys(v).length === 0);

/** Path of the first field of `want` that `got` does not hold, or undefined when it holds all. */
export function firstDifference(want: unknown, got: unknown, path = ''): string | undefined {
  if (isObj(want)) {
    if (!isObj(got)) return isEmpty(want) && isEmpty(got) ? undefined : path || '.';
    for (const [k, v] of Object.entries(want)) {
      const p = `${path}.${k}`;
      // The server omits empty lists and maps; an empty value we send is no claim to check.
      if (isEmpty(v)) continue;
      const d = firstDifference(v, got[k], p);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  if (Array.isArray(want)) {
    if (!Array.isArray(got)) return isEmpty(want) && isEmpty(got) ? undefined : path;
    if (want.every(isObj)) {
      // Associative lists may hold items of other managers; every item we send must be there.
      if (got.length < want.length) return path;
      for (const [i, item] of want.entries()) {
        const same = got[i] !== undefined && firstDifference(item, got[i]) === undefined;
        if (!same && !got.some((g) => firstDifference(item, g) === undefined))
          return `${path}[${i}]`;
      }
      return undefined;
    }
    if (want.length !== got.length) return path;
    for (const [i, item] of want.entries()) {
      const d = firstDifference(item, got[i], `${path}[${i}]`);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  return sameScalar(want, got) ? undefined : path || '.';
}

const omit = (obj: Json, keys: readonly string[]): Json =>
  Object.fromEntries(Object.entries(obj).filter(([k]) => !keys.includes(k)));

export interface LiveView {
  readonly metadata: {
    readonly labels?: unknown;
    readonly annotations?: unknown;
    readonly ownerReferences?: unknown;
  };
  readonly body: Json;
}

/** Undefined when applying `desired` (carrying its spec hash) would change nothing we own. */
export function whyApply(desired: K8sObject, live: LiveView | undefined): string | undefined {
  if (!live) return 'absent';
  const wantHash = desired.metadata.annotations?.[SPEC_HASH_ANNOTATION];
  const liveAnnotations = (live.metadata.annotations ?? {}) as Record<string, string>;
  if (wantHash === undefined || liveAnnotations[SPEC_HASH_ANNOTATION] !== wantHash)
    return 'spec changed';
  const rest = omit(desired, ['apiVersion', 'kind', 'metadata']);
  const meta = omit(desired.metadata, ['name', 'namespace', 'ownerReferences']);
  const ownerReferences = desired.metadata['ownerReferences'];
  const metaDiff = firstDifference(meta, live.metadata, '.metadata');
  if (metaDiff) return `drift at ${metaDiff}`;
  if (Array.isArray(ownerReferences)) {
    const liveOwners = (live.metadata.ownerReferences ?? []) as Json[];
    const uids = new Set(liveOwners.map((o) => o['uid']));
    if (!(ownerReferences as Json[]).every((o) => uids.has(o['uid'])))
      return 'drift at .metadata.ownerReferences';
  }
  const bodyDiff = firstDifference(rest, live.body, '');
  return bodyDiff ? `drift at ${bodyDiff}` : undefined;
}
