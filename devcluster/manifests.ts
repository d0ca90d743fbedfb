// Objects every devcluster starts with: kwok's fake nodes (one per zone) and the default
// StorageClass. Pure data, applied with kubectl.
import { dump } from 'js-yaml';
import { KWOK_NODE_ANNOTATION } from './components.ts';

export const ZONES = ['zone-a', 'zone-b', 'zone-c'] as const;
export const STORAGE_CLASS = 'standard';

export function fakeNode(zone: string): Record<string, unknown> {
  const name = `kwok-${zone}`;
  const resources = { cpu: '32', memory: '128Gi', pods: '110', 'ephemeral-storage': '1Ti' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { [KWOK_NODE_ANNOTATION]: 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        'kubernetes.io/arch': 'amd64',
        'kubernetes.io/os': 'linux',
        'kubernetes.io/hostname': name,
        'topology.kubernetes.io/region': 'devcluster',
        'topology.kubernetes.io/zone': zone,
        type: 'kwok',
      },
    },
    // kwok's node-initialize stage fills in conditions and addresses; capacity is ours.
    status: {
      allocatable: resources,
      capacity: resources,
      nodeInfo: {
        architecture: 'amd64',
        operatingSystem: 'linux',
        kubeletVersion: 'fake',
        kubeProxyVersion: 'fake',
        containerRuntimeVersion: 'kwok',
        osImage: 'kwok',
        kernelVersion: '',
        bootID: '',
        machineID: '',
        systemUUID: '',
      },
      phase: 'Running',
    },
  };
}

export function defaultStorageClass(): Record<string, unknown> {
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: {
      name: STORAGE_CLASS,
      annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' },
    },
    // Served by kube-controller-manager --enable-hostpath-provisioner.
    provisioner: 'kubernetes.io/host-path',
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'Immediate',
  };
}

export function bootstrapManifest(): string {
  return [...ZONES.map(fakeNode), defaultStorageClass()].map((o) => dump(o)).join('---\n');
}
