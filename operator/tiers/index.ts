// Every tier's builder, in the order objects are applied. A builder returns nothing when
// its tier is off; the reconciler prunes what is no longer desired.
import type { AppModel } from '../api/model.ts';
import { buildCacheTiers } from './cache.ts';
import type { K8sObject } from './chart.ts';
import { buildDatabase } from './database/index.ts';
import { buildIngress } from './ingress.ts';
import { buildWeb } from './web.ts';

export type Builder = (app: AppModel) => K8sObject[];

export const BUILDERS: readonly Builder[] = [
  buildCacheTiers,
  buildDatabase,
  buildWeb,
  buildIngress,
];

export function buildAll(app: AppModel): K8sObject[] {
  return BUILDERS.flatMap((build) => build(app));
}
