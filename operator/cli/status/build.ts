// Pure: the objects `scalable status` read from the cluster -> the status document
// (model.ts). Roles come from what the engines publish on the API: Patroni's role label and
// member status annotation on each database pod and its `<scope>-sync` key; Redis publishes
// no role there, so a Sentinel set's master is said to be Sentinel's to know.
import { nameOf, APP_LABEL, COMPONENT_LABEL, TIER_LABEL } from '../../tiers/shared/meta.ts';
import { PRIMARY_ROLE, REPLICA_ROLE, ROLE_LABEL, SCOPE_LABEL } from '../../tiers/database/names.ts';
import { leaderRecordOf } from '../../tiers/database/lease-break.ts';
import { adviceFor, isProblem } from './advice.ts';
import { STATUS_API_VERSION } from './model.ts';
import type {
  ConditionView,
  GroupView,
  PodRole,
  PodView,
  ShardMapView,
  StatusDocument,
  TierView,
  UrlView,
} from './model.ts';

export type Json = Record<string, unknown>;

/** What gather.ts read; an optional list the user may not read is null. */
export interface Gathered {
  readonly app: Json;
  /** Pods labelled scalable.dev/app=<app>. */
  readonly pods: readonly Json[];
  /** Patroni's keys: ConfigMaps labelled scalable.dev/database=<app>. */
  readonly patroniKeys: readonly Json[] | null;
  readonly ingresses: readonly Json[] | null;
  readonly httpRoutes: readonly Json[] | null;
  readonly services: readonly Json[] | null;
  /** The pods' nodes by name; null: that node could not be read. */
  readonly nodes: Readonly<Record<string, Json | null>>;
  /** What could not be read, in words (e.g. "zone unknown: ..."). */
  readonly notes: readonly string[];
}

export const ZONE_LABEL = 'topology.kubernetes.io/zone';

/** Tiers in the order a request flows through them; other tiers follow, by name. */
const TIER_ORDER = ['web', 'cache', 'sessions', 'queue', 'database'];

const obj = (v: unknown): Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {};
const arr = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const num = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? v : undefined;
const meta = (o: Json) => obj(o['metadata']);
const labels = (o: Json): Record<string, string> =>
  obj(meta(o)['labels']) as Record<string, string>;
const nameOfObj = (o: Json): string => String(meta(o)['name'] ?? '');
const byName = (a: Json, b: Json) => nameOfObj(a).localeCompare(nameOfObj(b), 'en');

/** Patroni's member status (the pod's `status` annotation), when it parses. */
function memberStatus(pod: Json): Json | undefined {
  const raw = str(obj(meta(pod)['annotations'])['status']);
  if (raw === undefined) return undefined;
  try {
    const parsed = JSON.parse(raw) as unknown;
    return typeof parsed === 'object' && parsed !== null ? (parsed as Json) : undefined;
  } catch {
    return undefined;
  }
}

function podView(
  pod: Json,
  nodes: Gathered['nodes'],
  role: PodRole | null,
  extra: Partial<PodView> = {},
): PodView {
  const spec = obj(pod['spec']);
  const status = obj(pod['status']);
  const node = str(spec['nodeName']) ?? null;
  const nodeObj = node === null ? null : (nodes[node] ?? null);
  const zone = nodeObj === null ? null : (str(labels(nodeObj)[ZONE_LABEL]) ?? null);
  const ready = arr(status['conditions']).some(
    (c) => c['type'] === 'Ready' && c['status'] === 'True',
  );
  const terminating = meta(pod)['deletionTimestamp'] != null;
  return {
    name: nameOfObj(pod),
    node,
    zone,
    ready,
    phase: terminating ? 'Terminating' : (str(status['phase']) ?? 'Unknown'),
    role,
    ...extra,
  };
}

/** The shard index of a Patroni scope `<app>-db-<i>`. */
const shardIndexOf = (scope: string): number => Number(/-(\d+)$/.exec(scope)?.[1] ?? NaN);

function shardGroup(scope: string, pods: readonly Json[], g: Gathered): GroupView {
  const index = shardIndexOf(scope);
  const live = pods.filter((p) => meta(p)['deletionTimestamp'] == null);
  const primaryPod = live.find((p) => labels(p)[ROLE_LABEL] === PRIMARY_ROLE);
  const primary = primaryPod ? nameOfObj(primaryPod) : null;
  // Patroni's -sync key names the standbys of the primary it records; a key left by an
  // earlier primary says nothing about the current one.
  const sync = (g.patroniKeys ?? [])
    .map((cm) => leaderRecordOf(cm))
    .find((r) => r.key === 'sync' && r.scope === scope);
  const syncStandbys =
    primary !== null && sync?.leader === primary ? [...(sync.syncStandbys ?? [])] : [];
  const primaryWal = primaryPod ? num(memberStatus(primaryPod)?.['xlog_location']) : undefined;
  const members = [...pods].sort(byName).map((p) => {
    const name = nameOfObj(p);
    const state = memberStatus(p);
    const patroniState = str(state?.['state']) ?? null;
    const label = labels(p)[ROLE_LABEL];
    if (name === primary) return podView(p, g.nodes, 'primary', { patroniState });
    const role: PodRole | null = syncStandbys.includes(name)
      ? 'sync-standby'
      : label === REPLICA_ROLE
        ? 'replica'
        : label === PRIMARY_ROLE
          ? 'primary' // a second pod labelled primary (terminating, or split): shown as it is
          : null;
    const wal = num(state?.['xlog_location']);
    const lagBytes =
      primaryWal !== undefined && wal !== undefined ? Math.max(0, primaryWal - wal) : null;
    return podView(p, g.nodes, role, { patroniState, lagBytes });
  });
  return {
    name: scope,
    kind: 'shard',
    pods: members,
    shard: { index, primary, syncStandbys },
  };
}

type GroupKind = GroupView['kind'];

function groupKind(tier: string, component: string): GroupKind {
  if (tier === 'web' && component === 'web') return 'web';
  if (component.endsWith('-sentinel')) return 'sentinel';
  if (component.startsWith('worker-')) return 'worker';
  if (component === tier && ['cache', 'sessions', 'queue'].includes(tier)) return 'redis';
  return 'other';
}

const ROLE_OF: Record<GroupKind, PodRole | null> = {
  web: 'web',
  redis: 'redis',
  sentinel: 'sentinel',
  worker: 'worker',
  shard: null,
  other: null,
};

function tierView(app: string, tier: string, pods: readonly Json[], g: Gathered): TierView {
  const status = obj(obj(g.app['status'])[tier]);
  const ready = str(status['ready']) ?? null;
  if (tier === 'database') {
    const scopes = new Set(pods.map((p) => labels(p)[SCOPE_LABEL] ?? ''));
    // Shards the status knows but that have no pod yet are shown empty.
    for (const s of arr(obj(obj(g.app['status'])['database'])['shards'])) {
      const i = num(s['index']);
      if (i !== undefined) scopes.add(nameOf({ name: app }, 'db', i));
    }
    const groups = [...scopes]
      .filter((s) => s !== '')
      .sort((a, b) => shardIndexOf(a) - shardIndexOf(b) || a.localeCompare(b, 'en'))
      .map((scope) =>
        shardGroup(
          scope,
          pods.filter((p) => labels(p)[SCOPE_LABEL] === scope),
          g,
        ),
      );
    return { tier, ready, groups };
  }
  // The Redis set first, then its Sentinels and the workers.
  const first = (c: string) => (groupKind(tier, c) === 'redis' ? 0 : 1);
  const components = [...new Set(pods.map((p) => labels(p)[COMPONENT_LABEL] ?? tier))].sort(
    (a, b) => first(a) - first(b) || a.localeCompare(b, 'en'),
  );
  const withSentinel = components.some((c) => groupKind(tier, c) === 'sentinel');
  const groups = components.map((component): GroupView => {
    const kind = groupKind(tier, component);
    const mine = pods
      .filter((p) => (labels(p)[COMPONENT_LABEL] ?? tier) === component)
      .sort(byName);
    const name = nameOf({ name: app }, component);
    if (kind !== 'redis') {
      return { name, kind, pods: mine.map((p) => podView(p, g.nodes, ROLE_OF[kind])) };
    }
    if (withSentinel) {
      // The master name Sentinel monitors is the set's own name (cache/build.ts masterNameOf,
      // queue/store.ts queueMasterName).
      return {
        name,
        kind,
        pods: mine.map((p) => podView(p, g.nodes, 'redis')),
        master: null,
        sentinelMasterName: name,
      };
    }
    const live = mine.filter((p) => meta(p)['deletionTimestamp'] == null);
    const only = live.length === 1 ? nameOfObj(live[0] as Json) : null;
    return {
      name,
      kind,
      pods: mine.map((p) => podView(p, g.nodes, nameOfObj(p) === only ? 'master' : 'redis')),
      master: only,
    };
  });
  return { tier, ready, groups };
}

function tierViews(app: string, g: Gathered): TierView[] {
  const byTier = new Map<string, Json[]>();
  for (const p of g.pods) {
    if (labels(p)[APP_LABEL] !== app) continue;
    const tier = labels(p)[TIER_LABEL] ?? 'web';
    byTier.set(tier, [...(byTier.get(tier) ?? []), p]);
  }
  const hasShards = arr(obj(obj(g.app['status'])['database'])['shards']).length > 0;
  if (hasShards && !byTier.has('database')) byTier.set('database', []);
  const rank = (t: string) => {
    const i = TIER_ORDER.indexOf(t);
    return i === -1 ? TIER_ORDER.length : i;
  };
  return [...byTier.keys()]
    .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b, 'en'))
    .map((tier) => tierView(app, tier, byTier.get(tier) ?? [], g));
}

function conditionViews(g: Gathered, namespace: string, app: string): ConditionView[] {
  return arr(obj(g.app['status'])['conditions']).map((c) => {
    const s = c['status'];
    const view: Pick<ConditionView, 'type' | 'status' | 'reason' | 'message'> = {
      type: String(c['type'] ?? ''),
      status: s === 'True' || s === 'False' ? s : 'Unknown',
      reason: String(c['reason'] ?? ''),
      message: String(c['message'] ?? ''),
    };
    return {
      ...view,
      lastTransitionTime: str(c['lastTransitionTime']) ?? null,
      problem: isProblem(view),
      next: adviceFor(view, { namespace, app }),
    };
  });
}

function shardMapView(g: Gathered, conditions: readonly ConditionView[]): ShardMapView | null {
  const status = obj(g.app['status']);
  const sm = obj(status['shardMap']);
  const version = num(sm['version']);
  const buckets = num(sm['buckets']);
  if (version === undefined || buckets === undefined) return null;
  const counts = new Map<number, number>();
  for (const s of arr(obj(status['database'])['shards'])) {
    const i = num(s['index']);
    if (i !== undefined) counts.set(i, 0);
  }
  for (const r of arr(sm['ranges'])) {
    const [from, to, shard] = [num(r['from']), num(r['to']), num(r['shard'])];
    if (from === undefined || to === undefined || shard === undefined) continue;
    counts.set(shard, (counts.get(shard) ?? 0) + Math.max(0, to - from));
  }
  const said = (type: string, reason: string) =>
    conditions.find((c) => c.type === type && c.reason === reason);
  // A move in progress says its phase (and a stuck one its note) on DatabaseReady.
  const reshard = status['resharding']
    ? conditions.find((c) => c.type === 'DatabaseReady')
    : undefined;
  const move =
    said('Degraded', 'ShardMapConflict') ?? reshard ?? said('DatabaseReady', 'ReshardingPending');
  return {
    version,
    configMapName: str(sm['configMapName']) ?? '',
    buckets,
    perShard: [...counts].sort(([a], [b]) => a - b).map(([shard, n]) => ({ shard, buckets: n })),
    move: move ? { reason: move.reason, message: move.message } : null,
  };
}

function ingressUrls(ing: Json): UrlView[] {
  const spec = obj(ing['spec']);
  const tlsHosts = new Set(arr(spec['tls']).flatMap((t) => arr(t['hosts']).map(String)));
  const lb = arr(obj(obj(ing['status'])['loadBalancer'])['ingress'])[0];
  const address = lb ? (str(lb['hostname']) ?? str(lb['ip'])) : undefined;
  const via = `Ingress ${nameOfObj(ing)}`;
  return arr(spec['rules']).flatMap((rule) => {
    const host = str(rule['host']) ?? address;
    const scheme = host !== undefined && tlsHosts.has(host) ? 'https' : 'http';
    return arr(obj(rule['http'])['paths']).map((p) => {
      const path = str(p['path']) ?? '/';
      return host === undefined
        ? { url: `*${path}`, via: `${via} (any host; no load-balancer address yet)` }
        : { url: `${scheme}://${host}${path}`, via };
    });
  });
}

function routeUrls(route: Json): UrlView[] {
  const spec = obj(route['spec']);
  const hosts = arr(spec['hostnames']).map(String);
  const paths = arr(spec['rules']).flatMap((r) =>
    arr(r['matches']).map((m) => str(obj(m['path'])['value']) ?? '/'),
  );
  const via = `HTTPRoute ${nameOfObj(route)}`;
  return (hosts.length > 0 ? hosts : ['*']).flatMap((h) =>
    (paths.length > 0 ? paths : ['/']).map((p) => ({
      url: h === '*' ? `*${p}` : `http://${h}${p}`,
      via,
    })),
  );
}

function serviceUrls(svc: Json, namespace: string): UrlView[] {
  const spec = obj(svc['spec']);
  const port = num(arr(spec['ports'])[0]?.['port']) ?? 80;
  const suffix = port === 80 ? '' : `:${port}`;
  const name = nameOfObj(svc);
  const out: UrlView[] = [
    { url: `http://${name}.${namespace}.svc${suffix}`, via: `Service ${name} (in the cluster)` },
  ];
  for (const lb of arr(obj(obj(svc['status'])['loadBalancer'])['ingress'])) {
    const addr = str(lb['hostname']) ?? str(lb['ip']);
    if (addr) out.push({ url: `http://${addr}${suffix}`, via: `Service ${name} (LoadBalancer)` });
  }
  return out;
}

function urlViews(g: Gathered, app: string, namespace: string): UrlView[] {
  const routed = [
    ...[...(g.ingresses ?? [])].sort(byName).flatMap(ingressUrls),
    ...[...(g.httpRoutes ?? [])].sort(byName).flatMap(routeUrls),
  ];
  const urls =
    routed.length > 0
      ? routed
      : [...(g.services ?? [])]
          .filter((s) => labels(s)[TIER_LABEL] === 'web' || nameOfObj(s) === `${app}-web`)
          .sort(byName)
          .flatMap((s) => serviceUrls(s, namespace));
  const said = str(obj(g.app['status'])['url']);
  if (said !== undefined && !urls.some((u) => u.url.startsWith(said)))
    urls.push({ url: said, via: 'status.url' });
  return urls;
}

export function statusDocument(g: Gathered): StatusDocument {
  const m = meta(g.app);
  const name = String(m['name'] ?? '');
  const namespace = String(m['namespace'] ?? '');
  const conditions = conditionViews(g, namespace, name);
  const ready = conditions.find((c) => c.type === 'Ready')?.status ?? 'Unknown';
  return {
    apiVersion: STATUS_API_VERSION,
    kind: 'ScalableAppStatus',
    app: {
      namespace,
      name,
      generation: num(m['generation']) ?? null,
      observedGeneration: num(obj(g.app['status'])['observedGeneration']) ?? null,
    },
    ready,
    tiers: tierViews(name, g),
    shardMap: shardMapView(g, conditions),
    urls: urlViews(g, name, namespace),
    conditions,
    notes: [...g.notes],
  };
}
