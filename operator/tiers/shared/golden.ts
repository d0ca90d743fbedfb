// Golden files: the exact YAML a tier renders for a few shapes, kept beside the tier.
// UPDATE_GOLDEN=1 rewrites them after a reviewed change.
import { readFileSync, writeFileSync } from 'node:fs';
import yaml from 'js-yaml';
import type { K8sObject } from './chart.ts';

export function goldenText(objects: readonly K8sObject[]): string {
  return objects.map((o) => `---\n${yaml.dump(o, { noRefs: true, lineWidth: -1 })}`).join('');
}

/** The golden file's text; rewritten first when UPDATE_GOLDEN=1. */
export function golden(file: URL, actual: string): string {
  if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(file, actual);
  return readFileSync(file, 'utf8');
}
