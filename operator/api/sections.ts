// The spec's top-level sections, as the schema declares them: what the tier registry must
// cover (tiers/index.test.ts) and what a warm-up plan switches on.
import { ScalableAppSpec } from './schema.ts';
import type { ScalableAppSpecModel } from './schema.ts';

export type SpecSection = keyof ScalableAppSpecModel;

export const SPEC_SECTIONS = Object.keys(ScalableAppSpec.properties) as SpecSection[];

/** Sections that shape every tier's objects instead of rendering objects of their own. */
export const CROSS_CUTTING_SECTIONS: readonly SpecSection[] = ['topology'];

/** A valid spec with most sections on at their defaults: loads and runs every builder once. */
export const WARM_UP_SPEC = {
  web: { image: 'warm-up' },
  ingress: {},
  cache: {},
  sessions: {},
  database: { pooler: {} },
  monitoring: {},
} as const;
