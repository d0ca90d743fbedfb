// Golden files for the cache and session tiers alone, one per shape (the whole-app goldens
// in test/golden cover the examples). UPDATE_GOLDEN=1 accepts a change after review.
import { readFileSync, writeFileSync } from 'node:fs';
import yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { buildCacheTiers } from './cache.ts';
import { modelOf } from './test-helpers.ts';

const CASES: Record<string, Record<string, unknown>> = {
  'cache-standalone': { cache: { memory: '512Mi', evictionPolicy: 'allkeys-lfu' } },
  'cache-sentinel': { cache: { replicas: 2, defaultTTLSeconds: 60 }, monitoring: {} },
  sessions: { sessions: { ttlSeconds: 3600, storage: { size: '2Gi', storageClassName: 'fast' } } },
};

describe('cache tier golden files', () => {
  it.each(Object.keys(CASES))('%s renders exactly as golden/%s.yaml', (name) => {
    const objects = buildCacheTiers({ ...modelOf(CASES[name] ?? {}), uid: 'uid-1' });
    const text = objects
      .map((o) => `---\n${yaml.dump(o, { noRefs: true, lineWidth: -1 })}`)
      .join('');
    const file = new URL(`./golden/${name}.yaml`, import.meta.url);
    if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(file, text);
    expect(text).toBe(readFileSync(file, 'utf8'));
  });
});
