import { describe, expect, it } from 'vitest';
import { databaseTier } from '../tiers/database/index.ts';
import { DATA_VERSION_CHECK, MAJOR_VERSION_MISMATCH } from '../tiers/database/statefulset.ts';
import { modelOf } from '../tiers/shared/test-helpers.ts';
import { materializePod, projectPod } from './project.ts';

describe('pods as the cache keeps them', () => {
  it('keep an init container refusal, so the status can name it', () => {
    const message = `${MAJOR_VERSION_MISMATCH}: the data directory is PostgreSQL 16, this image runs 17`;
    const pod = projectPod({
      metadata: {
        name: 'shop-db-0-0',
        namespace: 'prod',
        labels: {
          'scalable.dev/app': 'shop',
          'scalable.dev/tier': 'database',
          'scalable.dev/database': 'shop',
        },
      },
      status: {
        phase: 'Pending',
        initContainerStatuses: [
          {
            name: DATA_VERSION_CHECK,
            state: { waiting: { reason: 'CrashLoopBackOff' } },
            lastState: { terminated: { exitCode: 1, message } },
          },
        ],
      },
    });
    const app = modelOf({ database: {} });
    const report = databaseTier.report(
      app,
      { objects: [], pods: [materializePod(pod)], missingApis: [] },
      [],
    );
    expect(report.condition).toMatchObject({ status: 'False', reason: 'MajorVersionMismatch' });
    expect(report.condition.message).toContain('PostgreSQL 16');
  });
});
