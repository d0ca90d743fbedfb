// Offline validation of a ScalableApp, in the order the API server applies it:
// unknown fields, defaults, the OpenAPI schema, then the CEL rules of rules.ts.
import { isDeepStrictEqual } from 'node:util';
import { celEnv, celError, isCelError, parse, plan } from '@bufbuild/cel';
import type { CelInput, CelResult } from '@bufbuild/cel';
import type { TSchema } from 'typebox';
import Value from 'typebox/value';
import { IMAGE_PATTERN } from './fields.ts';
import { CIDR_FUNCS } from './cidr.ts';
import { QUANTITY_FUNCS } from './quantity.ts';
import { RULES, isTransitionRule } from './rules.ts';
import type { CelRule } from './rules.ts';
import { API_VERSION, KIND, ScalableAppSpec } from './schema.ts';
import type { ScalableAppObject } from './schema.ts';

export interface FieldError {
  /** Field path as the API server prints it, e.g. spec.web.autoscaling. */
  readonly path: string;
  readonly message: string;
}

export const formatError = (e: FieldError): string =>
  e.path === '' ? e.message : `${e.path}: ${e.message}`;

export type Validated =
  | { readonly ok: true; readonly app: ScalableAppObject }
  | { readonly ok: false; readonly errors: readonly FieldError[] };

type Json = Record<string, unknown>;
type Schema = Record<string, unknown> & {
  properties?: Record<string, Schema>;
  patternProperties?: Record<string, Schema>;
  items?: Schema;
  type?: string;
};

const isObject = (v: unknown): v is Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const describe = (v: unknown): string => (typeof v === 'string' ? `"${v}"` : JSON.stringify(v));

const NAME_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export interface ValidateOptions {
  /** An app read back from the cluster (the operator): rules for written specs are skipped. */
  readonly stored?: boolean;
}

/** Validate a parsed document; returns the fully defaulted object or every error found. */
/**
 * `previous`: the version stored in the cluster, when validating an update; then the
 * transition rules (immutable fields, shards only grow) are checked as the API server does.
 */
export function validateApp(
  doc: unknown,
  previous?: unknown,
  options: ValidateOptions = {},
): Validated {
  if (!isObject(doc)) {
    return fail([{ path: '', message: `a ScalableApp must be a mapping (got ${describe(doc)})` }]);
  }
  const errors: FieldError[] = [...envelopeErrors(doc)];
  if (!isObject(doc['spec'])) {
    errors.push({ path: 'spec', message: 'Required value' });
    return fail(errors);
  }
  const specSchema = ScalableAppSpec as unknown as Schema;
  errors.push(...unknownFields(specSchema, doc['spec'], 'spec'));
  const spec = Value.Default(ScalableAppSpec, structuredClone(doc['spec'])) as Json;
  const schemaErrors = schemaErrorsOf(ScalableAppSpec, spec, 'spec');
  errors.push(...schemaErrors);
  // CEL rules assume well-typed input, as they do in the API server.
  if (errors.length === 0) {
    const metadata = doc['metadata'] as Json;
    const old = isObject(previous) && isObject(previous['spec']) ? previous : undefined;
    const oldSpec = old
      ? (Value.Default(ScalableAppSpec, structuredClone(old['spec'])) as Json)
      : undefined;
    errors.push(
      ...celErrors(
        { metadata, spec },
        oldSpec ? { metadata: old?.['metadata'], spec: oldSpec } : undefined,
        options.stored === true,
      ),
    );
  }
  if (errors.length > 0) return fail(errors);
  const metadata = doc['metadata'] as ScalableAppObject['metadata'];
  return {
    ok: true,
    app: { apiVersion: API_VERSION, kind: KIND, metadata, spec } as ScalableAppObject,
  };
}

const fail = (errors: FieldError[]): Validated => ({ ok: false, errors });

function envelopeErrors(doc: Json): FieldError[] {
  const errors: FieldError[] = [];
  if (doc['apiVersion'] !== API_VERSION) {
    errors.push({
      path: 'apiVersion',
      message: `must be ${API_VERSION} (got ${describe(doc['apiVersion'] ?? null)})`,
    });
  }
  if (doc['kind'] !== KIND) {
    errors.push({
      path: 'kind',
      message: `must be ${KIND} (got ${describe(doc['kind'] ?? null)})`,
    });
  }
  const metadata = doc['metadata'];
  if (!isObject(metadata) || metadata['name'] === undefined) {
    errors.push({ path: 'metadata.name', message: 'Required value' });
    return errors;
  }
  const name = metadata['name'];
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    errors.push({
      path: 'metadata.name',
      message: `must be a lower-case RFC 1123 name (got ${describe(name)})`,
    });
  }
  const ns = metadata['namespace'];
  if (ns !== undefined && (typeof ns !== 'string' || !NAME_PATTERN.test(ns) || ns.length > 63)) {
    errors.push({
      path: 'metadata.namespace',
      message: `must be a lower-case RFC 1123 label (got ${describe(ns)})`,
    });
  }
  return errors;
}

function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  return base === '' ? key : `${base}.${key}`;
}

/** Fields the schema does not declare: kubectl's strict field validation rejects them too. */
export function unknownFields(schema: Schema, value: unknown, path: string): FieldError[] {
  if (Array.isArray(value) && schema.items) {
    return value.flatMap((v, i) => unknownFields(schema.items as Schema, v, joinPath(path, i)));
  }
  if (!isObject(value)) return [];
  if (schema.patternProperties) {
    const inner = Object.values(schema.patternProperties)[0] as Schema;
    return Object.entries(value).flatMap(([k, v]) => unknownFields(inner, v, joinPath(path, k)));
  }
  const props = schema.properties ?? {};
  return Object.entries(value).flatMap(([k, v]) => {
    const p = props[k];
    return p
      ? unknownFields(p, v, joinPath(path, k))
      : [{ path: joinPath(path, k), message: 'field not declared in schema' }];
  });
}

/** JSON pointer from TypeBox (/web/env/0/name) to an API field path (web.env[0].name). */
function pointerToPath(base: string, pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((p, seg) => joinPath(p, /^\d+$/.test(seg) ? Number(seg) : seg), base);
}

function valueAt(root: unknown, pointer: string): unknown {
  return pointer
    .split('/')
    .slice(1)
    .reduce<unknown>(
      (v, seg) => (isObject(v) || Array.isArray(v) ? (v as Json)[seg] : undefined),
      root,
    );
}

function schemaErrorsOf(schema: TSchema, value: unknown, base: string): FieldError[] {
  const raw = [...Value.Errors(schema, value)];
  // An int-or-string quantity fails three ways at once; report it once, plainly.
  const quantityPaths = new Set(
    raw.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath),
  );
  const seen = new Set<string>();
  const out: FieldError[] = [];
  for (const e of raw) {
    const got = valueAt(value, e.instancePath);
    let err: FieldError;
    if (quantityPaths.has(e.instancePath) || (e.keyword === 'pattern' && isQuantityError(e))) {
      err = {
        path: pointerToPath(base, e.instancePath),
        message: `must be a quantity such as 256Mi, 1Gi or 500m (got ${describe(got)})`,
      };
    } else if (e.keyword === 'pattern' && isImageError(e)) {
      err = {
        path: pointerToPath(base, e.instancePath),
        message: `must be an OCI image reference such as ghcr.io/acme/shop:1.4.2 (got ${describe(got)})`,
      };
    } else if (e.keyword === 'required') {
      const missing = (e.params as { requiredProperties: string[] }).requiredProperties;
      for (const m of missing) {
        pushOnce(out, seen, {
          path: joinPath(pointerToPath(base, e.instancePath), m),
          message: 'Required value',
        });
      }
      continue;
    } else if (e.keyword === 'enum') {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
      err = {
        path: pointerToPath(base, e.instancePath),
        message: `must be one of ${allowed.map(describe).join(', ')} (got ${describe(got)})`,
      };
    } else {
      err = {
        path: pointerToPath(base, e.instancePath),
        message: `${e.message} (got ${describe(got)})`,
      };
    }
    pushOnce(out, seen, err);
  }
  return out;
}

function isQuantityError(e: { params: unknown }): boolean {
  return String((e.params as { pattern?: string }).pattern ?? '').includes('[KMGTPE]i');
}

const isImageError = (e: { params: unknown }): boolean =>
  (e.params as { pattern?: string }).pattern === IMAGE_PATTERN;

function pushOnce(out: FieldError[], seen: Set<string>, err: FieldError): void {
  const key = `${err.path}\u0000${err.message}`;
  if (!seen.has(key)) {
    seen.add(key);
    out.push(err);
  }
}

/** Schema-directed conversion to CEL values: integers are CEL ints, objects are maps. */
function toCel(value: unknown): CelInput {
  if (Array.isArray(value)) return value.map(toCel);
  if (isObject(value)) return new Map(Object.entries(value).map(([k, v]) => [k, toCel(v)]));
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  return value as CelInput;
}

/** Every (path, value) the rule table addresses: `[]` in a rule path means each item. */
function nodesAt(root: unknown, rulePath: string): Array<{ path: string; value: unknown }> {
  let nodes: Array<{ path: string; value: unknown }> = [{ path: '', value: root }];
  const segments = rulePath === '' ? [] : rulePath.split('.');
  for (const seg of segments) {
    const each = seg.endsWith('[]');
    const key = each ? seg.slice(0, -2) : seg;
    nodes = nodes.flatMap(({ path, value }) => {
      const child = isObject(value) ? value[key] : undefined;
      if (child === undefined) return [];
      const childPath = joinPath(path, key);
      if (!each) return [{ path: childPath, value: child }];
      return Array.isArray(child)
        ? child.map((v, i) => ({ path: joinPath(childPath, i), value: v }))
        : [];
    });
  }
  return nodes;
}

type Program = (bindings: Record<string, CelInput>) => CelResult;
const programs = new Map<string, Program>();
/** The standard library plus Kubernetes' quantity and CIDR functions, as in the API server. */
const env = celEnv({ funcs: [...QUANTITY_FUNCS, ...CIDR_FUNCS] });

/** Parse and plan each expression once: the operator validates every app it reconciles. */
function compiled(expr: string): Program {
  let program = programs.get(expr);
  if (!program) {
    const planned = plan(env, parse(expr)) as Program;
    program = (bindings) => {
      try {
        return planned(bindings);
      } catch (e) {
        return celError(String(e));
      }
    };
    programs.set(expr, program);
  }
  return program;
}

function evalRule(rule: CelRule, self: CelInput, oldSelf?: CelInput): string | undefined {
  const result = compiled(rule.rule)(oldSelf === undefined ? { self } : { self, oldSelf });
  if (result === true) return undefined;
  if (isCelError(result)) return `rule ${rule.rule} could not be evaluated: ${result.message}`;
  const detail = rule.detail === undefined ? undefined : compiled(rule.detail)({ self });
  return typeof detail === 'string' ? `${rule.message} (${detail})` : rule.message;
}

/** Transition rules run only with `previous`, on nodes present in both, as on an update. */
function celErrors(root: Json, previous: Json | undefined, stored: boolean): FieldError[] {
  const out: FieldError[] = [];
  for (const [rulePath, rules] of Object.entries(RULES)) {
    for (const rule of rules) {
      const transition = isTransitionRule(rule);
      if (transition && !previous) continue;
      if (rule.whenWritten && stored) continue;
      const before = previous
        ? new Map(nodesAt(previous, rulePath).map((n) => [n.path, n]))
        : undefined;
      for (const node of nodesAt(root, rulePath)) {
        const old = before?.get(node.path);
        if (transition && !old) continue;
        // The API server's ratcheting: an update that leaves the node as it was passes.
        if (rule.whenWritten && old && isDeepStrictEqual(old.value, node.value)) continue;
        const message = evalRule(
          rule,
          toCel(node.value),
          transition && old ? toCel(old.value) : undefined,
        );
        const path = rule.fieldPath
          ? joinPath(node.path, rule.fieldPath.replace(/^\./, ''))
          : node.path;
        if (message !== undefined) out.push({ path, message });
      }
    }
  }
  return out;
}
