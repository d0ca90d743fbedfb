// For tests: the scrape target labels a PodMonitor endpoint gives one pod, as the Prometheus
// Operator's generated relabelling does (keep by selector and port name; namespace,
// container, pod, job, endpoint), followed by the endpoint's own relabelings. The join test
// and the engine test's static configs both use it, so what they check is what a real
// Prometheus would label.
import type { K8sObject } from '../shared/chart.ts';
import { podLabelMeta } from './names.ts';
import type { PodMetricsEndpoint } from './scrape.ts';

type Json = Record<string, unknown>;

export interface PodTemplate {
  readonly labels: Readonly<Record<string, string>>;
  readonly containers: ReadonlyArray<{
    name: string;
    ports?: ReadonlyArray<{ name?: string; containerPort: number }>;
  }>;
}

/** The pod template of a rendered Deployment or StatefulSet. */
export function podTemplateOf(workload: K8sObject): PodTemplate {
  const t = ((workload['spec'] as Json)['template'] ?? {}) as Json;
  return {
    labels: ((t['metadata'] as Json | undefined)?.['labels'] ?? {}) as Record<string, string>,
    containers: ((t['spec'] as Json)['containers'] ?? []) as PodTemplate['containers'],
  };
}

export const endpointsOf = (monitor: K8sObject): PodMetricsEndpoint[] =>
  ((monitor['spec'] as Json)['podMetricsEndpoints'] ?? []) as PodMetricsEndpoint[];

export const selectorOfMonitor = (monitor: K8sObject): Record<string, string> =>
  (((monitor['spec'] as Json)['selector'] as Json)['matchLabels'] ?? {}) as Record<string, string>;

export const selects = (monitor: K8sObject, pod: PodTemplate): boolean =>
  Object.entries(selectorOfMonitor(monitor)).every(([k, v]) => pod.labels[k] === v);

/** The target labels, or undefined when the monitor does not scrape this pod on this port. */
export function targetLabels(
  monitor: K8sObject,
  ep: PodMetricsEndpoint,
  pod: PodTemplate,
  podName: string,
): Record<string, string> | undefined {
  if (!selects(monitor, pod)) return undefined;
  const container = pod.containers.find((c) => c.ports?.some((p) => p.name === ep.port));
  if (!container) return undefined;
  const ns = monitor.metadata.namespace ?? '';
  const meta: Record<string, string> = {
    __meta_kubernetes_namespace: ns,
    __meta_kubernetes_pod_name: podName,
    ...Object.fromEntries(Object.entries(pod.labels).map(([k, v]) => [podLabelMeta(k), v])),
  };
  const labels: Record<string, string> = {
    namespace: ns,
    container: container.name,
    pod: podName,
    job: `${ns}/${monitor.metadata.name}`,
    endpoint: ep.port,
  };
  for (const r of ep.relabelings) {
    const value = r.sourceLabels.map((s) => meta[s] ?? labels[s] ?? '').join(';');
    const m = new RegExp(`^(?:${r.regex ?? '(.*)'})$`).exec(value);
    if (!m) continue;
    const out = (r.replacement ?? '$1').replace(/\$(\d+)/g, (_, i: string) => m[Number(i)] ?? '');
    labels[r.targetLabel] = out;
  }
  // An empty value is no label at all.
  return Object.fromEntries(Object.entries(labels).filter(([, v]) => v !== ''));
}
