// The queue (the chapter's "message queue, workers scaled independently"): Redis Streams on a
// persistent Redis of its own, and per consumer a worker Deployment that KEDA scales on its
// backlog, down to zero. Web pods get the producer side; workers also their consumer's.
import type { AppModel } from '../../api/model.ts';
import type { K8sObject } from '../shared/chart.ts';
import type { AppWiring, Tier } from '../tier.ts';
import { holdPoolerHost } from '../pooler/hold.ts';
import { adjustWorkers } from './adjust.ts';
import { QUEUE_READY, queueReport, queueRetained } from './status.ts';
import { buildStore, queueWiring } from './store.ts';
import { buildWorkers } from './workers.ts';

export function buildQueue(app: AppModel, wiring: AppWiring): K8sObject[] {
  const queue = app.queue;
  if (!queue) return [];
  return [...buildStore(app, queue), ...buildWorkers(app, queue, wiring)];
}

export const queueTier: Tier = {
  name: 'queue',
  sections: ['queue'],
  conditionType: QUEUE_READY,
  build: buildQueue,
  wiring: queueWiring,
  report: queueReport,
  retained: queueRetained,
  hooks: {
    adjust: (app, desired, live) => holdPoolerHost(app, adjustWorkers(app, desired, live), live),
  },
};
