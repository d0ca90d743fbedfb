// A CA per app and the server certificates the operator issues from it.
//
// Where keys live, and why there (least privilege):
// - Every app's CA key pair is kept in one Secret, scalable-operator-ca, in the operator's
//   own namespace, under the app's uid (<uid>.crt, <uid>.key; <uid>.previous.* during a
//   rotation). The operator must sign with those keys, so it must read them; in the app's
//   namespace that would need get on every Secret of every tenant namespace. One Secret of a
//   known name lets the Role grant get and update on that name only (resourceNames) and create
//   in that namespace (create cannot be limited by name); the cluster-wide role still has no
//   get, list or watch on Secrets, and no tenant can read or mount it. Its keys tls.crt and
//   tls.key are the one CA of earlier versions: kept, never created any more, and used only to
//   move apps issued from it to their own CA (issuePlan). Cost: one object for all apps
//   (~1.5 KiB each, so about 600 apps fit under the API server's 1 MiB object limit). So the
//   leader removes the entries of apps that are gone (ca-entries.ts, runtime/ca-tidy.ts), by
//   the app each entry records (<uid>.app = namespace/name, written with its CA).
// - Each server key pair is a Secret the tier declares (shared/tls/objects.ts), written
//   whole by create, or by update (PUT) on renewal: a PUT's answer is what we sent, so
//   `update` lets the operator replace a Secret it can name but never read one. Only a Secret
//   it wrote itself: the record keeps the uid and resourceVersion the API server answered,
//   and the PUT carries both as preconditions. A Secret of that name that the operator did
//   not create (create answers 409 and nothing is recorded), or that changed since it wrote
//   it, is left untouched and the error says so (issue 36: an app named to collide with an
//   existing <app>-cache-tls replaced it, and deleting the app garbage-collected it).
// - The public half (the trust bundle and the server certificate) goes to a ConfigMap, which
//   the operator watches anyway: renewal is decided from it (issuePlan), no Secret is read.
import type { KubeApi } from '../ports/kube-api.ts';
import type { K8sObject } from '../tiers/shared/chart.ts';
import type { ObservedObject } from '../tiers/shared/report.ts';
import {
  TLS_CLIENT_ANNOTATION,
  TLS_FILES,
  TLS_PUBLIC_ANNOTATION,
  tlsDnsNamesOf,
} from '../tiers/shared/tls/objects.ts';
import {
  caRenewalReason,
  certInfo,
  issueCa,
  issueClientCert,
  issueServerCert,
  joinBundle,
  renewalReason,
  signedBy,
  splitBundle,
} from '../tiers/shared/tls/x509.ts';
import type { KeyPair } from '../tiers/shared/tls/x509.ts';
import { appRecordKey, applyCaEntryChanges } from './ca-entries.ts';
import type { CaEntryChanges } from './ca-entries.ts';
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

/** Which app a CA belongs to, and the rotation its author asked for (ROTATE_CA_ANNOTATION). */
export interface AppRef {
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly rotation?: string | undefined;
}

/** The CAs an app's certificates may come from. */
export interface AppCas {
  /** The app's own CA: every new certificate ends up issued from it. */
  readonly current: KeyPair;
  /** Its predecessor, kept while a rotation moves the certificates off it. */
  readonly previous?: KeyPair;
  /** The one CA of earlier versions, while apps issued from it move to their own. */
  readonly legacy?: KeyPair;
}

export interface CaStore {
  /** The app's CAs; its CA is created, or rotated (caRenewalReason), here. */
  readonly forApp: (app: AppRef) => Promise<AppCas>;
  /**
   * Removes or records entries as `decide` says (ca-entries.ts), deciding on the Secret as
   * read: in turn with this process's other writes, a PUT with the resourceVersion read, and
   * a 409 reads again and decides again. Requests go through `via` (the leader's term).
   * Returns what was changed, or undefined when nothing was (or there is no Secret yet).
   */
  readonly tidy: (
    decide: (data: Readonly<Record<string, string>>) => Promise<CaEntryChanges>,
    via?: KubeApi,
  ) => Promise<CaEntryChanges | undefined>;
}

/** On a ScalableApp: a new value asks for a new CA (rotated like one near expiry). */
export const ROTATE_CA_ANNOTATION = 'scalable.dev/rotate-ca';

interface StoreState {
  readonly exists: boolean;
  readonly metadata: Json;
  readonly type: string;
  readonly data: Record<string, string>;
}

const pairOf = (data: Record<string, string>, prefix: string): KeyPair | undefined => {
  const cert = data[`${prefix}.crt`];
  const key = data[`${prefix}.key`];
  return cert && key ? { cert, key } : undefined;
};

/**
 * The apps' CAs in the Secret scalable-operator-ca (see the header). Read once, then kept in
 * memory; a write is a PUT with the resourceVersion read (a 409 re-reads and tries again), and
 * writes of this process go one at a time, so two apps' new CAs never overwrite each other.
 */
export function caStore(
  client: KubeApi,
  namespace: string,
  now: () => Date = () => new Date(),
): CaStore {
  const path = pathOf(SECRETS, namespace, CA_SECRET_NAME);
  let state: Promise<StoreState> | undefined;
  let queue: Promise<unknown> = Promise.resolve();
  const read = async (): Promise<StoreState> => {
    try {
      const s = await client.request<Json>('GET', path, { verb: 'get', resource: 'secrets' });
      const data = Object.fromEntries(
        Object.entries((s['data'] ?? {}) as Json).map(([k, v]) => [k, unb64(v)]),
      );
      return {
        exists: true,
        metadata: (s['metadata'] ?? {}) as Json,
        type: String(s['type'] ?? 'Opaque'),
        data,
      };
    } catch (err) {
      if (code(err) === 404) return { exists: false, metadata: {}, type: 'Opaque', data: {} };
      throw err;
    }
  };
  const load = (): Promise<StoreState> =>
    (state ??= read().catch((err: unknown) => {
      state = undefined;
      throw err;
    }));
  const write = async (
    from: StoreState,
    data: Record<string, string>,
    via: KubeApi = client,
  ): Promise<StoreState> => {
    const encoded = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)]));
    const body = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: from.exists
        ? from.metadata
        : {
            name: CA_SECRET_NAME,
            namespace,
            labels: { 'app.kubernetes.io/managed-by': 'scalable-operator' },
          },
      type: from.type,
      data: encoded,
    };
    const written = from.exists
      ? await via.request<Json>('PUT', path, { verb: 'update', resource: 'secrets', body })
      : await via.request<Json>('POST', pathOf(SECRETS, namespace), {
          verb: 'create',
          resource: 'secrets',
          body,
        });
    return {
      exists: true,
      metadata: (written['metadata'] ?? {}) as Json,
      type: from.type,
      data,
    };
  };
  const casOf = (data: Record<string, string>, uid: string): AppCas | undefined => {
    const current = pairOf(data, uid);
    if (!current) return undefined;
    const previous = pairOf(data, `${uid}.previous`);
    const legacy = pairOf(data, 'tls');
    return { current, ...(previous ? { previous } : {}), ...(legacy ? { legacy } : {}) };
  };
  const needs = (data: Record<string, string>, app: AppRef): string | undefined =>
    caRenewalReason(
      data[`${app.uid}.crt`],
      now(),
      app.rotation !== undefined && app.rotation !== (data[`${app.uid}.rotation`] ?? ''),
    );
  /**
   * Reads the Secret, lets `step` decide on it, and writes what it asks for: a `done` answer
   * writes nothing; a 409 or 404 (another writer: a previous leader, a person) reads again and
   * decides again, at most five times.
   */
  const readDecideWrite = async <T>(
    step: (
      from: StoreState,
    ) => Promise<
      { readonly done: T } | { readonly data: Record<string, string>; readonly result: T }
    >,
    via: KubeApi = client,
  ): Promise<T> => {
    for (let attempt = 0; ; attempt++) {
      const from = await load();
      const next = await step(from);
      if ('done' in next) return next.done;
      try {
        state = Promise.resolve(await write(from, next.data, via));
        return next.result;
      } catch (err) {
        state = undefined;
        if ((code(err) !== 409 && code(err) !== 404) || attempt >= 4) throw err;
      }
    }
  };
  const renew = (app: AppRef): Promise<AppCas> =>
    readDecideWrite<AppCas>(async (from) => {
      const have = casOf(from.data, app.uid);
      if (have && !needs(from.data, app)) return { done: have };
      const data = { ...from.data };
      const old = pairOf(data, app.uid);
      // Distinct subjects: during a rotation the bundle holds two CAs of one app.
      const stamp = now()
        .toISOString()
        .replace(/[-:T]|\.\d+Z$/g, '');
      const ca = await issueCa(`${app.name.slice(0, 40)} CA ${stamp}`, now());
      // The predecessor stays until the next rotation: the certificates move off it first.
      if (old)
        Object.assign(data, {
          [`${app.uid}.previous.crt`]: old.cert,
          [`${app.uid}.previous.key`]: old.key,
        });
      Object.assign(data, { [`${app.uid}.crt`]: ca.cert, [`${app.uid}.key`]: ca.key });
      if (app.rotation !== undefined) data[`${app.uid}.rotation`] = app.rotation;
      // Whose CA this is, so the entry can be removed once that app is gone (ca-entries.ts).
      data[appRecordKey(app.uid)] = `${app.namespace}/${app.name}`;
      return { data, result: { ...(casOf(data, app.uid) ?? {}), current: ca } };
    });
  const tidy = (
    decide: (data: Readonly<Record<string, string>>) => Promise<CaEntryChanges>,
    via: KubeApi,
  ): Promise<CaEntryChanges | undefined> =>
    readDecideWrite<CaEntryChanges | undefined>(async (from) => {
      if (!from.exists) return { done: undefined };
      const changes = await decide(from.data);
      const data = applyCaEntryChanges(from.data, changes);
      return data === undefined ? { done: undefined } : { data, result: changes };
    }, via);
  /** One write at a time: each decides on what the one before it wrote. */
  const inTurn = <T>(run: () => Promise<T>): Promise<T> => {
    const next = queue.then(run);
    queue = next.catch(() => undefined);
    return next;
  };
  return {
    forApp: async (app) => {
      const s = await load();
      const have = casOf(s.data, app.uid);
      if (have && !needs(s.data, app)) return have;
      return inTurn(() => renew(app));
    },
    tidy: (decide, via = client) => inTurn(() => tidy(decide, via)),
  };
}

/** What to issue into a server Secret: from which CA, with which CAs in ca.crt, and why. */
export interface IssuePlan {
  readonly reason: string;
  readonly signer: KeyPair;
  readonly bundle: readonly string[];
}

/**
 * Long enough for every pod to hold the last trust bundle before the next step relies on
 * it: the kubelet refreshes a mounted Secret within about a minute and the pods' reload
 * loops check every 30 s (docs/tiers/tls.md, "Renewal"). Settings: SCALABLE_TLS_TRUST_HOLD_SECONDS.
 */
export const TRUST_HOLD_MS = 600_000;

/**
 * The next certificate for a server Secret, or undefined while the current one serves. Pure
 * over the record (the public ConfigMap as cached) and the app's CAs. Moving to a new CA (the
 * app's first own CA after the shared one, or a rotated one) takes three issues, each after
 * the previous one has had `holdMs` to reach every pod, so no peer or client is ever shown a
 * certificate it does not trust:
 *   1. same signer, ca.crt = old + new CA (the pods learn to trust the new CA);
 *   2. issued from the new CA, ca.crt still old + new (peers that have not reloaded yet
 *      still present the old certificate, and are trusted);
 *   3. ca.crt = the new CA only (the old one is trusted no more).
 * A certificate from a CA the operator no longer holds (one a person replaced) is issued
 * again from the app's CA at once, as before.
 */
export function issuePlan(
  obj: K8sObject,
  livePublic: CachedChild | undefined,
  cas: AppCas,
  now: Date,
  holdMs = TRUST_HOLD_MS,
): IssuePlan | undefined {
  const data = publicDataOf(livePublic);
  const cert = data[TLS_FILES.cert];
  const names = tlsDnsNamesOf(obj);
  const target = cas.current;
  const fresh = (reason: string): IssuePlan => ({ reason, signer: target, bundle: [target.cert] });
  if (cert !== undefined && typeof cert !== 'string')
    return fresh('the record is not a certificate');
  const info = certInfo(typeof cert === 'string' ? cert : undefined);
  if (typeof cert !== 'string' || !info) return fresh('no certificate yet');
  const caData = data[TLS_FILES.ca];
  // The CAs it holds, as it holds them (PEM text may differ in its line ends only).
  const known = [cas.current, cas.previous, cas.legacy].flatMap((c) => (c ? [c.cert] : []));
  const bundle = splitBundle(typeof caData === 'string' ? caData : undefined).map(
    (b) => known.find((k) => k.trim() === b.trim()) ?? b,
  );
  const trusted = (pem: string) => bundle.some((b) => b.trim() === pem.trim());
  const signer = [cas.current, cas.previous, cas.legacy].find(
    (ca) => ca && signedBy(cert, ca.cert),
  );
  if (!signer) return fresh('the CA changed');
  const held = now.getTime() - info.issuedAt.getTime() >= holdMs;
  const keep = (reason: string | undefined): IssuePlan | undefined =>
    reason ? { reason, signer, bundle } : undefined;
  const renewal = (): string | undefined => renewalReason(cert, signer.cert, names, now);
  if (signer !== target) {
    if (!trusted(signer.cert)) return fresh('the CA changed');
    if (!trusted(target.cert))
      return {
        reason: "the app's new CA joins the trust bundle",
        signer,
        bundle: [...bundle, target.cert],
      };
    if (held) return { reason: "issued from the app's new CA", signer: target, bundle };
    return keep(renewal());
  }
  if (!trusted(target.cert)) return fresh('the CA changed');
  if (bundle.length > 1) {
    if (held) return fresh('the old CA leaves the trust bundle');
    return keep(renewal());
  }
  return keep(renewal());
}

export interface IssueContext {
  readonly client: KubeApi;
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
  plan: Pick<IssuePlan, 'signer' | 'bundle'>,
  record?: CachedChild,
): Promise<{ secret: ObservedObject; created: boolean; recordVersion: string }> {
  const names = tlsDnsNamesOf(obj);
  const pair =
    obj.metadata.annotations?.[TLS_CLIENT_ANNOTATION] === 'true' && names[0] !== undefined
      ? await issueClientCert(plan.signer, names[0], ctx.now())
      : await issueServerCert(plan.signer, names, ctx.now());
  const trust = joinBundle(plan.bundle);
  const ns = obj.metadata.namespace ?? namespace;
  const body = {
    ...obj,
    data: {
      [TLS_FILES.cert]: b64(pair.cert),
      [TLS_FILES.key]: b64(pair.key),
      [TLS_FILES.ca]: b64(trust),
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
      data: { [TLS_FILES.cert]: pair.cert, [TLS_FILES.ca]: trust },
    },
  });
  return {
    secret: materialize(projectChild(obj as unknown as Json, obj.apiVersion, obj.kind)),
    created,
    recordVersion: String((recorded['metadata'] as Json | undefined)?.['resourceVersion'] ?? ''),
  };
}
