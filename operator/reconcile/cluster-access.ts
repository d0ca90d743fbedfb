// The ClusterAccess that tier hooks get (tiers/tier.ts): a few verbs by apiVersion and kind,
// over the operator's client, limited to the kinds the operator knows (and so holds RBAC for).
import { ApiError, isNotFound } from '../ports/kube-api.ts';
import type { KubeApi } from '../ports/kube-api.ts';
import { ConflictError } from '../ports/cluster-access.ts';
import type { ClusterAccess } from '../ports/cluster-access.ts';
import { kindOf, pathOf } from './kinds.ts';
import type { KindInfo } from './kinds.ts';
import { deleteObject, deleteOptions } from './writes.ts';

type Json = Record<string, unknown>;

function known(apiVersion: string, kind: string): KindInfo {
  const info = kindOf(apiVersion, kind);
  if (!info) throw new Error(`the operator does not manage ${apiVersion} ${kind}`);
  return info;
}

export function clusterAccess(client: KubeApi): ClusterAccess {
  const patch = async (
    info: KindInfo,
    namespace: string,
    name: string,
    body: Json,
    sub?: string,
  ) => {
    try {
      return await client.request<Json>('PATCH', pathOf(info, namespace, name, sub), {
        verb: 'patch',
        resource: sub ? `${info.plural}/${sub}` : info.plural,
        contentType: 'application/merge-patch+json',
        body,
      });
    } catch (err) {
      if (err instanceof ApiError && err.code === 409) throw new ConflictError(err.message);
      throw err;
    }
  };
  const exec = client.exec?.bind(client);
  return {
    ...(exec ? { exec } : {}),
    async get(apiVersion, kind, namespace, name) {
      const info = known(apiVersion, kind);
      try {
        return await client.request<Json>('GET', pathOf(info, namespace, name), {
          verb: 'get',
          resource: info.plural,
        });
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    async list(apiVersion, kind, namespace, labelSelector) {
      const info = known(apiVersion, kind);
      const res = await client.request<{ items: Json[] }>('GET', pathOf(info, namespace), {
        verb: 'list',
        resource: info.plural,
        query: { labelSelector },
      });
      return res.items;
    },
    async mergePatch(apiVersion, kind, namespace, name, body, subresource) {
      return patch(known(apiVersion, kind), namespace, name, body, subresource);
    },
    async create(apiVersion, kind, namespace, body) {
      const info = known(apiVersion, kind);
      try {
        return await client.request<Json>('POST', pathOf(info, namespace), {
          verb: 'create',
          resource: info.plural,
          body,
        });
      } catch (err) {
        if (err instanceof ApiError && err.code === 409) throw new ConflictError(err.message);
        throw err;
      }
    },
    async delete(apiVersion, kind, namespace, name, uid, gracePeriodSeconds, resourceVersion) {
      const info = known(apiVersion, kind);
      if (resourceVersion === undefined) {
        await deleteObject(client, info, namespace, name, uid, gracePeriodSeconds);
        return;
      }
      try {
        await client.request('DELETE', pathOf(info, namespace, name), {
          verb: 'delete',
          resource: info.plural,
          body: deleteOptions(uid, gracePeriodSeconds, resourceVersion),
        });
      } catch (err) {
        // 409: the precondition failed; 404: gone meanwhile. Either way nothing was deleted.
        if (err instanceof ApiError && (err.code === 409 || err.code === 404))
          throw new ConflictError(err.message);
        throw err;
      }
    },
  };
}
