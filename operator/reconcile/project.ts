// Trimmed projections of what the informers receive: memory grows with the number of apps,
// so the caches keep identity, the labels we select on, status, and the rest of the object as
// one compact JSON string (parsed only when its app is reconciled). Secret data is dropped:
// the operator never needs to read a generated password back.
import type { ObservedObject } from '../tiers/shared/report.ts';

export const FIELD_MANAGER = 'scalable-operator';

type Json = Record<string, unknown>;

export interface OwnerRef {
  readonly uid: string;
  readonly controller: boolean;
}

export interface CachedMeta {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
  readonly resourceVersion: string;
  readonly generation?: number;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly ownerReferences?: readonly OwnerRef[];
  readonly deleting?: boolean;
  readonly finalizers?: readonly string[];
}

export interface CachedChild {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: CachedMeta;
  /** Our field manager has applied this object. */
  readonly ours: boolean;
  /** Everything but metadata and status, as JSON. */
  readonly body: string;
  /** As JSON too: a status as objects (conditions, timestamps) costs twice its text. */
  readonly status?: string;
}

export interface CachedPod {
  readonly metadata: Pick<
    CachedMeta,
    'name' | 'namespace' | 'uid' | 'resourceVersion' | 'labels' | 'deleting'
  >;
  readonly phase: string;
  readonly ready: boolean;
  /** A container stuck waiting (CrashLoopBackOff, ImagePullBackOff, ...), for status messages. */
  readonly waiting?: {
    readonly container: string;
    readonly reason: string;
    readonly message?: string;
  };
  /** The scheduler's message when the pod is unschedulable. */
  readonly unschedulable?: string;
  /** Init containers that stopped with a termination message (e.g. a refused data directory). */
  readonly initFailures?: readonly { readonly container: string; readonly message: string }[];
}

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function metaOf(obj: Json): CachedMeta {
  const m = (isObj(obj['metadata']) ? obj['metadata'] : {}) as Json;
  const owners = Array.isArray(m['ownerReferences'])
    ? (m['ownerReferences'] as Json[]).map((o) => ({
        uid: String(o['uid']),
        controller: o['controller'] === true,
      }))
    : undefined;
  return {
    name: String(m['name'] ?? ''),
    namespace: String(m['namespace'] ?? ''),
    uid: String(m['uid'] ?? ''),
    resourceVersion: String(m['resourceVersion'] ?? ''),
    ...(typeof m['generation'] === 'number' ? { generation: m['generation'] } : {}),
    ...(isObj(m['labels']) ? { labels: m['labels'] as Record<string, string> } : {}),
    ...(isObj(m['annotations']) ? { annotations: m['annotations'] as Record<string, string> } : {}),
    ...(owners ? { ownerReferences: owners } : {}),
    ...(m['deletionTimestamp'] ? { deleting: true } : {}),
    ...(Array.isArray(m['finalizers']) && m['finalizers'].length > 0
      ? { finalizers: m['finalizers'] as string[] }
      : {}),
  };
}

function appliedByUs(obj: Json): boolean {
  const m = obj['metadata'] as Json | undefined;
  const managed = m?.['managedFields'];
  return Array.isArray(managed) && managed.some((f: Json) => f['manager'] === FIELD_MANAGER);
}

/** apiVersion and kind come from the informer: list items do not carry them. */
export function projectChild(obj: Json, apiVersion?: string, kind?: string): CachedChild {
  const rest: Json = {};
  for (const [k, v] of Object.entries(obj)) {
    if (k === 'metadata' || k === 'status' || k === 'apiVersion' || k === 'kind') continue;
    if ((kind ?? obj['kind']) === 'Secret' && (k === 'data' || k === 'stringData')) continue;
    rest[k] = v;
  }
  return {
    apiVersion: apiVersion ?? String(obj['apiVersion']),
    kind: kind ?? String(obj['kind']),
    metadata: metaOf(obj),
    ours: appliedByUs(obj),
    body: JSON.stringify(rest),
    ...(isObj(obj['status']) ? { status: JSON.stringify(obj['status']) } : {}),
  };
}

export function projectPod(obj: Json): CachedPod {
  const m = metaOf(obj);
  const status = (isObj(obj['status']) ? obj['status'] : {}) as Json;
  const conditions = Array.isArray(status['conditions']) ? (status['conditions'] as Json[]) : [];
  const containers = Array.isArray(status['containerStatuses'])
    ? (status['containerStatuses'] as Json[])
    : [];
  let waiting: CachedPod['waiting'];
  for (const c of containers) {
    const w = ((c['state'] ?? {}) as Json)['waiting'] as Json | undefined;
    if (w?.['reason'] && w['reason'] !== 'ContainerCreating' && w['reason'] !== 'PodInitializing') {
      waiting = {
        container: String(c['name'] ?? ''),
        reason: String(w['reason']),
        ...(w['message'] ? { message: String(w['message']) } : {}),
      };
      break;
    }
  }
  const sched = conditions.find(
    (c) => c['type'] === 'PodScheduled' && c['reason'] === 'Unschedulable',
  );
  const inits = Array.isArray(status['initContainerStatuses'])
    ? (status['initContainerStatuses'] as Json[])
    : [];
  const initFailures = inits.flatMap((c) => {
    const t = (((c['state'] ?? {}) as Json)['terminated'] ??
      ((c['lastState'] ?? {}) as Json)['terminated']) as Json | undefined;
    const message = t?.['message'];
    return t && t['exitCode'] !== 0 && typeof message === 'string' && message !== ''
      ? [{ container: String(c['name'] ?? ''), message }]
      : [];
  });
  return {
    metadata: {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      ...(m.labels ? { labels: m.labels } : {}),
      ...(m.deleting ? { deleting: true } : {}),
    },
    phase: String(status['phase'] ?? 'Unknown'),
    ready: conditions.some((c) => c['type'] === 'Ready' && c['status'] === 'True'),
    ...(waiting ? { waiting } : {}),
    ...(sched ? { unschedulable: String(sched['message'] ?? 'unschedulable') } : {}),
    ...(initFailures.length > 0 ? { initFailures } : {}),
  };
}

/** The full-looking object the status functions read. */
export function materialize(c: CachedChild): ObservedObject {
  const {
    name,
    namespace,
    uid,
    resourceVersion,
    generation,
    labels,
    annotations,
    ownerReferences,
    deleting,
  } = c.metadata;
  return {
    apiVersion: c.apiVersion,
    kind: c.kind,
    metadata: {
      name,
      namespace,
      uid,
      resourceVersion,
      ...(generation !== undefined ? { generation } : {}),
      ...(labels ? { labels } : {}),
      ...(annotations ? { annotations } : {}),
      ...(ownerReferences ? { ownerReferences } : {}),
      ...(deleting ? { deletionTimestamp: 'set' } : {}),
    },
    ...(JSON.parse(c.body) as Json),
    ...(c.status ? { status: JSON.parse(c.status) as Json } : {}),
  };
}

export function materializePod(p: CachedPod): ObservedObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { ...p.metadata },
    status: {
      phase: p.phase,
      conditions: [
        { type: 'Ready', status: p.ready ? 'True' : 'False' },
        ...(p.unschedulable !== undefined
          ? [
              {
                type: 'PodScheduled',
                status: 'False',
                reason: 'Unschedulable',
                message: p.unschedulable,
              },
            ]
          : []),
      ],
      ...(p.waiting
        ? {
            containerStatuses: [
              {
                name: p.waiting.container,
                state: {
                  waiting: {
                    reason: p.waiting.reason,
                    ...(p.waiting.message ? { message: p.waiting.message } : {}),
                  },
                },
              },
            ],
          }
        : {}),
      ...(p.initFailures
        ? {
            initContainerStatuses: p.initFailures.map((f) => ({
              name: f.container,
              state: { terminated: { exitCode: 1, message: f.message } },
            })),
          }
        : {}),
    },
  };
}

export const objectKey = (
  apiVersion: string,
  kind: string,
  namespace: string,
  name: string,
): string => `${apiVersion}|${kind}|${namespace}|${name}`;

/** The ScalableApp as cached: no managedFields, everything the reconciler reads. */
export interface CachedApp {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: CachedMeta;
  readonly spec: unknown;
  readonly status?: Json;
}

export function projectApp(obj: Json): CachedApp {
  return {
    apiVersion: String(obj['apiVersion'] ?? ''),
    kind: String(obj['kind'] ?? ''),
    metadata: metaOf(obj),
    spec: obj['spec'],
    ...(isObj(obj['status']) ? { status: obj['status'] } : {}),
  };
}

/** a < b for resourceVersions (etcd revisions); false when either is not a number. */
export function olderThan(a: string, b: string): boolean {
  if (!/^\d+$/.test(a) || !/^\d+$/.test(b)) return false;
  return BigInt(a) < BigInt(b);
}
