// The operator's version: package.json's, found from this module whether it runs from the
// source tree (operator/version.ts) or compiled (dist/operator/version.js, as in the image).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export function operatorVersion(): string {
  let dir = import.meta.dirname;
  for (let i = 0; i < 4; i++) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'scalable-operator' && pkg.version) return pkg.version;
    }
    dir = dirname(dir);
  }
  return 'unknown';
}
