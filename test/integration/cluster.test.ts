// The embedded control plane itself: what every other integration suite relies on.
import type { V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { binPath, STORAGE_CLASS, VERSIONS, ZONES } from '../../devcluster/index.ts';
import {
  clients,
  createNamespace,
  eventually,
  printLogDirOnFailure,
  testKubectl,
  uniqueName,
} from '../../devcluster/testing.ts';

const exec = promisify(execFile);
const kubectl = testKubectl;

const APP = 'web';
const labels = (app: string) => ({ app });

/** A pod spec that the restricted Pod Security Standard admits. */
function restrictedPodSpec(app: string): V1PodSpec {
  return {
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 10001,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    topologySpreadConstraints: [
      {
        maxSkew: 1,
        topologyKey: 'topology.kubernetes.io/zone',
        whenUnsatisfiable: 'DoNotSchedule',
        labelSelector: { matchLabels: labels(app) },
      },
    ],
    containers: [
      {
        name: 'main',
        image: 'registry.example/none:1',
        securityContext: {
          allowPrivilegeEscalation: false,
          capabilities: { drop: ['ALL'] },
        },
      },
    ],
  };
}

describe('embedded control plane', () => {
  const { core, apps } = clients();
  const ns = uniqueName('devcluster');

  printLogDirOnFailure();

  beforeAll(async () => {
    await createNamespace(ns, { 'pod-security.kubernetes.io/enforce': 'restricted' }, core);
  });

  afterAll(async () => {
    await core.deleteNamespace({ name: ns }).catch(() => undefined);
  });

  it('gives tests the kubeconfig through inject() and SCALABLE_TEST_KUBECONFIG', () => {
    expect(inject('kubeconfig')).toMatch(/kubeconfig$/);
    expect(process.env['SCALABLE_TEST_KUBECONFIG']).toBe(inject('kubeconfig'));
    expect(process.env['SCALABLE_TEST_LOG_DIR']).toBe(inject('devclusterLogDir'));
  });

  it('has three Ready kwok nodes, one per zone, and a default StorageClass', async () => {
    const nodes = (await core.listNode()).items;
    const ready = nodes.filter((n) =>
      n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    );
    const zones = ready.map((n) => n.metadata?.labels?.['topology.kubernetes.io/zone']).sort();
    expect(zones).toEqual([...ZONES]);
    const { stdout } = await kubectl('get', 'storageclass', STORAGE_CLASS, '-o', 'json');
    const sc = JSON.parse(stdout) as { metadata: { annotations: Record<string, string> } };
    expect(sc.metadata.annotations['storageclass.kubernetes.io/is-default-class']).toBe('true');
  });

  it('runs a Deployment and a StatefulSet with a PVC, all pods Ready across 3 zones, then garbage-collects them', async () => {
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: APP },
        spec: {
          replicas: 3,
          selector: { matchLabels: labels(APP) },
          template: { metadata: { labels: labels(APP) }, spec: restrictedPodSpec(APP) },
        },
      },
    });
    await apps.createNamespacedStatefulSet({
      namespace: ns,
      body: {
        metadata: { name: 'db' },
        spec: {
          replicas: 3,
          serviceName: 'db',
          selector: { matchLabels: labels('db') },
          // PVCs follow their StatefulSet when it is deleted, so GC can be asserted on them too.
          persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Delete', whenScaled: 'Retain' },
          template: {
            metadata: { labels: labels('db') },
            spec: {
              ...restrictedPodSpec('db'),
              containers: restrictedPodSpec('db').containers.map((c) => ({
                ...c,
                volumeMounts: [{ name: 'data', mountPath: '/data' }],
              })),
            },
          },
          // No storageClassName: the DefaultStorageClass admission plugin fills it in.
          volumeClaimTemplates: [
            {
              metadata: { name: 'data' },
              spec: {
                accessModes: ['ReadWriteOnce'],
                resources: { requests: { storage: '1Gi' } },
              },
            },
          ],
        },
      },
    });

    for (const app of [APP, 'db']) {
      const pods = await eventually(
        `3 Ready ${app} pods`,
        async () => {
          const items = (
            await core.listNamespacedPod({ namespace: ns, labelSelector: `app=${app}` })
          ).items;
          const ready = items.filter(isReady);
          return ready.length === 3 ? ready : undefined;
        },
        120_000,
      );
      const zones = await Promise.all(
        pods.map(async (p) => {
          const node = await core.readNode({ name: p.spec?.nodeName ?? '' });
          return node.metadata?.labels?.['topology.kubernetes.io/zone'];
        }),
      );
      expect(zones.sort()).toEqual([...ZONES]);
    }
    const pvcs = (await core.listNamespacedPersistentVolumeClaim({ namespace: ns })).items;
    expect(pvcs).toHaveLength(3);
    expect(pvcs.map((c) => c.status?.phase)).toEqual(['Bound', 'Bound', 'Bound']);
    expect(pvcs.map((c) => c.spec?.storageClassName)).toEqual(Array(3).fill(STORAGE_CLASS));
    const deployment = await apps.readNamespacedDeployment({ name: APP, namespace: ns });
    expect(deployment.status?.readyReplicas).toBe(3);
    const sts = await apps.readNamespacedStatefulSet({ name: 'db', namespace: ns });
    expect(sts.status?.readyReplicas).toBe(3);

    // Deleting the owners: the garbage collector removes ReplicaSets, pods and PVCs.
    await apps.deleteNamespacedDeployment({ name: APP, namespace: ns });
    await apps.deleteNamespacedStatefulSet({ name: 'db', namespace: ns });
    await eventually('owned objects to be garbage-collected', async () => {
      const [pods, rs, claims] = await Promise.all([
        core.listNamespacedPod({ namespace: ns }),
        apps.listNamespacedReplicaSet({ namespace: ns }),
        core.listNamespacedPersistentVolumeClaim({ namespace: ns }),
      ]);
      const left = pods.items.length + rs.items.length + claims.items.length;
      return left === 0 ? true : undefined;
    });
  });

  it('rejects a privileged pod in a restricted namespace (PodSecurity admission)', async () => {
    const privileged: V1Pod = {
      metadata: { name: 'privileged' },
      spec: {
        containers: [
          { name: 'main', image: 'registry.example/none:1', securityContext: { privileged: true } },
        ],
      },
    };
    const err = await core.createNamespacedPod({ namespace: ns, body: privileged }).then(
      () => undefined,
      (e: unknown) => e as { code?: number; body?: unknown },
    );
    expect(err?.code).toBe(403);
    // The body is the API server's Status object, as JSON text.
    const status = JSON.parse(String(err?.body)) as { reason: string; message: string };
    expect(status.reason).toBe('Forbidden');
    expect(status.message).toMatch(/violates PodSecurity "restricted:latest": privileged/);
  });

  it('serves the pinned Kubernetes version, and kubectl and helm report theirs', async () => {
    const { stdout } = await kubectl('version', '-o', 'json');
    const v = JSON.parse(stdout) as {
      clientVersion: { gitVersion: string };
      serverVersion: { gitVersion: string };
    };
    expect(v.clientVersion.gitVersion).toBe(VERSIONS.kubernetes);
    expect(v.serverVersion.gitVersion).toBe(VERSIONS.kubernetes);
    const helm = await exec(binPath('helm'), ['version', '--template', '{{.Version}}']);
    expect(helm.stdout.trim()).toBe(VERSIONS.helm);
  });
});

function isReady(p: V1Pod): boolean {
  return (
    p.metadata?.deletionTimestamp === undefined &&
    (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
  );
}
