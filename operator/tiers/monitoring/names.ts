// Names and labels of the monitoring tier in one place: the scrape objects put these labels
// on every series, and the alerts, recording rules and dashboard select by them.
import type { AppModel } from '../../api/model.ts';
import { nameOf } from '../shared/meta.ts';

export const MONITORING = 'monitoring';
export const MONITORING_READY = 'MonitoringReady';

/** The Prometheus Operator's API group: absent, every object of this tier but the dashboard is skipped. */
export const PROMETHEUS_OPERATOR_API = 'monitoring.coreos.com/v1';

/** Target labels every scrape object adds (from the pods' own labels). */
export const SERIES_LABELS = {
  app: 'scalable_app',
  tier: 'scalable_tier',
  shard: 'scalable_shard',
} as const;

/** kube-prometheus-stack's Prometheus selects monitors and rules by this label. */
export const RELEASE_LABEL = 'release';
/** kube-prometheus-stack's Grafana sidecar loads ConfigMaps with this label as dashboards. */
export const DASHBOARD_LABEL = 'grafana_dashboard';

export const RUNBOOK_BASE =
  'https://github.com/scalable-dev/scalable-operator/blob/main/docs/runbooks.md';

/** The PodMonitor of a tier's pods: <app>-<tier>-metrics. */
export const podMonitorName = (app: AppModel, tier: string): string => nameOf(app, tier, 'metrics');
export const ruleName = (app: AppModel): string => nameOf(app, 'rules');
export const dashboardName = (app: AppModel): string => nameOf(app, 'dashboard');

/** Prometheus' name for a pod label in service discovery: invalid characters become _. */
export const podLabelMeta = (label: string): string =>
  `__meta_kubernetes_pod_label_${label.replace(/[^a-zA-Z0-9_]/g, '_')}`;
