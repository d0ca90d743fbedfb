// Monitoring (the chapter's "logging, metrics, automation"): PodMonitors for every tier that
// is on, alerts for each tier's failure modes, and a Grafana dashboard. Needs the Prometheus
// Operator's API; without it MonitoringReady says APIUnavailable and nothing else changes.
import type { Tier } from '../tier.ts';
import { buildMonitoring } from './build.ts';
import { MONITORING, MONITORING_READY } from './names.ts';
import { monitoringReport } from './status.ts';

export const monitoringTier: Tier = {
  name: MONITORING,
  sections: ['monitoring'],
  conditionType: MONITORING_READY,
  build: buildMonitoring,
  report: monitoringReport,
};
