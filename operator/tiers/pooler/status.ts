// Pure: the pooler's verdict, PoolerReady: every shard's PgBouncer Deployment has its pods.
import type { AppModel } from '../../api/model.ts';
import { shardIndexes } from '../database/names.ts';
import { condition } from '../shared/report.ts';
import type { Observed, TierReport } from '../shared/report.ts';
import { missing, podProblem, ratio, workload } from '../shared/workload-status.ts';
import { POOLER_TIER, poolerName, poolerOf } from './build.ts';

export const POOLER_READY = 'PoolerReady';

export function poolerReport(app: AppModel, observed: Observed): TierReport {
  const pooler = poolerOf(app);
  if (!pooler) return { condition: condition(POOLER_READY, 'Unknown', 'Off', 'no pooler') };
  const names = shardIndexes(app).map((shard) => poolerName(app, shard));
  const absent = missing(
    observed,
    names.map((n) => ['Deployment', n] as [string, string]),
  );
  if (absent.length > 0)
    return {
      condition: condition(POOLER_READY, 'False', 'Creating', `waiting for ${absent.join(', ')}`),
    };
  const deployments = names.map((n) => workload(observed, 'Deployment', n, pooler.replicas));
  const short = deployments.filter((d) => d.ready < 1);
  const counts = deployments.map((d) => `${d.name} ${ratio(d)}`).join(', ');
  if (short.length > 0) {
    const problem = podProblem(app, observed, POOLER_TIER);
    const message = `PgBouncer pods ready: ${counts}`;
    return {
      condition: problem
        ? condition(POOLER_READY, 'False', problem.reason, `${message}; ${problem.message}`)
        : condition(POOLER_READY, 'False', 'NotReady', message),
    };
  }
  if (deployments.some((d) => d.outdated || d.ready < d.desired))
    return {
      condition: condition(POOLER_READY, 'True', 'Updating', `PgBouncer pods ready: ${counts}`),
    };
  return { condition: condition(POOLER_READY, 'True', 'Ready', `PgBouncer pods ready: ${counts}`) };
}
