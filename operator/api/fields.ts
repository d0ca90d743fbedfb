// Small schema helpers shared by the ScalableApp spec and status. Every helper takes a
// description first: `kubectl explain` is only as useful as these strings.
import Type from 'typebox';
import type { TSchema, TUnsafe } from 'typebox';

/** Kubernetes resource.Quantity, as controller-gen renders it (int-or-string + pattern). */
export const QUANTITY_PATTERN =
  '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';

/** RFC 1123 label, the shape of most Kubernetes object names. */
export const DNS_LABEL_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';

// An OCI image reference, the grammar of github.com/distribution/reference (regexp.go):
// [domain[:port]/]path[:tag][@digest]. Written for both ECMAScript (offline) and RE2 (the
// API server): no lookarounds, no backreferences.
const ALNUM = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|[-]+)';
const PATH_COMPONENT = `${ALNUM}(?:${SEPARATOR}${ALNUM})*`;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
const TAG = '[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}';
export const IMAGE_PATTERN = `^(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*(?::${TAG})?(?:@${DIGEST})?$`;

export function image(description: string) {
  return Type.String({
    description: `${description} An OCI reference: [registry/]repository[:tag][@digest].`,
    minLength: 1,
    maxLength: 512,
    pattern: IMAGE_PATTERN,
  });
}

export const ENV_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*$';

export function quantity(description: string, def?: string): TUnsafe<string | number> {
  return Type.Unsafe<string | number>({
    description,
    'x-kubernetes-int-or-string': true,
    // Structural schemas allow exactly this anyOf; the pattern only applies to strings.
    anyOf: [{ type: 'integer' }, { type: 'string' }],
    pattern: QUANTITY_PATTERN,
    // Bounds the cost the API server estimates for the CEL quantity rules (rules.ts).
    maxLength: 64,
    ...(def === undefined ? {} : { default: def }),
  });
}

export function str(description: string, opts: Record<string, unknown> = {}) {
  return Type.String({ description, ...opts });
}

export function int(description: string, opts: Record<string, unknown> = {}) {
  return Type.Integer({ description, format: 'int32', ...opts });
}

export function bool(description: string, def: boolean) {
  return Type.Boolean({ description, default: def });
}

export function strEnum<const T extends readonly string[]>(
  description: string,
  values: T,
  def?: T[number],
) {
  return Type.Unsafe<T[number]>({
    type: 'string',
    description,
    enum: [...values],
    ...(def === undefined ? {} : { default: def }),
  });
}

export function opt<T extends TSchema>(schema: T) {
  return Type.Optional(schema);
}
