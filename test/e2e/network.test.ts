// The NetworkPolicies on kind (enforced by kube-router's firewall), port by port: every port
// every pod of the app listens on is probed by pod IP (no DNS, no Service in between) from the
// app's own pod, from a pod in the monitoring namespace, from a pod of another app in the
// app's namespace and from a pod of no app in another namespace. Each port must be open from
// the peers its policy admits and blocked (dropped or rejected by the filter: a timeout or an
// ICMP reject, never a DNS or routing error) from every other. A port nobody is admitted to
// from a pod (Patroni's REST API: only the database pods) is shown listening from inside its
// own pod, and each outsider reaches an unprotected listener: so a blocked result means the
// policy, not a port that is closed or a prober that cannot reach anything. On the shared
// sample app (support/app.ts).
import { describe, expect, it } from 'vitest';
import { SAMPLE_IMAGE as image, useSharedApp } from './support/app.ts';
import { getJson, kubectl, nodeScript, sleeperPod, type List, type Pod } from './support/kube.ts';

const OTHER_NS = 'e2e-outsider';
// The operator's default SCALABLE_MONITORING_NAMESPACES: the only peers of the exporters.
const MONITORING = 'monitoring';
const {
  namespace: NS,
  name: APP,
  client: CLIENT,
} = useSharedApp({
  otherNamespaces: [OTHER_NS, MONITORING],
});

/** Ports only Prometheus may scrape (redis_exporter, postgres_exporter). */
const EXPORTER_PORTS = new Set([9121, 9187]);
/** Patroni's REST API: from the other database pods only (the sample app has no monitoring). */
const PATRONI_PORT = 8008;
/** Port of the unprotected listener in the outsiders' namespace. */
const OPEN_PORT = 8099;
const PROBE_MS = 4000;

interface Target {
  readonly pod: string;
  readonly tier: string;
  readonly addr: string;
  readonly port: number;
}
interface PodWithPorts {
  metadata: Pod['metadata'];
  status: Pod['status'];
  spec: { containers: { name: string; ports?: { containerPort: number; protocol?: string }[] }[] };
}

/** Who the app's policies admit to a port: the app's pods, Prometheus, or no pod of ours. */
const admitted = (t: Target): 'app' | 'monitoring' | 'none' =>
  EXPORTER_PORTS.has(t.port) ? 'monitoring' : t.port === PATRONI_PORT ? 'none' : 'app';

/** Connects to each ip:port at once from a pod: 'open', 'timeout' or the socket error's code. */
async function probe(ns: string, pod: string, addrs: readonly string[]) {
  const out = await nodeScript(
    ns,
    pod,
    `import net from 'node:net';
     const one = (t) => new Promise((res) => {
       const i = t.lastIndexOf(':');
       const s = net.connect({ host: t.slice(0, i), port: Number(t.slice(i + 1)) });
       const done = (r) => { s.destroy(); res([t, r]); };
       s.setTimeout(${PROBE_MS}, () => done('timeout'));
       s.on('connect', () => done('open'));
       s.on('error', (e) => done(e.code ?? 'error'));
     });
     console.log(JSON.stringify(Object.fromEntries(await Promise.all(${JSON.stringify(addrs)}.map(one)))));`,
  );
  return JSON.parse(out) as Record<string, string>;
}

/**
 * What a policy that refuses a connection looks like: the packet dropped (a timeout), or
 * rejected as kube-router does (`REJECT --reject-with icmp-port-unreachable`, ECONNREFUSED to
 * the client). Only meaningful for an ip:port shown open from an admitted peer in the same run
 * (so nothing else refused it); ENOTFOUND, EHOSTUNREACH or anything else is not a refusal.
 */
const BLOCKED = new Set(['timeout', 'ECONNREFUSED']);

describe('the NetworkPolicies on kind', () => {
  it("NetworkPolicies: every port of every pod of the app, by IP: open from the peers its policy admits (the app's own pod, the monitoring namespace), blocked from a pod of another app and from another namespace", async () => {
    await sleeperPod(OTHER_NS, 'no-app', image);
    await sleeperPod(NS, 'other-app', image, { 'scalable.dev/app': 'another' });
    await sleeperPod(MONITORING, 'prometheus', image);
    await sleeperPod(
      OTHER_NS,
      'listener',
      image,
      {},
      `require('node:net').createServer((s) => s.end()).listen(${OPEN_PORT})`,
    );
    const listener = await getJson<Pod>(['get', 'pod', 'listener', '-n', OTHER_NS]);
    const openAddr = `${listener.status.podIP}:${OPEN_PORT}`;

    const appPods = (
      await getJson<List<PodWithPorts>>([
        'get',
        'pods',
        '-n',
        NS,
        '-l',
        `scalable.dev/app=${APP},scalable.dev/tier,!e2e.scalable.dev/client`,
      ])
    ).items.filter((p) => p.status.phase === 'Running' && !p.metadata.deletionTimestamp);
    const targets: Target[] = appPods.flatMap((p) =>
      p.spec.containers.flatMap((c) =>
        (c.ports ?? [])
          .filter((port) => (port.protocol ?? 'TCP') === 'TCP')
          .map((port) => ({
            pod: p.metadata.name,
            tier: p.metadata.labels?.['scalable.dev/tier'] ?? '?',
            addr: `${p.status.podIP}:${port.containerPort}`,
            port: port.containerPort,
          })),
      ),
    );
    // Every tier of the shared app, each data port and exporter: a pod or port the selector
    // missed would leave it unprobed.
    const ports = (tier: string) =>
      [...new Set(targets.filter((t) => t.tier === tier).map((t) => t.port))].sort();
    expect(ports('database'), 'database ports').toEqual([5432, PATRONI_PORT, 9187]);
    for (const tier of ['cache', 'sessions', 'queue'])
      expect(ports(tier), `${tier} ports`).toEqual(expect.arrayContaining([6379, 9121]));
    expect(ports('web').length, 'web ports').toBeGreaterThanOrEqual(1);

    const addrs = targets.map((t) => t.addr);
    const label = (t: Target) => `${t.pod} (${t.tier}) ${t.addr}`;
    const own = await probe(NS, CLIENT, addrs);
    const prometheus = await probe(MONITORING, 'prometheus', addrs);
    // Positive controls: each port open from the peer its policy admits.
    for (const t of targets) {
      const who = admitted(t);
      if (who === 'app') expect(own[t.addr], `${label(t)} from the app's own pod`).toBe('open');
      if (who === 'monitoring')
        expect(prometheus[t.addr], `${label(t)} from ${MONITORING}`).toBe('open');
    }
    // Patroni's port admits no pod of ours: listening, seen from inside its own pod.
    for (const t of targets.filter((x) => admitted(x) === 'none')) {
      const self = await kubectl([
        'exec',
        '-n',
        NS,
        t.pod,
        '--',
        'python3',
        '-c',
        `import socket; socket.create_connection(('${t.addr.split(':')[0]}', ${t.port}), 4); print('open')`,
      ]);
      expect(self.trim(), `${label(t)} from its own pod`).toBe('open');
    }
    // Negatives: every port the policy does not admit the prober to is blocked, not merely
    // "not open".
    const blockedFrom = (seen: Record<string, string>, from: string, allowed: string) => {
      for (const t of targets.filter((x) => admitted(x) !== allowed))
        expect(BLOCKED.has(seen[t.addr] ?? ''), `${label(t)} from ${from}: ${seen[t.addr]}`).toBe(
          true,
        );
    };
    blockedFrom(own, "the app's own pod", 'app');
    blockedFrom(prometheus, MONITORING, 'monitoring');
    for (const [ns, pod] of [
      [OTHER_NS, 'no-app'],
      [NS, 'other-app'],
    ] as const) {
      const seen = await probe(ns, pod, [...addrs, openAddr]);
      // The outsider's positive control: it reaches a port that no policy guards.
      expect(seen[openAddr], `the unprotected listener ${openAddr} from ${ns}/${pod}`).toBe('open');
      blockedFrom(seen, `${ns}/${pod}`, '-');
    }
  });
});
