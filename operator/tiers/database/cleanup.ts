// deletionPolicy: Delete, the one place a finalizer earns its keep. Volumes go with their
// StatefulSets (persistentVolumeClaimRetentionPolicy), but the state Patroni keeps in
// ConfigMaps carries no owner: left behind, a re-created database would find a stale system
// id and never bootstrap. So an app whose database says Delete holds a finalizer; when the
// app is deleted (or its database switched off), the operator stops the database pods,
// deletes Patroni's ConfigMaps, and only then lets go.
import type { AppModel } from '../../api/model.ts';
import { TIER_LABEL } from '../shared/meta.ts';
import type { Observed } from '../shared/report.ts';
import type { AppRef, ClusterAccess } from '../tier.ts';
import { DATABASE_LABEL, patroniStateSelector } from './names.ts';

export const DATA_FINALIZER = 'scalable.dev/database-cleanup';

export const wantsFinalizer = (model: AppModel): boolean =>
  model.database?.deletionPolicy === 'Delete';

interface Meta {
  readonly name: string;
  readonly uid?: string;
  readonly labels?: Record<string, string>;
  readonly ownerReferences?: readonly { readonly uid: string }[];
  readonly deletionTimestamp?: string;
}

const metaOf = (o: { metadata: unknown }): Meta => o.metadata as Meta;

const isDatabasePod = (labels: Meta['labels'], app: string): boolean =>
  labels?.[DATABASE_LABEL] === app || labels?.[TIER_LABEL] === 'database';

/** Deletes the objects the selector finds that the app does not own (ours go with it). */
async function deleteUnowned(
  cluster: ClusterAccess,
  apiVersion: string,
  kind: string,
  app: AppRef,
  labelSelector: string,
): Promise<void> {
  for (const item of await cluster.list(apiVersion, kind, app.namespace, labelSelector)) {
    const meta = metaOf(item as { metadata: unknown });
    if (meta.ownerReferences?.some((o) => o.uid === app.uid)) continue;
    await cluster.delete(apiVersion, kind, app.namespace, meta.name, meta.uid);
  }
}

/**
 * One step of the cleanup; true when it is done (the finalizer may go). Pod deletions
 * requeue the app, so "not yet" needs no timer.
 */
export async function cleanUpDatabase(
  app: AppRef,
  observed: Observed,
  cluster: ClusterAccess,
): Promise<boolean> {
  for (const o of observed.objects) {
    const meta = metaOf(o);
    if (o.kind !== 'StatefulSet' || meta.labels?.[TIER_LABEL] !== 'database') continue;
    if (meta.deletionTimestamp || !meta.ownerReferences?.some((r) => r.uid === app.uid)) continue;
    await cluster.delete(o.apiVersion, o.kind, app.namespace, meta.name, meta.uid);
  }
  if (observed.pods.some((p) => isDatabasePod(metaOf(p).labels, app.name))) return false;
  // Patroni's state, and the volumes: a StatefulSet's retention policy deletes its PVCs only
  // once the controller has given them owner references, which it does lazily and can lose
  // to a conflict when the StatefulSet goes soon after it came (seen in the tests).
  const selector = patroniStateSelector(app);
  await deleteUnowned(cluster, 'v1', 'ConfigMap', app, selector);
  await deleteUnowned(cluster, 'v1', 'PersistentVolumeClaim', app, selector);
  return true;
}
