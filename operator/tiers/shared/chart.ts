// The cdk8s harness: builders add constructs to a throw-away Chart and get plain JSON back.
import { App, Chart } from 'cdk8s';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** Run `define` inside a fresh Chart and return the synthesized objects (pure). */
export function synth(define: (chart: Chart) => void): K8sObject[] {
  const app = new App();
  const chart = new Chart(app, 'scalable', { disableResourceNameHashes: true });
  define(chart);
  return chart.toJson() as K8sObject[];
}

/**
 * A Deployment with `fn` applied to each container of its pod template (other kinds as they
 * are): for what is set on the synthesized JSON, after the builders.
 */
export function withContainers<C extends { name: string }>(
  obj: K8sObject,
  fn: (container: C) => C,
): K8sObject {
  if (obj.kind !== 'Deployment') return obj;
  type Spec = { template: { spec: { containers: C[] } } };
  const spec = obj['spec'] as Spec;
  const containers = spec.template.spec.containers.map(fn);
  return {
    ...obj,
    spec: { ...spec, template: { ...spec.template, spec: { ...spec.template.spec, containers } } },
  };
}
