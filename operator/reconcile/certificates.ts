// The operator's own CA and the server certificates it issues from it.
//
// Where keys live, and why there (least privilege):
// - The CA key pair is one Secret, scalable-operator-ca, in the operator's own namespace.
//   Only the operator reads it: a namespaced Role grants get on that one name
//   (resourceNames) and create in that namespace (create cannot be limited by name). The
//   cluster-wide role still has no get, list or watch on Secrets.
// - Each server key pair is a Secret the tier declares (shared/tls/objects.ts), written
//   whole by create, or by update (PUT) on renewal: a PUT's answer is what we sent, so
//   `update` lets the operator replace a Secret it can name but never read one. Only a Secret
//   it wrote itself: the record keeps the uid and resourceVersion the API server answered,
//   and the PUT carries both as preconditions. A Secret of that name that the operator did
//   not create (create answers 409 and nothing is recorded), or that changed since it wrote
//   it, is left untouched and the error says so (issue 36: an app named to collide with an
//   existing <app>-cache-tls replaced it, and deleting the app garbage-collected it).
// - The public half (CA and server certificate) goes to a ConfigMap, which the operator
//   watches anyway: renewal is decided from it (x509.ts renewalReason), no Secret is read.
import type { KubeApi } from '../ports/kube-api.ts';
import type { K8sObject } from '../tiers/shared/chart.ts';
import type { ObservedObject } from '../tiers/shared/report.ts';
import { TLS_FILES, TLS_PUBLIC_ANNOTATION, tlsDnsNamesOf } from '../tiers/shared/tls/objects.ts';
import { issueCa, issueServerCert, renewalReason } from '../tiers/shared/tls/x509.ts';
import type { KeyPair } from '../tiers/shared/tls/x509.ts';
import type { KindInfo } from './kinds.ts';
import { pathOf } from './kinds.ts';
import { materialize, objectKey, projectChild } from './project.ts';
import type { CachedChild } from './project.ts';

type Json = Record<string, unknown>;

export const CA_SECRET_NAME = 'scalable-operator-ca';
/** A field manager of its own: the tier's apply (no data) never takes the issued fields. */
export const CERT_FIELD_MANAGER = 'scalable-operator-certificates';
/** On the record: the uid and resourceVersion of the Secret as the operator last wrote it. */
export const SECRET_UID_ANNOTATION = 'scalable.dev/secret-uid';
export const SECRET_VERSION_ANNOTATION = 'scalable.dev/secret-resource-version';

/** The Secret is not the operator's to write: left untouched. Terminal until a person acts. */
export class ForeignSecretError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ForeignSecretError';
  }
}

const SECRETS: KindInfo = {
  group: '',
  version: 'v1',
  kind: 'Secret',
  plural: 'secrets',
  optional: false,
};
const CONFIGMAPS: KindInfo = { ...SECRETS, kind: 'ConfigMap', plural: 'configmaps' };

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const unb64 = (s: unknown): string =>
  typeof s === 'string' ? Buffer.from(s, 'base64').toString('utf8') : '';
const code = (err: unknown): number | undefined => (err as { code?: number }).code;

/**
 * The CA, read once from its Secret or created there on first use (a 409 means another
 * replica created it first: read that one). Memoized; a failed load is retried next call.
 */
export function caLoader(
  client: KubeApi,
  namespace: string,
  now: () => Date = () => new Date(),
): () => Promise<KeyPair> {
  let pending: Promise<KeyPair> | undefined;
  const path = pathOf(SECRETS, namespace, CA_SECRET_NAME);
  const read = async (): Promise<KeyPair | undefined> => {
    try {
      const s = await client.request<Json>('GET', path, { verb: 'get', resource: 'secrets' });
      const data = (s['data'] ?? {}) as Json;
      const pair = { cert: unb64(data[TLS_FILES.cert]), key: unb64(data[TLS_FILES.key]) };
      if (!pair.cert || !pair.key)
        throw new Error(`Secret ${namespace}/${CA_SECRET_NAME} has no CA`);
      return pair;
    } catch (err) {
      if (code(err) === 404) return undefined;
      throw err;
    }
  };
  const load = async (): Promise<KeyPair> => {
    const existing = await read();
    if (existing) return existing;
    const ca = await issueCa('scalable-operator CA', now());
    try {
      await client.request('POST', pathOf(SECRETS, namespace), {
        verb: 'create',
        resource: 'secrets',
        body: {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: {
            name: CA_SECRET_NAME,
            namespace,
            labels: { 'app.kubernetes.io/managed-by': 'scalable-operator' },
          },
          type: 'kubernetes.io/tls',
          data: { [TLS_FILES.cert]: b64(ca.cert), [TLS_FILES.key]: b64(ca.key) },
        },
      });
      return ca;
    } catch (err) {
      if (code(err) !== 409) throw err;
      const theirs = await read();
      if (!theirs) throw err;
      return theirs;
    }
  };
  return () => {
    pending ??= load().catch((err: unknown) => {
      pending = undefined;
      throw err;
    });
    return pending;
  };
}

export interface IssueContext {
  readonly client: KubeApi;
  readonly ca: () => Promise<KeyPair>;
  readonly now: () => Date;
}

/** The public half as the cache holds it (ConfigMap data), or {} when not there yet. */
function publicDataOf(live: CachedChild | undefined): Json {
  if (!live) return {};
  return ((JSON.parse(live.body) as Json)['data'] ?? {}) as Json;
}

/**
 * What the record says about the Secret: written by the operator (a certificate recorded),
 * and with which uid and resourceVersion (records of earlier versions have none).
 */
export function writtenSecretOf(record: CachedChild | undefined): {
  readonly written: boolean;
  readonly uid?: string;
  readonly resourceVersion?: string;
} {
  const a = record?.metadata.annotations ?? {};
  const uid = a[SECRET_UID_ANNOTATION];
  const resourceVersion = a[SECRET_VERSION_ANNOTATION];
  return {
    written: typeof publicDataOf(record)[TLS_FILES.cert] === 'string',
    ...(uid && resourceVersion ? { uid, resourceVersion } : {}),
  };
}

/**
 * Why the declared Secret needs a (new) certificate now, or undefined. Pure over the
 * cached public ConfigMap and the CA.
 */
export function issueReason(
  obj: K8sObject,
  livePublic: CachedChild | undefined,
  caCert: string,
  now: Date,
): string | undefined {
  const data = publicDataOf(livePublic);
  const cert = data[TLS_FILES.cert];
  if (cert !== undefined && typeof cert !== 'string') return 'the record is not a certificate';
  if (cert && data[TLS_FILES.ca] !== caCert) return 'the CA changed';
  return renewalReason(cert, caCert, tlsDnsNamesOf(obj), now);
}

export const publicKeyOf = (obj: K8sObject, namespace: string): string =>
  objectKey(
    'v1',
    'ConfigMap',
    obj.metadata.namespace ?? namespace,
    obj.metadata.annotations?.[TLS_PUBLIC_ANNOTATION] ?? '',
  );

/**
 * Issues a server certificate into the declared Secret, then records the public half in its
 * ConfigMap with the Secret's uid and resourceVersion. Secret first: a crash in between
 * leaves the record old, so the next reconcile issues again rather than trusting a key it
 * never wrote (and, the Secret being unrecorded, reports it: delete it to have it issued
 * anew). Which write:
 * - the record names the Secret (uid, resourceVersion): a PUT with both as preconditions;
 *   409 (it changed, or it is another Secret of that name) leaves it untouched; 404 creates;
 * - a certificate recorded by an earlier version, without them: create, else replace, once;
 * - nothing recorded: create only; 409 means someone else's Secret, left untouched.
 * Returns the Secret as declared (its data is never kept).
 */
export async function issueInto(
  ctx: IssueContext,
  obj: K8sObject,
  namespace: string,
  record?: CachedChild,
): Promise<{ secret: ObservedObject; created: boolean; recordVersion: string }> {
  const ca = await ctx.ca();
  const pair = await issueServerCert(ca, tlsDnsNamesOf(obj), ctx.now());
  const ns = obj.metadata.namespace ?? namespace;
  const body = {
    ...obj,
    data: {
      [TLS_FILES.cert]: b64(pair.cert),
      [TLS_FILES.key]: b64(pair.key),
      [TLS_FILES.ca]: b64(ca.cert),
    },
  };
  const name = obj.metadata.name;
  const known = writtenSecretOf(record);
  const create = () =>
    ctx.client.request<Json>('POST', pathOf(SECRETS, ns), {
      verb: 'create',
      resource: 'secrets',
      body,
    });
  const replace = (preconditions: Json) =>
    ctx.client.request<Json>('PUT', pathOf(SECRETS, ns, name), {
      verb: 'update',
      resource: 'secrets',
      body: { ...body, metadata: { ...obj.metadata, ...preconditions } },
    });
  let created = true;
  let written: Json;
  if (known.uid && known.resourceVersion) {
    try {
      written = await replace({ uid: known.uid, resourceVersion: known.resourceVersion });
      created = false;
    } catch (err) {
      if (code(err) === 404) written = await create();
      else if (code(err) === 409)
        throw new ForeignSecretError(
          `Secret ${name} changed since the operator wrote it (or was replaced by another of that name): left untouched; delete it to have a certificate issued anew`,
        );
      else throw err;
    }
  } else {
    try {
      written = await create();
    } catch (err) {
      if (code(err) !== 409) throw err;
      if (!known.written)
        throw new ForeignSecretError(
          `Secret ${name} exists and was not created by scalable-operator: left untouched; delete or rename it (or the app) to have the operator issue it`,
        );
      created = false;
      written = await replace({});
    }
  }
  const meta = (written['metadata'] ?? {}) as Json;
  const publicName = obj.metadata.annotations?.[TLS_PUBLIC_ANNOTATION];
  if (!publicName) throw new Error(`Secret ${obj.metadata.name} names no public ConfigMap`);
  const recorded = await ctx.client.request<Json>('PATCH', pathOf(CONFIGMAPS, ns, publicName), {
    verb: 'apply',
    resource: 'configmaps',
    query: { fieldManager: CERT_FIELD_MANAGER, force: true },
    contentType: 'application/apply-patch+yaml',
    body: {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: publicName,
        namespace: ns,
        annotations: {
          [SECRET_UID_ANNOTATION]: String(meta['uid'] ?? ''),
          [SECRET_VERSION_ANNOTATION]: String(meta['resourceVersion'] ?? ''),
        },
      },
      data: { [TLS_FILES.cert]: pair.cert, [TLS_FILES.ca]: ca.cert },
    },
  });
  return {
    secret: materialize(projectChild(obj as unknown as Json, obj.apiVersion, obj.kind)),
    created,
    recordVersion: String((recorded['metadata'] as Json | undefined)?.['resourceVersion'] ?? ''),
  };
}
