// Pure: the ScalableApp API as a Markdown page (docs/reference.md), generated from the same
// structural schema the CRD carries (crd.ts) and the same rule table (rules.ts), so the page
// says exactly what the API server and `scalable validate` enforce. reference-file.ts writes
// it; a unit test fails when the file is stale.
import { toStructural } from './crd.ts';
import { DEFAULT_FAILOVER_SECONDS } from './failover-defaults.ts';
import { DNS_LABEL_PATTERN, ENV_NAME_PATTERN, IMAGE_PATTERN, QUANTITY_PATTERN } from './fields.ts';
import { RULES, isTransitionRule } from './rules.ts';
import type { CelRule } from './rules.ts';
import { API_VERSION, KIND, ScalableAppSpec, ScalableAppStatus } from './schema.ts';

type Node = Record<string, unknown>;

/** One field of the page: its path as rules.ts spells it (`[]` list items, `{}` map values). */
export interface FieldRow {
  readonly path: string;
  readonly type: string;
  readonly default: string;
  readonly constraints: string;
  readonly description: string;
}

/** One cross-field rule at the field it reports on. */
export interface RuleRow {
  readonly field: string;
  readonly rule: string;
  readonly message: string;
  readonly checked: string;
}

/** Defaults the model fills in because they depend on another field (a CRD default cannot). */
const MODEL_DEFAULTS: Readonly<Record<string, string>> = {
  'spec.database.failoverSeconds': `${DEFAULT_FAILOVER_SECONDS.synchronous} with synchronous: true, else ${DEFAULT_FAILOVER_SECONDS.asynchronous} (filled in by the operator)`,
};

/** Patterns shared by many fields, named instead of printed. */
const NAMED_PATTERNS: ReadonlyMap<string, string> = new Map([
  [IMAGE_PATTERN, 'an OCI image reference'],
  [QUANTITY_PATTERN, 'a Kubernetes quantity (e.g. 512Mi, 250m, 2)'],
  [DNS_LABEL_PATTERN, 'an RFC 1123 label'],
  [ENV_NAME_PATTERN, 'an environment variable name'],
]);

/** A table cell: one line, pipes escaped (also inside code spans, as GFM tables need). */
export function cell(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|');
}

const code = (v: string): string => `\`${v}\``;

export function typeOf(node: Node): string {
  if (node['x-kubernetes-int-or-string'] === true)
    return node['pattern'] === QUANTITY_PATTERN ? 'quantity (integer or string)' : 'int-or-string';
  const type = node['type'];
  if (type === 'array') return `${typeOf((node['items'] as Node | undefined) ?? {})}[]`;
  if (type === 'object' && typeof node['additionalProperties'] === 'object')
    return `map of ${typeOf(node['additionalProperties'] as Node)}`;
  if (type === 'string' && typeof node['format'] === 'string') return `string (${node['format']})`;
  return typeof type === 'string' ? type : 'any';
}

export function defaultOf(node: Node, path: string, required: boolean): string {
  const model = MODEL_DEFAULTS[path];
  if (model) return model;
  const value = node['default'];
  if (value !== undefined) {
    // An object default is `{}` spelled out with its fields' defaults (crd.ts expandDefault):
    // the fields' rows give those.
    if (typeof value === 'object' && value !== null && !Array.isArray(value))
      return `${code('{}')} (on, fields at their defaults)`;
    return code(typeof value === 'string' ? value : JSON.stringify(value));
  }
  return required ? 'required' : 'unset';
}

export function constraintsOf(node: Node): string {
  const out: string[] = [];
  const num = (k: string) => (typeof node[k] === 'number' ? (node[k] as number) : undefined);
  const values = node['enum'];
  if (Array.isArray(values)) out.push(`one of ${values.map((v) => code(String(v))).join(', ')}`);
  const [min, max] = [num('minimum'), num('maximum')];
  if (min !== undefined && max !== undefined) out.push(`${min} to ${max}`);
  else if (min !== undefined) out.push(`at least ${min}`);
  else if (max !== undefined) out.push(`at most ${max}`);
  const [minLength, maxLength] = [num('minLength'), num('maxLength')];
  if (minLength !== undefined && maxLength !== undefined)
    out.push(`${minLength} to ${maxLength} characters`);
  else if (maxLength !== undefined) out.push(`at most ${maxLength} characters`);
  else if (minLength !== undefined) out.push(`at least ${minLength} characters`);
  const maxItems = num('maxItems');
  if (maxItems !== undefined) out.push(`at most ${maxItems} items`);
  const maxProperties = num('maxProperties');
  if (maxProperties !== undefined) out.push(`at most ${maxProperties} entries`);
  const pattern = node['pattern'];
  if (typeof pattern === 'string')
    out.push(NAMED_PATTERNS.get(pattern) ?? `matches ${code(pattern)}`);
  const keys = node['x-kubernetes-list-map-keys'];
  if (Array.isArray(keys)) out.push(`unique by ${keys.map((k) => code(String(k))).join(', ')}`);
  return out.join('; ');
}

/** Every node under `node` (itself first), depth first in schema order. */
export function fieldRows(node: Node, path: string, required = false): FieldRow[] {
  const row: FieldRow = {
    path,
    type: typeOf(node),
    default: defaultOf(node, path, required),
    constraints: constraintsOf(node),
    description: typeof node['description'] === 'string' ? node['description'] : '',
  };
  const props = (node['properties'] as Record<string, Node> | undefined) ?? {};
  const req = new Set((node['required'] as string[] | undefined) ?? []);
  return [
    row,
    ...Object.entries(props).flatMap(([k, v]) => fieldRows(v, `${path}.${k}`, req.has(k))),
    ...(node['items'] ? fieldRows(node['items'] as Node, `${path}[]`) : []),
    ...(typeof node['additionalProperties'] === 'object'
      ? fieldRows(node['additionalProperties'] as Node, `${path}{}`)
      : []),
  ];
}

export function checkedWhen(rule: CelRule): string {
  if (isTransitionRule(rule)) return 'on update: compares with the stored object';
  if (rule.whenWritten) return 'when written; the operator still runs apps stored before the rule';
  return 'on create and update';
}

/** The rules whose node is `path` or lies under it, at the field each reports on. */
export function ruleRows(
  rules: Readonly<Record<string, readonly CelRule[]>>,
  under: (path: string) => boolean,
): RuleRow[] {
  return Object.entries(rules)
    .filter(([path]) => under(path))
    .flatMap(([path, list]) =>
      list.map((r) => ({
        field: `${path}${r.fieldPath ?? ''}`.replace(/^\./, ''),
        rule: r.rule,
        message: r.message,
        checked: checkedWhen(r),
      })),
    );
}

function fieldTable(rows: readonly FieldRow[]): string[] {
  return [
    '| field | type | default | constraints | description |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${code(r.path)} | ${cell(r.type)} | ${cell(r.default)} | ${cell(r.constraints)} | ${cell(r.description)} |`,
    ),
  ];
}

function ruleTable(rows: readonly RuleRow[]): string[] {
  return [
    '| field | message | checked | rule (CEL) |',
    '| --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${code(r.field)} | ${cell(r.message)} | ${cell(r.checked)} | ${cell(code(r.rule))} |`,
    ),
  ];
}

const isUnder = (section: string) => (path: string) =>
  path === section || path.startsWith(`${section}.`) || path.startsWith(`${section}[`);

/** The whole page. */
export function referenceMarkdown(
  rules: Readonly<Record<string, readonly CelRule[]>> = RULES,
): string {
  const spec = toStructural(ScalableAppSpec, 'spec');
  const status = toStructural(ScalableAppStatus, 'status');
  const specProps = (spec['properties'] as Record<string, Node> | undefined) ?? {};
  const specRequired = new Set((spec['required'] as string[] | undefined) ?? []);
  const total = Object.values(rules).reduce((n, list) => n + list.length, 0);
  const lines: string[] = [
    '# ScalableApp API reference',
    '',
    '<!-- Generated from operator/api (schema.ts, rules.ts, failover-defaults.ts) by `npm run gen:reference`. Do not edit: a unit test fails when this file is stale. -->',
    '',
    `${code(API_VERSION)}, kind ${code(KIND)} (short name ${code('sapp')}), namespaced. Field paths use ${code('[]')} for the items of a list and ${code('{}')} for the values of a map. A field whose default is "unset" is left out unless you set it; a section that is unset is off. The ${total} cross-field rules below are CEL: the API server enforces them (the CRD carries them as ${code('x-kubernetes-validations')}) and ${code('scalable validate')} evaluates the same expressions offline (with ${code('--previous')} for the rules checked on update).`,
    '',
    'Generated from the schema; the guides explain what each section builds: [the API guide](api.md).',
    '',
    '## The object',
    '',
    ...ruleTable(ruleRows(rules, (p) => p === '' || p === 'spec')),
    '',
    '## spec',
    '',
    ...fieldTable([fieldRows(spec, 'spec', true)[0] as FieldRow]),
  ];
  for (const [name, node] of Object.entries(specProps)) {
    const path = `spec.${name}`;
    const rows = ruleRows(rules, (p) => p !== 'spec' && isUnder(path)(p));
    lines.push(
      '',
      `## ${path}`,
      '',
      ...fieldTable(fieldRows(node, path, specRequired.has(name))),
      ...(rows.length > 0 ? ['', `Rules of ${code(path)}:`, '', ...ruleTable(rows)] : []),
    );
  }
  lines.push(
    '',
    '## status',
    '',
    'Written by the operator; read it with `kubectl get sapp <name> -o yaml`. The condition reasons and what to do about each: [operations](operations.md#conditions).',
    '',
    ...fieldTable(fieldRows(status, 'status')),
    '',
  );
  return lines.join('\n');
}
