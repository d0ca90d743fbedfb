// Builds models from partial specs for the builder tests.
import { toModel } from '../api/model.ts';
import type { AppModel } from '../api/model.ts';
import { validateApp } from '../api/validate.ts';
import type { K8sObject } from './chart.ts';

export function modelOf(
  spec: Record<string, unknown>,
  name = 'shop',
  namespace = 'prod',
): AppModel {
  const r = validateApp({
    apiVersion: 'scalable.dev/v1alpha1',
    kind: 'ScalableApp',
    metadata: { name, namespace },
    spec: { web: { image: 'shop:1' }, ...spec },
  });
  if (!r.ok) throw new Error(r.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  return toModel(r.app);
}

export function find(objects: readonly K8sObject[], kind: string, name?: string): K8sObject {
  const o = objects.find(
    (x) => x.kind === kind && (name === undefined || x.metadata.name === name),
  );
  if (!o)
    throw new Error(
      `no ${kind} ${name ?? ''} in ${objects.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')}`,
    );
  return o;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const spec = (o: K8sObject): any => o['spec'];
