import { describe, expect, it } from 'vitest';
import { CROSS_CUTTING_SECTIONS, SPEC_SECTIONS } from '../api/sections.ts';
import { TIERS, appWiring, buildAll, tierOf } from './index.ts';
import { TIER_LABEL } from './shared/meta.ts';
import { modelOf } from './shared/test-helpers.ts';

const everything = modelOf({
  ingress: { host: 'shop.example.com' },
  cdn: { baseURL: 'https://cdn.example.com' },
  cache: { replicas: 1 },
  sessions: {},
  database: { shards: 2, shardKey: 'user_id' },
  monitoring: {},
});

/** Sections the API accepts that render nothing yet (their tiers are open issues). Adding
 *  a tier for one must remove it here: the first test fails until it does. */
const NOT_BUILT_YET: string[] = [];

describe('the tier registry', () => {
  it('covers every spec section that renders objects, each by exactly one tier', () => {
    const covered = TIERS.flatMap((t) => t.sections);
    const wanted = SPEC_SECTIONS.filter(
      (s) => !CROSS_CUTTING_SECTIONS.includes(s) && !NOT_BUILT_YET.includes(s),
    );
    expect([...covered].sort()).toEqual([...wanted].sort());
  });

  it('names each tier and condition once', () => {
    expect(new Set(TIERS.map((t) => t.name)).size).toBe(TIERS.length);
    expect(new Set(TIERS.map((t) => t.conditionType)).size).toBe(TIERS.length);
  });

  it('labels every object with the tier that built it, so status finds its owner', () => {
    for (const tier of TIERS) {
      for (const o of tier.build(everything, appWiring(everything))) {
        expect(o.metadata.labels?.[TIER_LABEL], `${o.kind} ${o.metadata.name}`).toBe(tier.name);
        expect(tierOf(o)).toBe(tier);
      }
    }
  });

  it('applies in registry order: the cache, then the session store, before the web pods', () => {
    const names = buildAll(everything).map((o) => `${o.kind}/${o.metadata.name}`);
    expect(names.indexOf('StatefulSet/shop-cache')).toBeLessThan(
      names.indexOf('StatefulSet/shop-sessions'),
    );
    expect(names.indexOf('StatefulSet/shop-sessions')).toBeLessThan(
      names.indexOf('Deployment/shop-web'),
    );
  });

  it('hands app pods every tier wiring, passwords only by reference', () => {
    const env = appWiring(everything).env;
    for (const name of ['SCALABLE_APP', 'ASSET_BASE_URL', 'REDIS_SENTINELS', 'SESSION_REDIS_URL'])
      expect(env.map((e) => e.name)).toContain(name);
    expect(env.map((e) => e.name)).toContain('DATABASE_SHARD_MAP');
    for (const e of env.filter((e) => e.name.endsWith('PASSWORD')))
      expect(e.valueFrom?.secretKeyRef).toBeDefined();
  });
});
