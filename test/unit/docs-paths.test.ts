// The user-facing pages name only what exists: every repository path they quote (in
// backticks, from a top-level folder) is there, every `npm run` script they tell a reader
// to run is in package.json, and every relative link reaches a page and a heading that exist.
// A renamed file, a dropped script or a retitled section fails here, not for a reader.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const PAGES = [
  'README.md',
  'BENCHMARKS.md',
  'CHANGELOG.md',
  'sdk/README.md',
  // docs/ and its subfolders (docs/tiers/).
  ...readdirSync(join(ROOT, 'docs'), { recursive: true, encoding: 'utf8' })
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

/** Text outside fenced code blocks. */
const prose = (text: string): string => text.replace(/^```[\s\S]*?^```/gm, '');

/** Relative Markdown link targets ([text](path#anchor)): [path, anchor]; web links are skipped. */
export function relativeLinks(text: string): Array<[string, string]> {
  // Inline code is no link (a CEL rule's `]([-a-z0-9]*...)` is not one).
  return [
    ...prose(text)
      .replace(/`[^`\n]*`/g, '')
      .matchAll(/\]\(([^)\s]+)\)/g),
  ]
    .map((m) => m[1] ?? '')
    .filter((t) => !/^[a-z]+:/.test(t))
    .map((t): [string, string] => {
      const at = t.indexOf('#');
      return at < 0 ? [t, ''] : [t.slice(0, at), t.slice(at + 1)];
    });
}

/** The anchors GitHub gives a page's headings (lower case, punctuation dropped, spaces -> -). */
export function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of prose(text).matchAll(/^#{1,6} +(.+)$/gm)) {
    const slug = (m[1] ?? '')
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
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

  it('links only to pages and headings that exist', () => {
    const broken = relativeLinks(text).filter(([path, anchor]) => {
      const target = path === '' ? join(ROOT, page) : join(ROOT, dirname(page), path);
      if (!existsSync(target)) return true;
      return (
        anchor !== '' &&
        target.endsWith('.md') &&
        !anchors(readFileSync(target, 'utf8')).has(anchor)
      );
    });
    expect(broken).toEqual([]);
  });
});

describe('the extractors', () => {
  it('find a missing path and a missing script (so the checks above can fail)', () => {
    const text = 'see `operator/nowhere.ts`, `docs/<page>.md`, `x` and run `npm run -s no:such`';
    expect(quotedPaths(text, ['operator', 'docs'])).toEqual(['operator/nowhere.ts']);
    expect(npmScripts(text)).toEqual(['no:such']);
  });

  it('find links and anchors (so the link check can fail)', () => {
    const text =
      '# A CA per app\n## Redis: one `ACL` user\nsee [x](tiers/web.md#top), [y](#a-ca-per-app), `[c](code.md)` and [z](https://e.org)';
    expect(relativeLinks(text)).toEqual([
      ['tiers/web.md', 'top'],
      ['', 'a-ca-per-app'],
    ]);
    expect([...anchors(text)]).toEqual(['a-ca-per-app', 'redis-one-acl-user']);
  });
});
