// Egress of the data tiers: a compromised Redis or Postgres pod must not reach anything but
// what replication and failover need. DNS and the API server are allowed by port only: their
// addresses differ per cluster (kube-dns, node-local DNS on a link-local IP; the API server
// behind the kubernetes Service, evaluated at 443 or at its endpoint's 6443 by the CNI).
import { k8s } from './k8s.ts';

const port = (n: number, protocol = 'TCP') => ({ port: k8s.IntOrString.fromNumber(n), protocol });

/** Ports the API server is reached on: the kubernetes Service and its usual endpoint. */
export const API_SERVER_PORTS = [443, 6443] as const;

export interface EgressProps {
  /** Labels of the pods this tier replicates with (its own pods). */
  readonly peers: Readonly<Record<string, string>>;
  /** Narrows `peers` (e.g. to some components of the tier). */
  readonly peerExpressions?: readonly k8s.LabelSelectorRequirement[];
  readonly peerPorts: readonly number[];
  /** Patroni keeps its leader lock in the API server. */
  readonly apiServer?: boolean;
}

export function dataTierEgress(p: EgressProps): k8s.NetworkPolicyEgressRule[] {
  return [
    { ports: [port(53, 'UDP'), port(53)] },
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
    ...(p.apiServer ? [{ ports: API_SERVER_PORTS.map((n) => port(n)) }] : []),
  ];
}
