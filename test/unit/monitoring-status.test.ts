// The status computation over every tier with the Prometheus Operator absent: its objects are
// skipped, MonitoringReady says why in words a user acts on, and Ready is False (the spec
// asks for monitoring), naming the API, while every other tier is ready.
import { describe, expect, it } from 'vitest';
import { computeStatus } from '../../operator/status/compute.ts';
import { buildAll } from '../../operator/tiers/index.ts';
import {
  MONITORING_READY,
  PROMETHEUS_OPERATOR_API,
} from '../../operator/tiers/monitoring/names.ts';
import { modelOf } from '../../operator/tiers/shared/test-helpers.ts';

const app = modelOf({ cache: {}, monitoring: {} });

describe('monitoring without the Prometheus Operator', () => {
  it('is APIUnavailable naming the Prometheus Operator, and holds Ready back', () => {
    const desired = buildAll(app);
    const skipped = desired
      .filter((o) => o.apiVersion === PROMETHEUS_OPERATOR_API)
      .map((o) => ({ apiVersion: o.apiVersion, kind: o.kind, name: o.metadata.name }));
    expect(skipped.map((s) => s.kind)).toEqual(['PodMonitor', 'PrometheusRule']);
    // Everything else as the cluster would hold it, ready.
    const objects = desired
      .filter((o) => o.apiVersion !== PROMETHEUS_OPERATOR_API)
      .map((o) => ({
        ...o,
        metadata: { ...o.metadata, generation: 1 },
        status: {
          observedGeneration: 1,
          replicas: 2,
          readyReplicas: 2,
          updatedReplicas: 2,
          availableReplicas: 2,
        },
      }));
    const s = computeStatus(
      app,
      desired,
      { objects, pods: [], missingApis: [PROMETHEUS_OPERATOR_API] },
      { failed: [], skipped },
    );
    const cond = (type: string) => s.conditions.find((c) => c.type === type);
    expect(cond(MONITORING_READY)).toMatchObject({ status: 'False', reason: 'APIUnavailable' });
    expect(cond(MONITORING_READY)?.message).toMatch(/the Prometheus Operator is not installed/);
    expect(cond('Degraded')).toMatchObject({ status: 'True', reason: 'APIUnavailable' });
    expect(cond('Ready')).toMatchObject({ status: 'False', reason: 'APIUnavailable' });
    expect(cond('Ready')?.message).toContain(PROMETHEUS_OPERATOR_API);
    expect(cond('CacheReady')?.status).toBe('True');
  });
});
