// Generated credentials. A builder declares a Secret and the keys to generate; the
// reconciler fills them with random values once, at creation, and never rewrites them.
// Offline renders show the declaration without values, so no password is ever printed.
// Secrets that reopen data (a database's passwords) are `retained`: no owner, so neither
// pruning nor the garbage collector takes them; a re-created app finds and reuses them.
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
  retained = false,
): K8sObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: metadataOf(app, tier, name, component, {
      annotations: { [GENERATED_KEYS_ANNOTATION]: keys.join(',') },
      ...(retained ? { owned: false } : {}),
    }),
    type: 'Opaque',
  };
}

export const generatedKeysOf = (obj: K8sObject): string[] =>
  (obj.metadata.annotations?.[GENERATED_KEYS_ANNOTATION] ?? '').split(',').filter(Boolean);
