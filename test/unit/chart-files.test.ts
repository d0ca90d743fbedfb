// The charts cannot drift from the operator: the generated files on disk are exactly what
// `npm run gen:chart` would write now, and the versions agree.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import yaml from 'js-yaml';
import { IMAGE_TAG } from '../../operator/api/images.ts';
import { chartFiles } from '../../operator/chart-files.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

describe('generated chart files', () => {
  for (const [path, content] of Object.entries(chartFiles())) {
    it(`${path} is up to date (npm run gen:chart)`, () => {
      expect(read(path)).toBe(content);
    });
  }

  it("the chart's CRD is the file in crds/, byte for byte", () => {
    expect(read('charts/scalable-operator/crds/scalableapps.scalable.dev.yaml')).toBe(
      read('crds/scalableapps.scalable.dev.yaml'),
    );
  });

  it('package.json version = both charts appVersion = the default image tag', () => {
    const pkg = JSON.parse(read('package.json')) as { version: string };
    for (const chart of ['scalable-operator', 'scalable-app']) {
      const meta = yaml.load(read(`charts/${chart}/Chart.yaml`)) as { appVersion: string };
      expect(meta.appVersion, chart).toBe(pkg.version);
    }
    expect(IMAGE_TAG).toBe(pkg.version);
  });

  it('the scalable-app schema is closed and names every spec section', () => {
    const schema = JSON.parse(read('charts/scalable-app/values.schema.json')) as {
      additionalProperties: boolean;
      required: string[];
      properties: Record<string, { additionalProperties?: unknown }>;
    };
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(['web']);
    expect(Object.keys(schema.properties).sort()).toEqual(
      [
        'cache',
        'cdn',
        'database',
        'ingress',
        'monitoring',
        'queue',
        'sessions',
        'topology',
        'web',
      ].sort(),
    );
    expect(schema.properties['cache']!.additionalProperties).toBe(false);
    expect(JSON.stringify(schema)).not.toContain('x-kubernetes-');
  });
});
