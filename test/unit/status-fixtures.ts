// Objects as the API server returns them for an app `shop` in `prod` (shapes taken from the
// operator's builders, kwok's pods and Patroni 4's keys), for the status unit tests.
import type { Gathered, Json } from '../../operator/cli/status/build.ts';

export const NS = 'prod';

const base = (tier: string, component: string) => ({
  'app.kubernetes.io/name': 'shop',
  'app.kubernetes.io/instance': 'shop',
  'app.kubernetes.io/component': component,
  'app.kubernetes.io/part-of': 'shop',
  'app.kubernetes.io/managed-by': 'scalable-operator',
  'scalable.dev/app': 'shop',
  'scalable.dev/tier': tier,
});

export interface PodOptions {
  readonly tier: string;
  readonly component?: string;
  readonly node?: string;
  readonly ready?: boolean;
  readonly phase?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
  readonly deleting?: boolean;
}

export function pod(name: string, o: PodOptions): Json {
  const ready = o.ready ?? true;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: NS,
      uid: `uid-${name}`,
      labels: { ...base(o.tier, o.component ?? o.tier), ...o.labels },
      ...(o.annotations ? { annotations: o.annotations } : {}),
      ...(o.deleting ? { deletionTimestamp: '2026-12-06T20:00:00Z' } : {}),
    },
    spec: {
      ...(o.node ? { nodeName: o.node } : {}),
      containers: [{ name: o.component ?? o.tier, image: 'x' }],
    },
    status: {
      phase: o.phase ?? (o.node ? 'Running' : 'Pending'),
      conditions: [
        { type: 'PodScheduled', status: o.node ? 'True' : 'False' },
        { type: 'Ready', status: ready ? 'True' : 'False' },
      ],
    },
  };
}

/** A Patroni member of shard `shard`: its labels and, when given, its member status. */
export function member(
  name: string,
  shard: number,
  node: string,
  role: 'master' | 'replica' | undefined,
  status?: Record<string, unknown>,
): Json {
  return pod(name, {
    tier: 'database',
    component: 'postgres',
    node,
    labels: {
      'scalable.dev/database': 'shop',
      'scalable.dev/cluster': `shop-db-${shard}`,
      ...(role ? { 'scalable.dev/role': role } : {}),
    },
    ...(status ? { annotations: { status: JSON.stringify(status) } } : {}),
  });
}

/** Patroni 4's member status, as touch_member writes it. */
export const patroniStatus = (role: 'primary' | 'replica', xlog?: number) => ({
  conn_url: 'postgres://10.244.1.7:5432/postgres',
  api_url: 'https://10.244.1.7:8008/patroni',
  state: 'running',
  role,
  version: '4.0.4',
  ...(xlog !== undefined ? { xlog_location: xlog } : {}),
  ...(role === 'replica' ? { replication_state: 'streaming' } : {}),
  timeline: 1,
});

export function syncKey(shard: number, leader: string, standbys: string): Json {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: `shop-db-${shard}-sync`,
      namespace: NS,
      labels: { 'scalable.dev/database': 'shop', 'scalable.dev/cluster': `shop-db-${shard}` },
      annotations: { leader, sync_standby: standbys },
    },
  };
}

export const node = (name: string, zone?: string): Json => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: {
    name,
    labels: {
      'kubernetes.io/hostname': name,
      ...(zone ? { 'topology.kubernetes.io/zone': zone } : {}),
    },
  },
});

export const cond = (type: string, status: string, reason: string, message = '') => ({
  type,
  status,
  reason,
  message,
  observedGeneration: 3,
  lastTransitionTime: '2026-12-06T19:00:00Z',
});

export function app(status: Json = {}, spec: Json = {}): Json {
  return {
    apiVersion: 'scalable.dev/v1alpha1',
    kind: 'ScalableApp',
    metadata: { name: 'shop', namespace: NS, generation: 3, uid: 'uid-shop' },
    spec: { web: { image: 'shop:1' }, ...spec },
    status: { observedGeneration: 3, ...status },
  };
}

export const NODES = {
  'kwok-zone-a': node('kwok-zone-a', 'zone-a'),
  'kwok-zone-b': node('kwok-zone-b', 'zone-b'),
  'kwok-zone-c': node('kwok-zone-c', 'zone-c'),
};

export function gathered(over: Partial<Gathered> = {}): Gathered {
  return {
    app: app(),
    pods: [],
    patroniKeys: [],
    ingresses: [],
    httpRoutes: [],
    services: [],
    nodes: NODES,
    notes: [],
    ...over,
  };
}
