// The stateless web tier (the chapter's first step): Deployment, Service, HPA, PDB.
import type { Tier } from '../tier.ts';
import { holdPoolerHost } from '../pooler/hold.ts';
import { buildWeb } from './build.ts';
import { WEB_READY, webReport } from './status.ts';

export const webTier: Tier = {
  name: 'web',
  sections: ['web'],
  conditionType: WEB_READY,
  build: buildWeb,
  report: webReport,
  hooks: { adjust: holdPoolerHost },
};
