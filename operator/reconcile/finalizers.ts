// Finalizers on the app, one per tier whose data clean-up needs one (Tier.hooks.finalizer).
import type { KubeApi } from '../ports/kube-api.ts';
import { TIERS } from '../tiers/index.ts';
import type { TierHooks } from '../tiers/tier.ts';
import { APP_KIND, pathOf } from './kinds.ts';
import type { CachedApp } from './project.ts';

export type FinalizerHook = NonNullable<TierHooks['finalizer']>;

export const finalizerHooks = (): FinalizerHook[] =>
  TIERS.flatMap((t) => (t.hooks?.finalizer ? [t.hooks.finalizer] : []));

/** Adds and removes finalizers; the resourceVersion makes a concurrent change conflict. */
export async function setFinalizers(
  client: KubeApi,
  app: CachedApp,
  change: { readonly add?: readonly string[]; readonly remove?: readonly string[] },
): Promise<void> {
  const current = app.metadata.finalizers ?? [];
  const kept = current.filter((f) => !change.remove?.includes(f));
  const finalizers = [...kept, ...(change.add ?? []).filter((f) => !kept.includes(f))];
  await client.request('PATCH', pathOf(APP_KIND, app.metadata.namespace, app.metadata.name), {
    verb: 'patch',
    resource: APP_KIND.plural,
    contentType: 'application/merge-patch+json',
    body: { metadata: { resourceVersion: app.metadata.resourceVersion, finalizers } },
  });
}
