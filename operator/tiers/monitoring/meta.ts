// Metadata of the monitoring tier's objects: the tier's labels plus the release label that
// kube-prometheus-stack's Prometheus selects monitors and rules by.
import type { AppModel } from '../../api/model.ts';
import { metadataOf } from '../shared/meta.ts';
import { MONITORING, RELEASE_LABEL } from './names.ts';

export function monitoringMetadata(
  app: AppModel,
  name: string,
  component: string,
  extraLabels: Record<string, string> = {},
) {
  const meta = metadataOf(app, MONITORING, name, component);
  const release = app.monitoring?.prometheusRelease;
  return {
    ...meta,
    labels: {
      ...meta.labels,
      ...(release ? { [RELEASE_LABEL]: release } : {}),
      ...extraLabels,
    },
  };
}
