// The app's PrometheusRule: recording rules (the dashboard and the alerts read them) and one
// alert group per tier that is on. Present when alerts or dashboards are on; alert groups
// only with alerts.
import type { AppModel } from '../../api/model.ts';
import type { K8sObject } from '../shared/chart.ts';
import { alertGroups } from './alerts.ts';
import { monitoringMetadata } from './meta.ts';
import { ruleName } from './names.ts';
import { recordingRules } from './recording.ts';

export function buildRules(app: AppModel): K8sObject[] {
  const mon = app.monitoring;
  if (!mon || (!mon.alerts && !mon.dashboards)) return [];
  const records = recordingRules(app);
  const groups = [
    ...(records.length > 0
      ? [{ name: `${app.namespace}.${app.name}.records`, rules: records }]
      : []),
    ...(mon.alerts ? alertGroups(app) : []),
  ];
  if (groups.length === 0) return [];
  return [
    {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: monitoringMetadata(app, ruleName(app), 'rules'),
      spec: { groups },
    },
  ];
}
