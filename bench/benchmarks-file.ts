// BENCHMARKS.md holds one section per bench between `<!-- bench:NAME -->` markers: a bench
// replaces its own section (or appends it) and leaves the others as they are.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const BENCHMARKS_PATH = join(import.meta.dirname, '..', 'BENCHMARKS.md');

/** Writes `section` (markers included) as bench `name`'s section; returns the file's path. */
export function writeBenchSection(name: string, section: string): string {
  const old = existsSync(BENCHMARKS_PATH)
    ? readFileSync(BENCHMARKS_PATH, 'utf8')
    : '# Benchmarks\n';
  const re = new RegExp(`<!-- bench:${name} -->[\\s\\S]*<!-- /bench:${name} -->`);
  // A function replacement: `$` in the section must stay literal.
  const next = re.test(old) ? old.replace(re, () => section) : `${old.trimEnd()}\n\n${section}\n`;
  writeFileSync(BENCHMARKS_PATH, next);
  return BENCHMARKS_PATH;
}
