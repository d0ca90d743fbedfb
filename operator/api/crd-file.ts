import yaml from 'js-yaml';
import { fileURLToPath } from 'node:url';
import { buildCrd } from './crd.ts';

export const crdPath = fileURLToPath(
  new URL('../../crds/scalableapps.scalable.dev.yaml', import.meta.url),
);

export function crdYaml(): string {
  const header = '# Generated from operator/api/schema.ts by `npm run gen:crd`. Do not edit.\n';
  return header + yaml.dump(buildCrd(), { noRefs: true, lineWidth: 120, sortKeys: false });
}
