// Every write the reconciler makes to a child: server-side apply with one field manager,
// create-once for generated Secrets, delete with a UID precondition.
import { randomBytes } from 'node:crypto';
import type { KubeApi } from '../ports/kube-api.ts';
import type { K8sObject } from '../tiers/shared/chart.ts';
import { generatedKeysOf } from '../tiers/shared/secrets.ts';
import type { KindInfo } from './kinds.ts';
import { pathOf } from './kinds.ts';
import { FIELD_MANAGER } from './project.ts';

type Json = Record<string, unknown>;

/** Server-side apply; force takes over fields a hand edit claimed (the operator is the owner). */
export function applyObject(client: KubeApi, info: KindInfo, obj: K8sObject): Promise<Json> {
  return client.request<Json>('PATCH', pathOf(info, obj.metadata.namespace, obj.metadata.name), {
    verb: 'apply',
    resource: info.plural,
    query: { fieldManager: FIELD_MANAGER, force: true },
    contentType: 'application/apply-patch+yaml',
    body: obj,
  });
}

/** 32 random bytes per generated key, base64url: never logged, never rewritten. */
export function withGeneratedValues(obj: K8sObject): K8sObject {
  const data: Record<string, string> = {};
  for (const key of generatedKeysOf(obj)) {
    data[key] = Buffer.from(randomBytes(32).toString('base64url')).toString('base64');
  }
  return { ...obj, data: { ...(obj['data'] as Record<string, string> | undefined), ...data } };
}

/** Creates a generated Secret; false when it already exists (it is never overwritten). */
export async function createOnce(
  client: KubeApi,
  info: KindInfo,
  obj: K8sObject,
): Promise<Json | undefined> {
  try {
    return await client.request<Json>('POST', pathOf(info, obj.metadata.namespace), {
      verb: 'create',
      resource: info.plural,
      query: { fieldManager: FIELD_MANAGER },
      body: withGeneratedValues(obj),
    });
  } catch (err) {
    if ((err as { code?: number }).code === 409) return undefined;
    throw err;
  }
}

/** DeleteOptions: dependents in the background; preconditions only for what is given. */
export function deleteOptions(
  uid?: string,
  gracePeriodSeconds?: number,
  resourceVersion?: string,
): Record<string, unknown> {
  const preconditions = {
    ...(resourceVersion !== undefined ? { resourceVersion } : {}),
    ...(uid ? { uid } : {}),
  };
  return {
    kind: 'DeleteOptions',
    apiVersion: 'v1',
    propagationPolicy: 'Background',
    ...(Object.keys(preconditions).length > 0 ? { preconditions } : {}),
    ...(gracePeriodSeconds !== undefined ? { gracePeriodSeconds } : {}),
  };
}

export async function deleteObject(
  client: KubeApi,
  info: KindInfo,
  namespace: string,
  name: string,
  uid?: string,
  gracePeriodSeconds?: number,
): Promise<void> {
  try {
    await client.request('DELETE', pathOf(info, namespace, name), {
      verb: 'delete',
      resource: info.plural,
      body: deleteOptions(uid, gracePeriodSeconds),
    });
  } catch (err) {
    const code = (err as { code?: number }).code;
    if (code === 404 || code === 409) return; // gone already, or replaced by a newer object
    throw err;
  }
}
