import { readFileSync } from 'node:fs';
import { App, Chart } from 'cdk8s';
import * as full from 'cdk8s-plus-27/lib/imports/k8s.js';
import { describe, expect, it } from 'vitest';
import * as subset from './k8s-l1.ts';
import { SUBSET_FILE, generateSubset, usedNames } from './k8s-subset.ts';

describe('the L1 subset (k8s-l1.ts)', () => {
  it('is what `npm run gen:k8s` writes for the names the operator uses now', () => {
    expect(readFileSync(SUBSET_FILE, 'utf8')).toBe(generateSubset());
  });

  it('holds every class the operator uses, rendering as the library does', () => {
    const runtime = usedNames().filter((n) => n in full);
    expect(runtime.length).toBeGreaterThan(10);
    expect(Object.keys(subset).sort()).toEqual(runtime);
    const render = (lib: Record<string, unknown>, name: string) => {
      const chart = new Chart(new App(), 'c', { namespace: 'ns' });
      const Ctor = lib[name] as new (s: Chart, id: string, p: unknown) => { toJson(): unknown };
      return new Ctor(chart, 'x', {
        metadata: { name: 'x', labels: { a: 'b' } },
      }).toJson();
    };
    for (const n of runtime.filter((r) => r.startsWith('Kube')))
      expect(render(subset, n), n).toEqual(render(full, n));
    expect(subset.IntOrString.fromNumber(5).value).toBe(5);
    expect(subset.Quantity.fromString('1Gi').value).toBe('1Gi');
  });
});
