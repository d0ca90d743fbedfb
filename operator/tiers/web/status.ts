// The web tier's verdict: its Deployment rolled out and at least minReplicas pods ready.
import type { AppModel } from '../../api/model.ts';
import { nameOf } from '../shared/meta.ts';
import { condition, findObject } from '../shared/report.ts';
import type { Observed, TierReport } from '../shared/report.ts';
import { podProblem } from '../shared/workload-status.ts';

type Json = Record<string, unknown>;

const num = (v: unknown): number => (typeof v === 'number' ? v : 0);

export const WEB_READY = 'WebReady';

export function webReport(app: AppModel, observed: Observed): TierReport {
  const name = nameOf(app, 'web');
  const deploy = findObject(observed, 'Deployment', name);
  const { minReplicas, maxReplicas } = app.web.autoscaling;
  if (!deploy) {
    return {
      condition: condition(WEB_READY, 'False', 'NotFound', `Deployment ${name} does not exist yet`),
      fields: {
        web: {
          replicas: 0,
          readyReplicas: 0,
          ready: `0/${minReplicas}`,
          desiredReplicas: minReplicas,
        },
      },
    };
  }
  const spec = (deploy['spec'] ?? {}) as Json;
  const status = (deploy.status ?? {}) as Json;
  // The autoscaler owns spec.replicas; until it acts the count may be below minReplicas.
  const desired = Math.min(maxReplicas, Math.max(minReplicas, num(spec['replicas'] ?? 1)));
  const replicas = num(status['replicas']);
  const ready = num(status['readyReplicas']);
  const updated = num(status['updatedReplicas']);
  const generation = num(deploy.metadata['generation']);
  const observedGeneration = num(status['observedGeneration']);
  const web = {
    replicas,
    readyReplicas: ready,
    ready: `${ready}/${desired}`,
    desiredReplicas: desired,
  };
  let cond;
  if (observedGeneration < generation || updated < replicas) {
    cond = condition(
      WEB_READY,
      'False',
      'RollingOut',
      `Deployment ${name}: ${updated} of ${replicas} pods updated, ${ready}/${desired} ready`,
    );
  } else if (ready < desired) {
    // Which pod is stuck and why (no node with room, a crash loop), as the other tiers say.
    const problem = podProblem(app, observed, 'web');
    const counted = `${ready}/${desired} web pods ready`;
    cond = problem
      ? condition(WEB_READY, 'False', problem.reason, `${counted}; ${problem.message}`)
      : condition(WEB_READY, 'False', 'PodsNotReady', counted);
  } else {
    cond = condition(WEB_READY, 'True', 'PodsReady', `${ready}/${desired} web pods ready`);
  }
  return { condition: cond, fields: { web } };
}
