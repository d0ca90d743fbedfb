// Pure: MonitoringReady. Without the Prometheus Operator its objects are skipped (the rest of
// the app is unaffected); the condition says so and what to install.
import type { AppModel } from '../../api/model.ts';
import { condition } from '../shared/report.ts';
import type { Observed, TierReport } from '../shared/report.ts';
import type { ObjectRef } from '../tier.ts';
import { MONITORING_READY, PROMETHEUS_OPERATOR_API } from './names.ts';

export function monitoringReport(
  _app: AppModel,
  observed: Observed,
  wanted: readonly ObjectRef[],
): TierReport {
  if (observed.missingApis.includes(PROMETHEUS_OPERATOR_API)) {
    const kept = wanted.map((w) => `${w.kind} ${w.name}`).join(', ');
    return {
      condition: condition(
        MONITORING_READY,
        'False',
        'APIUnavailable',
        `the Prometheus Operator is not installed (${PROMETHEUS_OPERATOR_API} is not served): ` +
          'no PodMonitors or PrometheusRule were created; install kube-prometheus-stack or the ' +
          `Prometheus Operator${kept ? `; created anyway: ${kept}` : ''}`,
      ),
    };
  }
  const missing = wanted.filter(
    (w) => !observed.objects.some((o) => o.kind === w.kind && o.metadata.name === w.name),
  );
  if (missing.length > 0)
    return {
      condition: condition(
        MONITORING_READY,
        'False',
        'NotFound',
        `missing ${missing.map((m) => `${m.kind} ${m.name}`).join(', ')}`,
      ),
    };
  const count = (kind: string) => wanted.filter((w) => w.kind === kind).length;
  return {
    condition: condition(
      MONITORING_READY,
      'True',
      'Configured',
      `${count('PodMonitor')} PodMonitors, ${count('PrometheusRule')} PrometheusRule, ${count('ConfigMap')} dashboard`,
    ),
  };
}
