// The monitoring tier's objects: PodMonitors for the tiers that are on, the app's
// PrometheusRule and its Grafana dashboard. Nothing when monitoring is off.
import type { AppModel } from '../../api/model.ts';
import type { K8sObject } from '../shared/chart.ts';
import { buildDashboard } from './dashboard.ts';
import { buildRules } from './rules.ts';
import { buildScrapeObjects } from './scrape.ts';

export function buildMonitoring(app: AppModel): K8sObject[] {
  if (!app.monitoring) return [];
  return [...buildScrapeObjects(app), ...buildRules(app), ...buildDashboard(app)];
}
