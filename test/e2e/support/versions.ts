// Every pinned version of the kind e2e cluster beyond the control plane's (devcluster/versions.ts
// pins Kubernetes and etcd: the nodes run the same binaries). A change makes a new cache folder
// and a new node image tag.
import { createHash } from 'node:crypto';
import { BINARY_VERSIONS } from '../../../devcluster/versions.ts';

export const KIND_VERSIONS = {
  kind: 'v0.33.0',
  /** Kubernetes >= 1.36 needs containerd 2.x; Debian's is 1.7. */
  containerd: 'v2.4.2',
  crictl: 'v1.34.0',
  /** kubeadm v1.36's CoreDNSVersion and PauseVersion (cmd/kubeadm/app/constants). */
  coredns: 'v1.14.2',
  pause: '3.10.2',
  /** CNI: flannel in host-gw mode (every kind node sits on one docker bridge). */
  flannel: 'v0.28.10',
  /** The flannel CNI meta plugin (github.com/flannel-io/cni-plugin is not on the proxy). */
  cniPlugins: 'v0.9.1',
  /**
   * NetworkPolicy enforcement beside flannel: kube-router's firewall alone (iptables + ipset).
   * Not kube-network-policies (what kindnet runs): it needs the nftables `queue` expression,
   * which some kernels (this VM's) lack (`nft ... queue` -> ENOENT).
   */
  kubeRouter: 'v2.1.0',
  /** The dynamic provisioner kind ships. */
  localPath: 'v0.0.30',
} as const;

const shortHash = (v: unknown) =>
  createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 10);

/** Cache folder of the kind binaries: unique for these versions and the Kubernetes build. */
export function kindKey(): string {
  return `kind-${KIND_VERSIONS.kind}-${shortHash({ ...KIND_VERSIONS, ...BINARY_VERSIONS })}`;
}

/**
 * The kind suite's scale-out add-ons, each built into a cache folder of its own
 * (scale-toolchain.ts), so pinning one rebuilds neither the kind binaries nor the node image.
 */
export const SCALE_VERSIONS = {
  /** The HPA's resource metrics. v0.9.x is served by the proxy but its module list is refused here. */
  metricsServer: 'v0.8.0',
} as const;
