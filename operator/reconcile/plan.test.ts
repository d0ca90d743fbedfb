import { describe, expect, it } from 'vitest';
import { DEFAULT_IMAGES } from '../api/images.ts';
import type { Images } from '../api/images.ts';
import { WARM_UP_SPEC } from '../api/sections.ts';
import { Plans, planOf } from './plans.ts';

const app = {
  apiVersion: 'scalable.dev/v1alpha1',
  kind: 'ScalableApp',
  metadata: { name: 'shop', namespace: 'prod', uid: 'u1', resourceVersion: '1', generation: 1 },
  spec: WARM_UP_SPEC,
};

describe('planOf', () => {
  it('renders the tiers with the images the operator was installed with', () => {
    const images = Object.fromEntries(
      Object.keys(DEFAULT_IMAGES).map((k) => [k, `registry.internal/${k}:1`]),
    ) as unknown as Images;
    const plan = planOf(app as never, { images });
    expect(plan.ok).toBe(true);
    const text = JSON.stringify(plan.ok ? plan.desired : []);
    for (const image of Object.values(images)) expect(text).toContain(image);
    for (const image of Object.values(DEFAULT_IMAGES)) expect(text).not.toContain(image);
  });

  it('reports an invalid spec with field paths instead of throwing', () => {
    const plan = planOf({ ...app, spec: { web: { image: 'x', port: 0 } } } as never);
    expect(plan.ok ? [] : plan.errors.map((e) => e.path)).toEqual(['spec.web.port']);
  });

  it('keeps the shard groups the record holds while the spec asks for fewer (a shrink)', () => {
    const two = {
      ...app,
      spec: { web: { image: 'x' }, database: { shards: 2, shardKey: 'user_id' } },
    };
    const names = (plan: ReturnType<typeof planOf>) =>
      plan.ok
        ? plan.desired.filter((o) => o.kind === 'StatefulSet').map((o) => o.metadata.name)
        : [];
    const plans = new Plans();
    expect(names(plans.get(two as never))).toEqual(['shop-db-0', 'shop-db-1']);
    // Same generation, a held shard more: planned anew, not the cached plan.
    expect(names(plans.get(two as never, { database: 3 }))).toEqual([
      'shop-db-0',
      'shop-db-1',
      'shop-db-2',
    ]);
    expect(names(plans.get(two as never, { database: 2 }))).toEqual(['shop-db-0', 'shop-db-1']);
  });
});
