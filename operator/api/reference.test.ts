import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildCrd } from './crd.ts';
import { QUANTITY_PATTERN } from './fields.ts';
import {
  cell,
  checkedWhen,
  constraintsOf,
  defaultOf,
  fieldRows,
  referenceMarkdown,
  ruleRows,
  typeOf,
} from './reference.ts';
import { referencePath, referenceText } from './reference-file.ts';
import { RULES } from './rules.ts';

type Node = Record<string, unknown>;

/** Every field path of the CRD's spec and status, as rules.ts spells paths. */
function crdPaths(): string[] {
  const root = (
    ((buildCrd()['spec'] as Node)['versions'] as Node[])[0]!['schema'] as {
      openAPIV3Schema: Node;
    }
  ).openAPIV3Schema;
  const out: string[] = [];
  const walk = (node: Node, path: string): void => {
    out.push(path);
    for (const [k, v] of Object.entries((node['properties'] as Record<string, Node>) ?? {}))
      walk(v, `${path}.${k}`);
    if (node['items']) walk(node['items'] as Node, `${path}[]`);
    if (typeof node['additionalProperties'] === 'object')
      walk(node['additionalProperties'] as Node, `${path}{}`);
  };
  const props = root['properties'] as Record<string, Node>;
  walk(props['spec']!, 'spec');
  walk(props['status']!, 'status');
  return out;
}

describe('docs/reference.md', () => {
  it('is up to date with the schema and the rules (run npm run gen:reference)', () => {
    expect(readFileSync(referencePath, 'utf8')).toBe(referenceText());
  });

  it('has a row for every field of the CRD, and no other', () => {
    // A field row has five cells (a rule row four); escaped pipes are inside cells.
    const rows = referenceMarkdown()
      .split('\n')
      .map((line) => line.split(/(?<!\\)\|/).map((c) => c.trim()))
      .filter((cells) => cells.length === 7 && /^`(spec|status)/.test(cells[1] ?? ''))
      .map((cells) => (cells[1] ?? '').slice(1, -1));
    expect(rows.sort()).toEqual(crdPaths().sort());
  });

  it('states every cross-field rule with its message', () => {
    const page = referenceMarkdown();
    const missing = Object.values(RULES)
      .flat()
      .filter((r) => !page.includes(cell(r.message)) || !page.includes(cell(`\`${r.rule}\``)));
    expect(missing).toEqual([]);
  });

  it('gives the mode-dependent default of failoverSeconds and the defaults of the schema', () => {
    const page = referenceMarkdown();
    expect(page).toMatch(
      /^\| `spec\.database\.failoverSeconds` \| integer \| 10 with synchronous: true, else 30 /m,
    );
    expect(page).toMatch(/^\| `spec\.web\.port` \| integer \| `8080` \| 1 to 65535 \|/m);
    expect(page).toMatch(/^\| `spec\.web\.image` \| string \| required \|/m);
    expect(page).toMatch(
      /^\| `spec\.cache\.evictionPolicy` \| string \| `allkeys-lru` \| one of `allkeys-lru`/m,
    );
  });
});

describe('the reference builders', () => {
  it('name a type', () => {
    expect(typeOf({ 'x-kubernetes-int-or-string': true, pattern: QUANTITY_PATTERN })).toBe(
      'quantity (integer or string)',
    );
    expect(typeOf({ type: 'array', items: { type: 'object' } })).toBe('object[]');
    expect(typeOf({ type: 'object', additionalProperties: { type: 'string' } })).toBe(
      'map of string',
    );
    expect(typeOf({ type: 'string', format: 'date-time' })).toBe('string (date-time)');
  });

  it('say a default, required or unset', () => {
    expect(defaultOf({ default: 3 }, 'spec.x', false)).toBe('`3`');
    expect(defaultOf({ default: 'Retain' }, 'spec.x', false)).toBe('`Retain`');
    expect(defaultOf({ default: [] }, 'spec.x', false)).toBe('`[]`');
    expect(defaultOf({ default: { a: 1 } }, 'spec.x', false)).toMatch(/^`\{\}` \(on/);
    expect(defaultOf({}, 'spec.x', true)).toBe('required');
    expect(defaultOf({}, 'spec.x', false)).toBe('unset');
  });

  it('list bounds, enums and patterns', () => {
    expect(constraintsOf({ minimum: 1, maximum: 5 })).toBe('1 to 5');
    expect(constraintsOf({ minimum: 0 })).toBe('at least 0');
    expect(constraintsOf({ enum: ['a', 'b'] })).toBe('one of `a`, `b`');
    expect(constraintsOf({ maxLength: 63, pattern: '^[a-z]+$' })).toBe(
      'at most 63 characters; matches `^[a-z]+$`',
    );
    expect(constraintsOf({ pattern: QUANTITY_PATTERN })).toMatch(/^a Kubernetes quantity/);
    expect(constraintsOf({ maxItems: 64, 'x-kubernetes-list-map-keys': ['name'] })).toBe(
      'at most 64 items; unique by `name`',
    );
  });

  it('walk lists and maps, marking required fields', () => {
    const rows = fieldRows(
      {
        type: 'object',
        required: ['a'],
        properties: {
          a: { type: 'string' },
          b: { type: 'array', items: { type: 'object', properties: { c: { type: 'integer' } } } },
          m: { type: 'object', additionalProperties: { type: 'string' } },
        },
      },
      'spec.s',
    );
    expect(rows.map((r) => `${r.path} ${r.default}`)).toEqual([
      'spec.s unset',
      'spec.s.a required',
      'spec.s.b unset',
      'spec.s.b[] unset',
      'spec.s.b[].c unset',
      'spec.s.m unset',
      'spec.s.m{} unset',
    ]);
  });

  it('put a rule at the field it reports on, and say when it is checked', () => {
    const rows = ruleRows(
      {
        '': [{ rule: 'r1', message: 'm1', fieldPath: '.metadata.name' }],
        'spec.d': [{ rule: 'self == oldSelf', message: 'm2' }],
        'spec.e': [{ rule: 'r3', message: 'm3', whenWritten: true }],
      },
      () => true,
    );
    expect(rows.map((r) => r.field)).toEqual(['metadata.name', 'spec.d', 'spec.e']);
    expect(rows[1]?.checked).toMatch(/^on update/);
    expect(checkedWhen({ rule: 'r3', message: 'm3', whenWritten: true })).toMatch(/^when written/);
    expect(checkedWhen({ rule: 'r', message: 'm' })).toBe('on create and update');
  });

  it('keep a table cell on one line, pipes escaped', () => {
    expect(cell('a || b\n  c')).toBe('a \\|\\| b c');
  });
});
