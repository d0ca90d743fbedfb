import { describe, expect, it } from 'vitest';
import { DEFAULT_IMAGES, imagesFromEnv } from '../api/images.ts';
import { planOf } from './reconcile.ts';

const app = {
  apiVersion: 'scalable.dev/v1alpha1',
  kind: 'ScalableApp',
  metadata: { name: 'shop', namespace: 'prod', uid: 'u1', resourceVersion: '1', generation: 1 },
  spec: { web: { image: 'shop:1' }, cache: {} },
};

describe('planOf', () => {
  it('renders the tiers with the images the operator was installed with', () => {
    const images = imagesFromEnv({ SCALABLE_IMAGE_REDIS: 'registry.internal/redis:8' });
    const plan = planOf(app as never, { images });
    expect(plan.ok).toBe(true);
    const text = JSON.stringify(plan.ok ? plan.desired : []);
    expect(text).toContain('registry.internal/redis:8');
    expect(text).not.toContain(DEFAULT_IMAGES.redis);
  });

  it('reports an invalid spec with field paths instead of throwing', () => {
    const plan = planOf({ ...app, spec: { web: { image: 'x', port: 0 } } } as never);
    expect(plan.ok ? [] : plan.errors.map((e) => e.path)).toEqual(['spec.web.port']);
  });
});
