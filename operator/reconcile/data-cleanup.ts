// deletionPolicy: Delete, the one place a finalizer earns its keep. Volumes go with their
// StatefulSets (persistentVolumeClaimRetentionPolicy), but the state Patroni keeps in
// ConfigMaps carries no owner: left behind, a re-created database would find a stale system
// id and never bootstrap. So an app whose database says Delete holds a finalizer; when the
// app is deleted (or its database switched off), the operator stops the database pods,
// deletes Patroni's ConfigMaps, and only then lets go.
import type { AppModel } from '../api/model.ts';
import type { KubeClient } from '../runtime/kube-client.ts';
import { DATABASE_LABEL, patroniStateSelector } from '../tiers/database/names.ts';
import { TIER_LABEL } from '../tiers/meta.ts';
import { APP_KIND, PVC_KIND, kindOf, pathOf } from './kinds.ts';
import type { KindInfo } from './kinds.ts';
import type { CachedApp, CachedChild, CachedPod } from './project.ts';
import { deleteObject } from './writes.ts';

export const DATA_FINALIZER = 'scalable.dev/database-cleanup';

type Json = Record<string, unknown>;

export const wantsFinalizer = (model: AppModel | undefined): boolean =>
  model?.database?.deletionPolicy === 'Delete';

export const hasFinalizer = (app: CachedApp): boolean =>
  app.metadata.finalizers?.includes(DATA_FINALIZER) ?? false;

/** Adds or removes our finalizer; the resourceVersion makes a concurrent change conflict. */
export async function setFinalizer(client: KubeClient, app: CachedApp, on: boolean): Promise<void> {
  const others = (app.metadata.finalizers ?? []).filter((f) => f !== DATA_FINALIZER);
  await client.request('PATCH', pathOf(APP_KIND, app.metadata.namespace, app.metadata.name), {
    verb: 'patch',
    resource: APP_KIND.plural,
    contentType: 'application/merge-patch+json',
    body: {
      metadata: {
        resourceVersion: app.metadata.resourceVersion,
        finalizers: on ? [...others, DATA_FINALIZER] : others,
      },
    },
  });
}

const isDatabasePod = (p: CachedPod, app: string): boolean =>
  p.metadata.labels?.[DATABASE_LABEL] === app || p.metadata.labels?.[TIER_LABEL] === 'database';

/**
 * One step of the cleanup; true when it is done (the finalizer may go). Pod deletions
 * requeue the app, so "not yet" needs no timer.
 */
/** Deletes the objects the selector finds that the app does not own (ours go with it). */
async function deleteUnowned(
  client: KubeClient,
  info: KindInfo,
  namespace: string,
  labelSelector: string,
  appUid: string,
): Promise<void> {
  const list = await client.request<{ items: Json[] }>('GET', pathOf(info, namespace), {
    verb: 'list',
    resource: info.plural,
    query: { labelSelector },
  });
  for (const item of list.items) {
    const meta = item['metadata'] as Json;
    const owners = (meta['ownerReferences'] ?? []) as Json[];
    if (owners.some((o) => o['uid'] === appUid)) continue;
    await deleteObject(client, info, namespace, String(meta['name']), String(meta['uid']));
  }
}

export async function cleanUpDatabase(
  client: KubeClient,
  app: CachedApp,
  children: readonly CachedChild[],
  pods: readonly CachedPod[],
): Promise<boolean> {
  const { name, namespace, uid } = app.metadata;
  for (const c of children) {
    if (
      c.kind !== 'StatefulSet' ||
      c.metadata.labels?.[TIER_LABEL] !== 'database' ||
      c.metadata.deleting
    )
      continue;
    if (!c.metadata.ownerReferences?.some((o) => o.uid === uid)) continue;
    const info = kindOf(c.apiVersion, c.kind);
    if (info) await deleteObject(client, info, namespace, c.metadata.name, c.metadata.uid);
  }
  if (pods.some((p) => isDatabasePod(p, name))) return false;
  // Patroni's state, and the volumes: a StatefulSet's retention policy deletes its PVCs only
  // once the controller has given them owner references, which it does lazily and can lose
  // to a conflict when the StatefulSet goes soon after it came (seen in the tests).
  for (const info of [kindOf('v1', 'ConfigMap'), PVC_KIND]) {
    if (!info) return false;
    await deleteUnowned(client, info, namespace, patroniStateSelector({ name } as AppModel), uid);
  }
  return true;
}
