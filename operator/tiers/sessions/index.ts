// The session store (the chapter's stateless web tier keeps sessions out of its pods): a
// persistent Redis (AOF, PVC, noeviction) of its own.
import type { Tier } from '../tier.ts';
import { buildSessions, sessionsWiring } from './build.ts';
import { SESSIONS_READY, sessionsReport } from './status.ts';

export const sessionsTier: Tier = {
  name: 'sessions',
  sections: ['sessions'],
  conditionType: SESSIONS_READY,
  build: buildSessions,
  wiring: sessionsWiring,
  report: sessionsReport,
};
