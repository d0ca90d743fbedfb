// The queue tier's report inside the app's status when only KEDA is missing: the tier says
// APIUnavailable naming KEDA, and the app is not Ready (the spec asks for scaled workers;
// they run at fixed replicas) and says Degraded. (Here, not beside the
// tier: tiers may not import the status computation.)
import { describe, expect, it } from 'vitest';
import { computeStatus } from '../../operator/status/compute.ts';
import { buildAll } from '../../operator/tiers/index.ts';
import type { K8sObject } from '../../operator/tiers/shared/chart.ts';
import type { ObservedObject } from '../../operator/tiers/shared/report.ts';
import { modelOf } from '../../operator/tiers/shared/test-helpers.ts';

const app = modelOf({
  queue: {
    consumers: [
      { name: 'emails', image: 'w:1' },
      { name: 'thumbs', image: 'w:1', minReplicas: 2, maxReplicas: 4 },
    ],
  },
});
const refs = (objs: readonly K8sObject[]) =>
  objs.map((o) => ({ apiVersion: o.apiVersion, kind: o.kind, name: o.metadata.name }));

describe('an app with a queue on a cluster without KEDA', () => {
  it('makes the app not Ready, Degraded=APIUnavailable, when only KEDA is missing', () => {
    const all = buildAll(app);
    const keda = all.filter((o) => o.apiVersion.startsWith('keda.sh/'));
    const ready = (o: K8sObject): ObservedObject =>
      o.kind === 'Deployment' || o.kind === 'StatefulSet'
        ? {
            ...o,
            metadata: { ...o.metadata, generation: 1 },
            status: { observedGeneration: 1, replicas: 2, readyReplicas: 2, updatedReplicas: 2 },
          }
        : o;
    const status = computeStatus(
      app,
      all,
      {
        objects: all.filter((o) => !keda.includes(o)).map(ready),
        pods: [],
        missingApis: ['keda.sh/v1alpha1'],
      },
      { failed: [], skipped: refs(keda) },
    );
    const byType = Object.fromEntries(status.conditions.map((c) => [c.type, c]));
    expect(byType['QueueReady']).toMatchObject({ status: 'False', reason: 'APIUnavailable' });
    expect(byType['QueueReady']?.message).toContain('KEDA');
    expect(byType['Degraded']).toMatchObject({ status: 'True', reason: 'APIUnavailable' });
    expect(byType['Ready']).toMatchObject({ status: 'False', reason: 'APIUnavailable' });
    expect(byType['Ready']?.message).toContain('QueueReady');
  });
});
