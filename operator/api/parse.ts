// YAML text -> ScalableApp documents. Errors carry the file and line, never a stack.
import yaml from 'js-yaml';
import type { FieldError, Validated } from './validate.ts';
import { validateApp } from './validate.ts';

export interface ParsedFile {
  readonly results: readonly Validated[];
  /** Errors that stop the whole file (bad YAML). */
  readonly errors: readonly FieldError[];
}

const nameOf = (doc: unknown): unknown =>
  ((doc as { metadata?: { name?: unknown } } | undefined)?.metadata ?? {}).name;

/**
 * `previous`: the versions stored in the cluster (e.g. `kubectl get sapp -o yaml`); each app
 * is then validated as an update of the one with its name (transition rules included).
 */
export function parseApps(
  text: string,
  source = '<input>',
  previous: readonly unknown[] = [],
): ParsedFile {
  let docs: unknown[];
  try {
    docs = yaml.loadAll(text).filter((d) => d !== null && d !== undefined);
  } catch (e) {
    const err = e as { reason?: string; mark?: { line: number; column: number } };
    const where = err.mark ? `${source}:${err.mark.line + 1}:${err.mark.column + 1}` : source;
    return {
      results: [],
      errors: [{ path: '', message: `${where}: invalid YAML: ${err.reason ?? String(e)}` }],
    };
  }
  if (docs.length === 0) {
    return {
      results: [],
      errors: [{ path: '', message: `${source}: no ScalableApp in the file` }],
    };
  }
  const before = (doc: unknown) => previous.find((p) => nameOf(p) === nameOf(doc));
  return { results: docs.map((d) => validateApp(d, before(d))), errors: [] };
}
