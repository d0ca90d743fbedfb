// Pure: kube-score's JSON (output version v2) -> findings, and the allow-list that judges them.
import yaml from 'js-yaml';

export interface Finding {
  readonly check: string;
  readonly kind: string;
  readonly name: string;
  readonly container: string;
  readonly summary: string;
}

export interface AllowEntry {
  readonly check: string;
  readonly kind: string;
  /** A regular expression on the object's name. */
  readonly name: string;
  readonly container?: string;
  /** A substring of the finding's summary. */
  readonly summary?: string;
  readonly reason: string;
}

interface ScoredObject {
  readonly type_meta: { readonly kind: string };
  readonly object_meta: { readonly name: string };
  readonly checks: ReadonlyArray<{
    readonly check: { readonly id: string; readonly name: string };
    readonly grade: number;
    readonly skipped: boolean;
    readonly comments: ReadonlyArray<{ readonly path?: string; readonly summary: string }> | null;
  }>;
}

/** kube-score grades 10 as OK; anything lower that was not skipped is a finding. */
const OK = 10;

export function findingsOf(json: string): Finding[] {
  const objects = JSON.parse(json) as ScoredObject[];
  return objects.flatMap((o) =>
    o.checks
      .filter((c) => !c.skipped && c.grade < OK)
      .flatMap((c) =>
        (c.comments?.length ? c.comments : [{ summary: c.check.name }]).map((m) => ({
          check: c.check.id,
          kind: o.type_meta.kind,
          name: o.object_meta.name,
          container: m.path ?? '',
          summary: m.summary,
        })),
      ),
  );
}

export function parseAllowList(text: string): AllowEntry[] {
  const entries = yaml.load(text);
  if (!Array.isArray(entries)) throw new Error('the allow-list must be a YAML list');
  return entries.map((e: Partial<AllowEntry>, i) => {
    if (typeof e.check !== 'string' || e.check === '') {
      throw new Error(`allow-list entry ${i + 1}: check is required`);
    }
    // An entry with only a check id would allow every object of every future manifest.
    for (const field of ['kind', 'name'] as const) {
      if (typeof e[field] !== 'string' || e[field] === '') {
        throw new Error(`allow-list entry ${i + 1} (${e.check}): ${field} is required`);
      }
    }
    if (typeof e.reason !== 'string' || e.reason.trim().length < 20) {
      throw new Error(`allow-list entry ${i + 1} (${e.check}): give a reason`);
    }
    return e as AllowEntry;
  });
}

export const allows = (e: AllowEntry, f: Finding): boolean =>
  e.check === f.check &&
  e.kind === f.kind &&
  new RegExp(e.name).test(f.name) &&
  (e.container === undefined || e.container === f.container) &&
  (e.summary === undefined || f.summary.includes(e.summary));

export interface Verdict {
  /** Findings no entry allows. */
  readonly defects: readonly Finding[];
  /** Entries that allow nothing: stale, to be removed. */
  readonly unused: readonly AllowEntry[];
}

export function judge(findings: readonly Finding[], allowList: readonly AllowEntry[]): Verdict {
  return {
    defects: findings.filter((f) => !allowList.some((e) => allows(e, f))),
    unused: allowList.filter((e) => !findings.some((f) => allows(e, f))),
  };
}

export const formatFinding = (f: Finding): string =>
  `${f.kind}/${f.name}${f.container ? ` (${f.container})` : ''}: [${f.check}] ${f.summary}`;
