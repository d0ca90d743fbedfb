import { describe, expect, it } from 'vitest';
import { validateApp } from './validate.ts';
import { VALID_EDGES, appDoc } from '../../test/unit/invalid-cases.ts';

describe('quantity rules offline (the CEL quantity library of the API server)', () => {
  it.each(VALID_EDGES)('accepts %s', (_name, doc) => {
    const r = validateApp(doc);
    expect(r.ok ? [] : r.errors).toEqual([]);
  });

  it('compares across suffixes: 1000Mi is below 1Gi, 1G is below 1Gi', () => {
    const sizes = (size: string) => {
      const r = validateApp(appDoc({ database: { storage: { size } } }));
      return r.ok;
    };
    expect(sizes('1024Mi')).toBe(true);
    expect(sizes('1000Mi')).toBe(false);
    expect(sizes('1G')).toBe(false);
    expect(sizes('1073741824')).toBe(true);
  });
});
