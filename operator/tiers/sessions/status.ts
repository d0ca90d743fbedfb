// Pure: the session store's verdict: SessionsReady and status.sessions.
import type { AppModel } from '../../api/model.ts';
import { condition } from '../shared/report.ts';
import type { Observed, TierCondition, TierReport } from '../shared/report.ts';
import { missing, podProblem, ratio, tierStatus, workload } from '../shared/workload-status.ts';
import { sessionsNames } from './build.ts';

export const SESSIONS_READY = 'SessionsReady';

export function sessionsReport(app: AppModel, observed: Observed): TierReport {
  if (!app.sessions)
    return { condition: condition(SESSIONS_READY, 'Unknown', 'Off', 'no sessions') };
  return sessionsTier(app, observed);
}

function sessionsTier(app: AppModel, observed: Observed): TierReport {
  const n = sessionsNames(app);
  const redis = workload(observed, 'StatefulSet', n.sessions, 1);
  const report = (status: TierCondition['status'], reason: string, message: string) => ({
    condition: condition(SESSIONS_READY, status, reason, message),
    fields: { sessions: tierStatus(redis) },
  });
  const absent = missing(observed, [
    ['Secret', n.users],
    ['StatefulSet', n.sessions],
  ]);
  if (absent.length > 0) return report('False', 'Creating', `waiting for ${absent.join(', ')}`);
  const counts = `${ratio(redis)} session Redis pods ready`;
  if (redis.ready < 1) {
    const problem = podProblem(app, observed, 'sessions');
    if (problem) return report('False', problem.reason, `${counts}; ${problem.message}`);
    return report('False', 'NotReady', counts);
  }
  if (redis.outdated) return report('True', 'Updating', `${counts}; rolling out`);
  return report('True', 'Ready', counts);
}
