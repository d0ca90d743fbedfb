import { describe, expect, it } from 'vitest';
import type { K8sObject } from '../tiers/shared/chart.ts';
import { SPEC_HASH_ANNOTATION, firstDifference, hashOf, whyApply, withSpecHash } from './diff.ts';

const deploy = (image: string, extra: Record<string, unknown> = {}): K8sObject =>
  withSpecHash({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'a-web', namespace: 'n', labels: { app: 'a' } },
    spec: {
      template: {
        spec: {
          containers: [
            { name: 'web', image, env: [], resources: { limits: { memory: '512Mi', cpu: '0.5' } } },
          ],
        },
      },
      ...extra,
    },
  });

/** What the API server would hold after applying: defaults added, quantities canonical. */
const liveOf = (obj: K8sObject) => {
  const body = structuredClone(obj['spec']) as {
    template: { spec: { containers: Record<string, unknown>[] } };
  };
  const c = body.template.spec.containers[0]!;
  delete c['env'];
  c['imagePullPolicy'] = 'IfNotPresent';
  (c['resources'] as { limits: Record<string, string> }).limits['cpu'] = '500m';
  return {
    metadata: { ...obj.metadata, annotations: { ...obj.metadata.annotations, other: 'kept' } },
    body: { spec: { ...body, replicas: 2 } },
  };
};

describe('whyApply', () => {
  it('skips an object whose live copy holds every field we send', () => {
    const d = deploy('img:1');
    expect(whyApply(d, liveOf(d))).toBeUndefined();
  });
  it('applies when absent, when the spec changed, and when an owned field drifted', () => {
    const d = deploy('img:1');
    expect(whyApply(d, undefined)).toBe('absent');
    expect(whyApply(deploy('img:2'), liveOf(d))).toBe('spec changed');
    const drifted = liveOf(d);
    (drifted.body.spec.template.spec.containers[0] as Record<string, unknown>)['image'] =
      'hand:edit';
    expect(whyApply(d, drifted)).toMatch(/drift at \.spec\.template\.spec\.containers\[0\]/);
    const relabelled = liveOf(d);
    relabelled.metadata.labels = { app: 'b' };
    expect(whyApply(d, relabelled)).toBe('drift at .metadata.labels.app');
  });
  it('notices a field we stopped sending through the hash', () => {
    const withField = deploy('img:1', { paused: true });
    const without = deploy('img:1');
    expect(without.metadata.annotations?.[SPEC_HASH_ANNOTATION]).not.toBe(
      withField.metadata.annotations?.[SPEC_HASH_ANNOTATION],
    );
    expect(whyApply(without, liveOf(withField))).toBe('spec changed');
  });
});

describe('firstDifference', () => {
  it('matches list items by content, ignoring extra items of other managers', () => {
    expect(
      firstDifference([{ name: 'a', v: 1 }], [{ name: 'sidecar' }, { name: 'a', v: 1, x: 2 }]),
    ).toBeUndefined();
    expect(firstDifference([{ name: 'a', v: 1 }], [{ name: 'a', v: 2 }])).toBe('[0]');
  });
  it('compares scalar lists exactly and quantities by value', () => {
    expect(firstDifference(['a', 'b'], ['a'])).toBe('');
    expect(firstDifference({ m: '1Gi' }, { m: '1024Mi' })).toBeUndefined();
    expect(firstDifference({ m: '1Gi' }, { m: '1G' })).toBe('.m');
    expect(firstDifference({ port: 'http' }, { port: 'https' })).toBe('.port');
  });
  it('hashes independently of key order', () => {
    expect(hashOf({ a: 1, b: { c: 2, d: 3 } })).toBe(hashOf({ b: { d: 3, c: 2 }, a: 1 }));
  });
});
