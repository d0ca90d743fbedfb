// Golden files for the cache tier alone, one per shape (the whole-app goldens in test/golden
// cover the examples).
import { describe, expect, it } from 'vitest';
import { golden, goldenText } from '../shared/golden.ts';
import { modelOf } from '../shared/test-helpers.ts';
import { buildCache } from './build.ts';

const CASES: Record<string, Record<string, unknown>> = {
  'cache-standalone': { cache: { memory: '512Mi', evictionPolicy: 'allkeys-lfu' } },
  'cache-sentinel': { cache: { replicas: 2, defaultTTLSeconds: 60 }, monitoring: {} },
};

describe('cache tier golden files', () => {
  it.each(Object.keys(CASES))('%s renders exactly as its golden YAML', (name) => {
    const text = goldenText(buildCache({ ...modelOf(CASES[name] ?? {}), uid: 'uid-1' }));
    expect(text).toBe(golden(new URL(`./golden/${name}.yaml`, import.meta.url), text));
  });
});
