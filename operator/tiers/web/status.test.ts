import { describe, expect, it } from 'vitest';
import { modelOf, observed, pod, workload } from '../shared/test-helpers.ts';
import { webReport } from './status.ts';

const app = modelOf({ web: { image: 'shop:1', autoscaling: { minReplicas: 2 } } });
const deploy = (ready: number) => workload('Deployment', 'shop-web', 2, ready);

describe('webReport', () => {
  it('counts ready pods against the desired count', () => {
    expect(webReport(app, observed([deploy(2)])).condition).toMatchObject({
      status: 'True',
      reason: 'PodsReady',
      message: '2/2 web pods ready',
    });
    expect(webReport(app, observed([deploy(1)])).condition).toMatchObject({
      status: 'False',
      reason: 'PodsNotReady',
      message: '1/2 web pods ready',
    });
  });

  it('names the stuck pod and why: no node with room, a crash loop', () => {
    const pending = pod('shop-web-b', 'web', {
      conditions: [
        {
          type: 'PodScheduled',
          status: 'False',
          reason: 'Unschedulable',
          message: '0/4 nodes are available: 3 Insufficient cpu',
        },
      ],
    });
    expect(webReport(app, observed([deploy(1)], [pending])).condition).toEqual({
      type: 'WebReady',
      status: 'False',
      reason: 'Unschedulable',
      message: '1/2 web pods ready; pod shop-web-b: 0/4 nodes are available: 3 Insufficient cpu',
    });
    const crashing = pod('shop-web-c', 'web', {
      containerStatuses: [{ name: 'web', state: { waiting: { reason: 'CrashLoopBackOff' } } }],
    });
    expect(webReport(app, observed([deploy(1)], [crashing])).condition.reason).toBe(
      'CrashLoopBackOff',
    );
    // Another tier's stuck pod is not the web's.
    const worker = pod('shop-worker-a', 'queue', pending.status as Record<string, unknown>);
    expect(webReport(app, observed([deploy(1)], [worker])).condition.reason).toBe('PodsNotReady');
  });
});
