// The offline path shared by `scalable render` and the operator: text -> objects.
import { toModel } from './api/model.ts';
import type { ModelOptions } from './api/model.ts';
import { parseApps } from './api/parse.ts';
import type { FieldError } from './api/validate.ts';
import type { K8sObject } from './tiers/shared/chart.ts';
import { buildAll } from './tiers/index.ts';

export type RenderResult =
  | { readonly ok: true; readonly objects: readonly K8sObject[] }
  | { readonly ok: false; readonly errors: readonly FieldError[] };

export function renderText(text: string, source: string, options: ModelOptions = {}): RenderResult {
  const parsed = parseApps(text, source);
  if (parsed.errors.length > 0) return { ok: false, errors: parsed.errors };
  const errors = parsed.results.flatMap((r, i) =>
    r.ok
      ? []
      : r.errors.map((e) =>
          parsed.results.length > 1 ? { ...e, path: `[document ${i + 1}] ${e.path}` } : e,
        ),
  );
  if (errors.length > 0) return { ok: false, errors };
  const objects = parsed.results.flatMap((r) => (r.ok ? buildAll(toModel(r.app, options)) : []));
  return { ok: true, objects };
}
