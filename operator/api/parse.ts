// YAML text -> ScalableApp documents. Errors carry the file and line, never a stack.
import yaml from 'js-yaml';
import type { FieldError, Validated } from './validate.ts';
import { validateApp } from './validate.ts';

export interface ParsedFile {
  readonly results: readonly Validated[];
  /** Errors that stop the whole file (bad YAML). */
  readonly errors: readonly FieldError[];
}

export function parseApps(text: string, source = '<input>'): ParsedFile {
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
  return { results: docs.map(validateApp), errors: [] };
}
