// Builds models from partial specs for the builder tests.
import { toModel } from '../../api/model.ts';
import type { AppModel } from '../../api/model.ts';
import { validateApp } from '../../api/validate.ts';
import type { K8sObject } from './chart.ts';
import type { Observed, ObservedObject } from './report.ts';

export function modelOf(
  spec: Record<string, unknown>,
  name = 'shop',
  namespace = 'prod',
  /** As the operator reads an app back (rules for written specs skipped). */
  stored = false,
): AppModel {
  const r = validateApp(
    {
      apiVersion: 'scalable.dev/v1alpha1',
      kind: 'ScalableApp',
      metadata: { name, namespace },
      spec: { web: { image: 'shop:1' }, ...spec },
    },
    undefined,
    { stored },
  );
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

/** "Kind/name" of each object, in order. */
export const kindNames = (objects: readonly K8sObject[]): string[] =>
  objects.map((o) => `${o.kind}/${o.metadata.name}`);

/** The app's own CA for cert-manager (app "shop"), rendered by the first tier with TLS. */
export const APP_CA = [
  'Issuer/shop-tls-selfsigned',
  'Certificate/shop-tls-ca',
  'Issuer/shop-tls-ca',
] as const;

/** A server's key pair: its Secret, the public half for clients, its cert-manager Certificate. */
export const tlsNames = (base: string): string[] => [
  `Secret/${base}-tls`,
  `ConfigMap/${base}-tls-public`,
  `Certificate/${base}`,
];

// Observed children and pods for the status tests.
export const obj = (
  kind: string,
  name: string,
  status?: Record<string, unknown>,
): ObservedObject => ({
  apiVersion: kind === 'Secret' ? 'v1' : 'apps/v1',
  kind,
  metadata: { name, namespace: 'prod', generation: 1 },
  ...(status ? { status } : {}),
});

export const workload = (
  kind: string,
  name: string,
  desired: number,
  ready: number,
  updated = desired,
) =>
  obj(kind, name, {
    observedGeneration: 1,
    replicas: desired,
    readyReplicas: ready,
    updatedReplicas: updated,
  });

export const pod = (
  name: string,
  tier: string,
  status: Record<string, unknown>,
): ObservedObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, labels: { 'scalable.dev/app': 'shop', 'scalable.dev/tier': tier } },
  status,
});

export const observed = (objects: ObservedObject[], pods: ObservedObject[] = []): Observed => ({
  objects,
  pods,
  missingApis: [],
});
