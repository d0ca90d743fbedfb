// Small schema helpers shared by the ScalableApp spec and status. Every helper takes a
// description first: `kubectl explain` is only as useful as these strings.
import Type from 'typebox';
import type { TSchema, TUnsafe } from 'typebox';

/** Kubernetes resource.Quantity, as controller-gen renders it (int-or-string + pattern). */
export const QUANTITY_PATTERN =
  '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';

/** RFC 1123 label, the shape of most Kubernetes object names. */
export const DNS_LABEL_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';

export const ENV_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*$';

export function quantity(description: string, def?: string): TUnsafe<string | number> {
  return Type.Unsafe<string | number>({
    description,
    'x-kubernetes-int-or-string': true,
    // Structural schemas allow exactly this anyOf; the pattern only applies to strings.
    anyOf: [{ type: 'integer' }, { type: 'string' }],
    pattern: QUANTITY_PATTERN,
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
