// The operator's own /metrics (prom-client): reconciles, errors, durations, queue depth,
// API requests by verb and resource, leadership. One registry per operator instance; tiers'
// watches declare their own metrics in it (tiers/watch.ts).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  readonly reconciles: Counter<'result'>;
  readonly reconcileErrors: Counter<'reason'>;
  readonly reconcileDuration: Histogram;
  readonly queueDepth: Gauge;
  readonly apiRequests: Counter<'verb' | 'resource' | 'code'>;
  readonly apiRequestsSent: Counter<'resource'>;
  readonly leader: Gauge;
  readonly watchRestarts: Counter<'resource' | 'cause'>;
  readonly objectWrites: Counter<'kind' | 'action'>;
  readonly appReady: Gauge<'namespace' | 'name'>;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    reconciles: new Counter({
      name: 'scalable_reconcile_total',
      help: 'Reconciles by result (success, error, invalid).',
      labelNames: ['result'],
      registers,
    }),
    reconcileErrors: new Counter({
      name: 'scalable_reconcile_errors_total',
      help: 'Failed reconciles by reason.',
      labelNames: ['reason'],
      registers,
    }),
    reconcileDuration: new Histogram({
      name: 'scalable_reconcile_duration_seconds',
      help: 'Time one reconcile takes.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    queueDepth: new Gauge({
      name: 'scalable_workqueue_depth',
      help: 'Keys waiting in the work queue.',
      registers,
    }),
    apiRequests: new Counter({
      name: 'scalable_api_requests_total',
      help: 'Requests to the Kubernetes API by verb, resource and HTTP code (0: no answer).',
      labelNames: ['verb', 'resource', 'code'],
      registers,
    }),
    apiRequestsSent: new Counter({
      name: 'scalable_api_requests_sent_total',
      help: 'Requests sent to the Kubernetes API (counted as they leave the rate limiter).',
      labelNames: ['resource'],
      registers,
    }),
    leader: new Gauge({
      name: 'scalable_leader',
      help: '1 while this instance holds the leader lease.',
      registers,
    }),
    watchRestarts: new Counter({
      name: 'scalable_watch_restarts_total',
      help: 'Watches restarted, by resource and cause (gone, stalled, error, closed).',
      labelNames: ['resource', 'cause'],
      registers,
    }),
    objectWrites: new Counter({
      name: 'scalable_object_writes_total',
      help: 'Objects created, updated or deleted by the reconciler.',
      labelNames: ['kind', 'action'],
      registers,
    }),
    // What the monitoring tier's ScalableAppNotReady alert reads. Only the leader reports:
    // a follower's values would be stale, so they are cleared when leadership goes.
    appReady: new Gauge({
      name: 'scalable_app_ready',
      help: '1 while the ScalableApp is Ready, as of its last reconcile by this leader.',
      labelNames: ['namespace', 'name'],
      registers,
    }),
  };
}
