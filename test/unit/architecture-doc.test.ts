// docs/architecture.md cannot drift from the code it describes: its rule table names exactly
// the rules `npm run lint` runs (.dependency-cruiser.cjs), and every file it names exists.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const DOC = readFileSync(join(ROOT, 'docs', 'architecture.md'), 'utf8');
const config = createRequire(import.meta.url)(join(ROOT, '.dependency-cruiser.cjs')) as {
  forbidden: { name: string }[];
};

describe('docs/architecture.md', () => {
  it('lists every dependency-cruiser rule, and no other', () => {
    const documented = [...DOC.matchAll(/^\| `([a-z-]+)` +\|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(config.forbidden.map((r) => r.name).sort());
  });

  it('names only paths that exist (under operator/ or from the repository root)', () => {
    const files = [...DOC.matchAll(/`([\w.-]*\/[\w./-]+\.(?:ts|cjs))`/g)].map((m) => m[1] ?? '');
    expect(files.length).toBeGreaterThan(10);
    const missing = files.filter(
      (f) => !existsSync(join(ROOT, f)) && !existsSync(join(ROOT, 'operator', f)),
    );
    expect(missing).toEqual([]);
  });
});
