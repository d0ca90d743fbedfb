// Generated credentials. A builder declares a Secret and the keys to generate; the
// reconciler fills them with random values once, at creation, and never rewrites them.
// Offline renders show the declaration without values, so no password is ever printed.
import type { AppModel } from '../../api/model.ts';
import type { K8sObject } from './chart.ts';
import { metadataOf } from './meta.ts';
import type { TierName } from './meta.ts';

export const GENERATED_KEYS_ANNOTATION = 'scalable.dev/generated-keys';

export function generatedSecret(
  app: AppModel,
  tier: TierName,
  name: string,
  keys: readonly string[],
  component: string = tier,
): K8sObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: metadataOf(app, tier, name, component, {
      annotations: { [GENERATED_KEYS_ANNOTATION]: keys.join(',') },
    }),
    type: 'Opaque',
  };
}

export const generatedKeysOf = (obj: K8sObject): string[] =>
  (obj.metadata.annotations?.[GENERATED_KEYS_ANNOTATION] ?? '').split(',').filter(Boolean);
