// The members of one replicated data set (a shard's Postgres, a replicated cache or queue,
// their Sentinels) on the pods as rendered: a hard node spread whose selector is exactly the
// set, and, through the scheduler's PodTopologySpread filter rule (as the Kubernetes API
// reference states it), distinct nodes whenever there are nodes enough, one node for all of
// them on a laptop, and Pending members only when the spec asks for DoNotSchedule. The
// placements are chosen adversarially (the fullest node the filter lets through), as a
// scheduler whose other scores win would: only the filter stands between two members and
// one node. Real scheduling: test/e2e/placement.test.ts on kind.
import { describe, expect, it } from 'vitest';
import { buildAll } from '../index.ts';
import { modelOf } from './test-helpers.ts';
import type { K8sObject } from './chart.ts';

interface Spread {
  maxSkew: number;
  topologyKey: string;
  whenUnsatisfiable: string;
  nodeTaintsPolicy?: string;
  minDomains?: number;
  labelSelector: { matchLabels: Record<string, string> };
}

interface Template {
  metadata: { labels: Record<string, string> };
  spec: { topologySpreadConstraints?: Spread[] };
}

interface Node {
  name: string;
  zone: string;
  /** NoSchedule-tainted (a kind control plane, a cordoned node): no member tolerates it. */
  tainted?: boolean;
}

const spec = {
  cache: { memory: '64Mi', replicas: 2 },
  sessions: {},
  database: { shards: 2, replicasPerShard: 2, synchronous: true, shardKey: 'user_id' },
  queue: { replicas: 2, consumers: [{ name: 'w', image: 'w:1', stream: 's', maxReplicas: 2 }] },
};

/** The StatefulSets of replicated data sets (more than one pod), by name. */
function memberSets(objects: readonly K8sObject[]): Map<string, { n: number; pod: Template }> {
  const sets = new Map<string, { n: number; pod: Template }>();
  for (const o of objects) {
    const s = o['spec'] as { replicas?: number; template: Template } | undefined;
    if (o.kind === 'StatefulSet' && s && (s.replicas ?? 1) > 1)
      sets.set(o.metadata.name, { n: s.replicas ?? 1, pod: s.template });
  }
  return sets;
}

const matches = (labels: Record<string, string>, selector: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

const domainOf = (node: Node, key: string) =>
  key === 'kubernetes.io/hostname'
    ? node.name
    : key === 'topology.kubernetes.io/zone'
      ? node.zone
      : undefined;

/**
 * PodTopologySpread's filter for one incoming pod (DoNotSchedule constraints only): a node
 * passes when, for each constraint, count(its domain) + 1 - global minimum <= maxSkew, the
 * minimum taken over the eligible domains (nodeTaintsPolicy Honor: untainted nodes; Ignore,
 * the default: every node), and 0 while there are fewer eligible domains than minDomains.
 */
function feasible(nodes: readonly Node[], placed: readonly Node[], spread: readonly Spread[]) {
  return nodes.filter((node) => {
    if (node.tainted) return false; // the pod itself never lands on a NoSchedule taint
    return spread
      .filter((c) => c.whenUnsatisfiable === 'DoNotSchedule')
      .every((c) => {
        const eligible = nodes.filter((n) => c.nodeTaintsPolicy !== 'Honor' || !n.tainted);
        const domains = new Set(eligible.map((n) => domainOf(n, c.topologyKey)));
        const count = (d: string | undefined) =>
          placed.filter((p) => domainOf(p, c.topologyKey) === d).length;
        const min = domains.size < (c.minDomains ?? 1) ? 0 : Math.min(...[...domains].map(count));
        return count(domainOf(node, c.topologyKey)) + 1 - min <= c.maxSkew;
      });
  });
}

/** Members placed one by one on the fullest node the filter allows; undefined: Pending. */
function place(nodes: readonly Node[], n: number, spread: readonly Spread[]) {
  const placed: Node[] = [];
  const pending: number[] = [];
  for (let i = 0; i < n; i++) {
    const ok = feasible(nodes, placed, spread);
    const fullest = ok.sort(
      (a, b) => placed.filter((p) => p === b).length - placed.filter((p) => p === a).length,
    )[0];
    if (fullest) placed.push(fullest);
    else pending.push(i);
  }
  return { nodes: placed.map((p) => p.name), pending: pending.length };
}

const workers = (n: number): Node[] =>
  Array.from({ length: n }, (_, i) => ({ name: `w${i}`, zone: `zone-${'abc'[i % 3]}` }));
const kindCluster: Node[] = [{ name: 'cp', zone: '', tainted: true }, ...workers(3)];

describe('members of one replicated data set', () => {
  const sets = memberSets(buildAll(modelOf(spec)));

  it('every replicated set has a hard node spread whose selector is exactly its own pods', () => {
    expect([...sets.keys()].sort()).toEqual([
      'shop-cache',
      'shop-cache-sentinel',
      'shop-db-0',
      'shop-db-1',
      'shop-queue',
      'shop-queue-sentinel',
    ]);
    for (const [name, { pod }] of sets) {
      const node = pod.spec.topologySpreadConstraints?.find(
        (c) => c.topologyKey === 'kubernetes.io/hostname',
      );
      expect(node, name).toMatchObject({
        maxSkew: 1,
        whenUnsatisfiable: 'DoNotSchedule',
        nodeTaintsPolicy: 'Honor',
      });
      expect(node?.minDomains, `${name}: no minDomains by default`).toBeUndefined();
      const selector = node?.labelSelector.matchLabels ?? {};
      expect(matches(pod.metadata.labels, selector), `${name} counts its own pods`).toBe(true);
      for (const [other, { pod: o }] of sets)
        if (other !== name)
          expect(matches(o.metadata.labels, selector), `${name} does not count ${other}`).toBe(
            false,
          );
      // Zones stay a preference: a single-zone cluster must still run the app.
      const zone = pod.spec.topologySpreadConstraints?.find(
        (c) => c.topologyKey === 'topology.kubernetes.io/zone',
      );
      expect(zone, name).toMatchObject({ whenUnsatisfiable: 'ScheduleAnyway' });
    }
  });

  it('on three workers and a tainted control plane (the kind cluster): each on a node of its own', () => {
    for (const [name, { n, pod }] of sets) {
      const got = place(kindCluster, n, pod.spec.topologySpreadConstraints ?? []);
      expect(got.pending, name).toBe(0);
      expect(new Set(got.nodes).size, `${name}: ${got.nodes.join(',')}`).toBe(n);
    }
  });

  it('on one node (a laptop, the quick start) every member runs; on two, no more than two share one', () => {
    for (const [name, { n, pod }] of sets) {
      const spread = pod.spec.topologySpreadConstraints ?? [];
      expect(place(workers(1), n, spread), name).toEqual({
        nodes: Array(n).fill('w0'),
        pending: 0,
      });
      const two = place(workers(2), n, spread);
      expect(two.pending, name).toBe(0);
      expect(new Set(two.nodes).size, name).toBe(2);
    }
  });

  it('with spreadAcrossZones: false the members still get nodes of their own', () => {
    const off = memberSets(buildAll(modelOf({ ...spec, topology: { spreadAcrossZones: false } })));
    for (const [name, { n, pod }] of off) {
      const spread = pod.spec.topologySpreadConstraints ?? [];
      expect(
        spread.map((c) => c.topologyKey),
        name,
      ).toEqual(['kubernetes.io/hostname']);
      expect(new Set(place(kindCluster, n, spread).nodes).size, name).toBe(n);
    }
  });

  it('whenUnsatisfiable: DoNotSchedule: a member with no node of its own stays Pending', () => {
    const strict = memberSets(
      buildAll(modelOf({ ...spec, topology: { whenUnsatisfiable: 'DoNotSchedule' } })),
    );
    for (const [name, { n, pod }] of strict) {
      const spread = pod.spec.topologySpreadConstraints ?? [];
      expect(spread.find((c) => c.topologyKey === 'kubernetes.io/hostname')?.minDomains).toBe(n);
      expect(place(kindCluster, n, spread).pending, `${name} on 3 workers`).toBe(0);
      const two = place(workers(2), n, spread);
      expect(two, `${name} on 2 workers`).toEqual({ nodes: ['w0', 'w1'], pending: n - 2 });
    }
  });

  it('stateless tiers keep a soft spread (a node short of room must not stop a scale-up)', () => {
    const objects = buildAll(modelOf(spec));
    const web = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'shop-web');
    const spread = (web?.['spec'] as { template: Template }).template.spec
      .topologySpreadConstraints;
    expect(spread?.map((c) => c.whenUnsatisfiable)).toEqual(['ScheduleAnyway', 'ScheduleAnyway']);
  });
});
