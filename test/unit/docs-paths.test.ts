// The user-facing pages name only what exists: every repository path they quote (in
// backticks, from a top-level folder) is there, and every `npm run` script they tell a reader
// to run is in package.json. A renamed file or a dropped script fails here, not for a reader.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const PAGES = [
  'README.md',
  'BENCHMARKS.md',
  'sdk/README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const TOP = readdirSync(ROOT, { withFileTypes: true })
  .filter((d) => d.isDirectory() && !d.name.startsWith('.') && d.name !== 'node_modules')
  .map((d) => d.name)
  .concat('.ci');
const SCRIPTS = Object.keys(
  (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: object }).scripts,
);

/** Backticked tokens that start at a top-level folder; placeholders and globs are not paths. */
export function quotedPaths(text: string, top: readonly string[]): string[] {
  const paths = [...text.matchAll(/`([^`\s]+)`/g)].map((m) => (m[1] ?? '').replace(/^\.\//, ''));
  return paths.filter(
    (p) => top.some((t) => p === t || p.startsWith(`${t}/`)) && !/[<>*{}$]/.test(p),
  );
}

/** The scripts named after `npm run` (flags such as -s skipped). */
export function npmScripts(text: string): string[] {
  return [...text.matchAll(/npm run (?:-s )?([\w-]+(?::[\w-]+)*)/g)].map((m) => m[1] ?? '');
}

describe.each(PAGES)('%s', (page) => {
  const text = readFileSync(join(ROOT, page), 'utf8');

  it('quotes only repository paths that exist', () => {
    const missing = quotedPaths(text, TOP).filter((p) => !existsSync(join(ROOT, p)));
    expect(missing).toEqual([]);
  });

  it('names only npm scripts that exist', () => {
    expect(npmScripts(text).filter((s) => !SCRIPTS.includes(s))).toEqual([]);
  });
});

describe('the extractors', () => {
  it('find a missing path and a missing script (so the checks above can fail)', () => {
    const text = 'see `operator/nowhere.ts`, `docs/<page>.md`, `x` and run `npm run -s no:such`';
    expect(quotedPaths(text, ['operator', 'docs'])).toEqual(['operator/nowhere.ts']);
    expect(npmScripts(text)).toEqual(['no:such']);
  });
});
