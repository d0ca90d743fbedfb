// Names, labels and owner references shared by every tier's objects.
import type { AppModel } from '../../api/model.ts';
import { API_VERSION, KIND } from '../../api/schema.ts';
import type { K8sObject } from './chart.ts';

/** A tier's name: the value of its objects' scalable.dev/tier label (tiers/index.ts). */
export type TierName = string;

export const MANAGED_BY = 'scalable-operator';
export const APP_LABEL = 'scalable.dev/app';
export const TIER_LABEL = 'scalable.dev/tier';
export const COMPONENT_LABEL = 'app.kubernetes.io/component';
/**
 * On an object of an optional API that has a fallback (cert-manager's Certificates: the
 * operator issues itself): when the API is not served the object is skipped without making
 * its tier APIUnavailable.
 */
export const IF_SERVED_ANNOTATION = 'scalable.dev/if-served';

/** Deterministic object name: <app>-<suffix parts>. */
export const nameOf = (app: Pick<AppModel, 'name'>, ...parts: Array<string | number>): string =>
  [app.name, ...parts].join('-');

/** Labels on every object (and pod) of a tier. */
export function labelsOf(
  app: AppModel,
  tier: TierName,
  component: string = tier,
): Record<string, string> {
  return {
    'app.kubernetes.io/name': app.name,
    'app.kubernetes.io/instance': app.name,
    [COMPONENT_LABEL]: component,
    'app.kubernetes.io/part-of': app.name,
    'app.kubernetes.io/managed-by': MANAGED_BY,
    [APP_LABEL]: app.name,
    [TIER_LABEL]: tier,
  };
}

/** The stable subset used in selectors (selectors are immutable on Deployments). */
export function selectorOf(
  app: AppModel,
  tier: TierName,
  component: string = tier,
): Record<string, string> {
  return { [APP_LABEL]: app.name, [TIER_LABEL]: tier, [COMPONENT_LABEL]: component };
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller: boolean;
  blockOwnerDeletion: boolean;
}

/** Owner reference to the ScalableApp; absent offline, where the app has no UID yet. */
export function ownerReferencesOf(app: AppModel): OwnerReference[] | undefined {
  if (!app.uid) return undefined;
  return [
    {
      apiVersion: API_VERSION,
      kind: KIND,
      name: app.name,
      uid: app.uid,
      controller: true,
      blockOwnerDeletion: true,
    },
  ];
}

export function metadataOf(
  app: AppModel,
  tier: TierName,
  name: string,
  component: string = tier,
  extra: { annotations?: Record<string, string>; owned?: boolean } = {},
) {
  const owners = extra.owned === false ? undefined : ownerReferencesOf(app);
  return {
    name,
    namespace: app.namespace,
    labels: labelsOf(app, tier, component),
    ...(extra.annotations && Object.keys(extra.annotations).length > 0
      ? { annotations: extra.annotations }
      : {}),
    ...(owners ? { ownerReferences: owners } : {}),
  };
}

/** A copy of the object with these annotations added (or replaced). */
export const withAnnotations = <T extends K8sObject>(
  obj: T,
  annotations: Readonly<Record<string, string>>,
): T => ({
  ...obj,
  metadata: { ...obj.metadata, annotations: { ...obj.metadata.annotations, ...annotations } },
});
