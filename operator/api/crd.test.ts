import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildCrd } from './crd.ts';
import { crdPath, crdYaml } from './crd-file.ts';
import { RULES } from './rules.ts';

type Node = Record<string, unknown>;

function walk(node: Node, path: string, visit: (n: Node, p: string) => void): void {
  visit(node, path);
  for (const [k, v] of Object.entries((node['properties'] as Record<string, Node>) ?? {}))
    walk(v, `${path}.${k}`, visit);
  if (node['items']) walk(node['items'] as Node, `${path}[]`, visit);
  if (typeof node['additionalProperties'] === 'object')
    walk(node['additionalProperties'] as Node, `${path}{}`, visit);
}

const schema = () =>
  ((buildCrd()['spec'] as Node)['versions'] as Node[])[0]!['schema'] as { openAPIV3Schema: Node };

describe('CRD', () => {
  it('crds/ is up to date with the TypeScript schema (run npm run gen:crd)', () => {
    expect(readFileSync(crdPath, 'utf8')).toBe(crdYaml());
  });

  it('describes every field of spec and status', () => {
    const missing: string[] = [];
    const root = schema().openAPIV3Schema;
    for (const part of ['spec', 'status']) {
      walk((root['properties'] as Record<string, Node>)[part]!, part, (n, p) => {
        if (typeof n['description'] !== 'string' || n['description'] === '') missing.push(p);
      });
    }
    expect(missing).toEqual([]);
  });

  it('is structural: every node has a type or is int-or-string, no TypeBox leftovers', () => {
    const bad: string[] = [];
    walk(schema().openAPIV3Schema, '', (n, p) => {
      if (n['type'] === undefined && n['x-kubernetes-int-or-string'] !== true)
        bad.push(`${p}: no type`);
      if ('patternProperties' in n || '$id' in n || '~kind' in n)
        bad.push(`${p}: non-structural key`);
    });
    expect(bad).toEqual([]);
  });

  it('never requires a field that has a default', () => {
    const bad: string[] = [];
    walk(schema().openAPIV3Schema, '', (n, p) => {
      const props = (n['properties'] as Record<string, Node>) ?? {};
      for (const r of (n['required'] as string[]) ?? [])
        if (props[r]?.['default'] !== undefined) bad.push(`${p}.${r}`);
    });
    expect(bad).toEqual([]);
    expect(
      (schema().openAPIV3Schema['properties'] as Record<string, Node>)['spec']!['required'],
    ).toEqual(['web']);
  });

  it('has the status subresource, short name and printer columns', () => {
    const spec = buildCrd()['spec'] as Node;
    expect((spec['names'] as Node)['shortNames']).toEqual(['sapp']);
    const version = (spec['versions'] as Node[])[0]!;
    expect(version['subresources']).toEqual({ status: {} });
    expect((version['additionalPrinterColumns'] as Node[]).map((c) => c['name'])).toEqual([
      'Ready',
      'Web',
      'Shards',
      'URL',
      'Age',
    ]);
  });

  it('carries the CEL rule table, including transition rules', () => {
    const rules: string[] = [];
    walk(schema().openAPIV3Schema, '', (n) => {
      for (const r of (n['x-kubernetes-validations'] as Node[]) ?? [])
        rules.push(r['rule'] as string);
    });
    expect(rules).toContain('self.minReplicas <= self.maxReplicas');
    expect(rules).toContain('self == oldSelf');
    expect(rules.length).toBeGreaterThanOrEqual(15);
  });

  it('places every rule of the table on a node that exists', () => {
    const paths = new Set<string>(['']);
    const root = schema().openAPIV3Schema;
    for (const part of ['spec', 'status']) {
      walk((root['properties'] as Record<string, Node>)[part]!, part, (_n, p) => paths.add(p));
    }
    expect(Object.keys(RULES).filter((p) => !paths.has(p))).toEqual([]);
  });
});
