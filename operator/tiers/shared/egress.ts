// Network peers every tier's NetworkPolicy shares.
//
// Egress of the data tiers: a compromised Redis or Postgres pod must not reach anything but
// what replication and failover need. DNS goes only to the cluster's DNS servers
// (NetworkDefaults.dns): a rule with ports and no `to` would let a pod send to any address on
// :53 (a channel out, and a listener there gets whatever a redirected client sends). The API
// server likewise only at its addresses (NetworkDefaults.apiServerCidrs: the chart looks up
// the kubernetes Service's cluster IP and its endpoints), on the Service's 443 and the usual
// endpoint port 6443 (CNIs evaluate one or the other); by port alone only when they are not
// known (an offline render).
//
// Scrape ports (exporters, Patroni's /metrics, the web tier's metrics) admit only the
// monitoring namespaces the chart names (SCALABLE_MONITORING_NAMESPACES): a PodMonitor's
// Prometheus must run there.
import type { AppModel } from '../../api/model.ts';
import { k8s } from './k8s.ts';

const port = (n: number, protocol = 'TCP') => ({ port: k8s.IntOrString.fromNumber(n), protocol });

/** Ports the API server is reached on: the kubernetes Service and its usual endpoint. */
export const API_SERVER_PORTS = [443, 6443] as const;

/** The namespaces (by name) as one NetworkPolicy peer. */
export const namespacesPeer = (names: readonly string[]): k8s.NetworkPolicyPeer => ({
  namespaceSelector: {
    matchExpressions: [
      { key: 'kubernetes.io/metadata.name', operator: 'In', values: [...new Set(names)] },
    ],
  },
});

/** An ingress rule: these ports (numbers or container port names) from Prometheus only. */
export function scrapeIngress(
  app: AppModel,
  ports: readonly (number | string)[],
): k8s.NetworkPolicyIngressRule {
  return {
    from: [namespacesPeer(app.network.monitoringNamespaces)],
    ports: ports.map((p) => ({
      port: typeof p === 'number' ? k8s.IntOrString.fromNumber(p) : k8s.IntOrString.fromString(p),
      protocol: 'TCP',
    })),
  };
}

/** The cluster's DNS servers as peers: pods by namespace and labels, and any addresses. */
export function dnsPeers(app: AppModel): k8s.NetworkPolicyPeer[] {
  const dns = app.network.dns;
  return [
    {
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': dns.namespace } },
      podSelector: { matchLabels: { ...dns.podLabels } },
    },
    ...dns.cidrs.map((cidr) => ({ ipBlock: { cidr } })),
  ];
}

export interface EgressProps {
  /** Labels of the pods this tier replicates with (its own pods). */
  readonly peers: Readonly<Record<string, string>>;
  /** Narrows `peers` (e.g. to some components of the tier). */
  readonly peerExpressions?: readonly k8s.LabelSelectorRequirement[];
  readonly peerPorts: readonly number[];
  /** Patroni keeps its leader lock in the API server. */
  readonly apiServer?: boolean;
}

export function dataTierEgress(app: AppModel, p: EgressProps): k8s.NetworkPolicyEgressRule[] {
  return [
    { to: dnsPeers(app), ports: [port(53, 'UDP'), port(53)] },
    {
      to: [
        {
          podSelector: {
            matchLabels: { ...p.peers },
            ...(p.peerExpressions ? { matchExpressions: [...p.peerExpressions] } : {}),
          },
        },
      ],
      ports: p.peerPorts.map((n) => port(n)),
    },
    ...(p.apiServer
      ? [
          {
            ...(app.network.apiServerCidrs.length > 0
              ? { to: app.network.apiServerCidrs.map((cidr) => ({ ipBlock: { cidr } })) }
              : {}),
            ports: API_SERVER_PORTS.map((n) => port(n)),
          },
        ]
      : []),
  ];
}
