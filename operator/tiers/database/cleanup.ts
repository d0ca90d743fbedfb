// deletionPolicy: Delete, the one place a finalizer earns its keep, and the only path that
// deletes a database's data. Nothing else does: volumes outlive their StatefulSets
// (whenDeleted: Retain), the password Secrets and Patroni's state ConfigMaps carry no owner.
// So switching the database off keeps everything, and so does Retain when the app goes. An app
// whose database says Delete holds a finalizer (kept while the section is off); when the app
// is deleted, the operator stops the database pods, deletes the volumes, Patroni's state and
// the Secrets, and only then lets go.
import type { AppModel } from '../../api/model.ts';
import { TIER_LABEL } from '../shared/meta.ts';
import type { Observed } from '../shared/report.ts';
import type { AppRef, ClusterAccess } from '../tier.ts';
import { DATABASE_LABEL, databaseSecretNames, patroniStateSelector } from './names.ts';

export const DATA_FINALIZER = 'scalable.dev/database-cleanup';

/** What a switched-off database keeps, and how to delete it by hand (Tier.retained). */
export function retainedDatabase(app: Pick<AppModel, 'name' | 'namespace'>): string {
  const selector = patroniStateSelector(app);
  const secrets = databaseSecretNames(app).join(' ');
  return (
    `the database is off and its data is kept: volumes and Patroni's state (-l ${selector}), ` +
    `Secrets ${secrets}. Turn it on again to reopen it, or delete it by hand: ` +
    `kubectl -n ${app.namespace} delete pvc,configmap -l ${selector}; ` +
    `kubectl -n ${app.namespace} delete secret ${secrets}`
  );
}

/** Delete: hold it; Retain: let go; no database section: keep what the app holds. */
export const wantsFinalizer = (model: AppModel): boolean | undefined =>
  model.database ? model.database.deletionPolicy === 'Delete' : undefined;

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
  // By name: the operator does not list Secrets.
  for (const name of databaseSecretNames(app))
    await cluster.delete('v1', 'Secret', app.namespace, name);
  return true;
}
