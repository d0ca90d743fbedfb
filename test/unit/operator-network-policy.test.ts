// The operator pods' own NetworkPolicies, as the chart renders them with its defaults
// (manifests/install.yaml is `helm template` of them; test/integration/helm-chart.test.ts
// fails when it is stale, and checks the addresses a real install looks up): the operator may
// send to the API server only, and only its metrics port is open, to the monitoring
// namespaces and the release's own pods.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { INSTALL_MANIFEST, INSTALL_RELEASE } from '../../operator/chart-install.ts';

interface Obj {
  kind: string;
  metadata: { name: string };
  spec: Record<string, unknown>;
}
const objects = (
  yaml.loadAll(readFileSync(join(import.meta.dirname, '..', '..', INSTALL_MANIFEST), 'utf8')) as
    Obj[] | null[]
).filter((o): o is Obj => o !== null);
const find = (kind: string, name: string): Obj => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`${INSTALL_MANIFEST} has no ${kind}/${name}`);
  return o;
};

describe("the operator pods' NetworkPolicies (chart defaults)", () => {
  const deployment = find('Deployment', INSTALL_RELEASE);
  const template = deployment.spec['template'] as { metadata: { labels: Record<string, string> } };
  const selector = (deployment.spec['selector'] as { matchLabels: Record<string, string> })
    .matchLabels;

  it('egress: to the API server ports only (no DNS, no pod, no other port), for the operator pods alone', () => {
    const policy = find('NetworkPolicy', `${INSTALL_RELEASE}-egress`);
    expect(policy.spec['policyTypes']).toEqual(['Egress']);
    const podSelector = (policy.spec['podSelector'] as { matchLabels: Record<string, string> })
      .matchLabels;
    // The operator pods carry the component label; the helm test pod (selector labels only)
    // does not, so it keeps its DNS and its way to the metrics Service.
    expect(podSelector).toEqual({ ...selector, 'app.kubernetes.io/component': 'operator' });
    expect(selector).not.toHaveProperty('app.kubernetes.io/component');
    for (const [k, v] of Object.entries(podSelector)) expect(template.metadata.labels[k]).toBe(v);
    // Offline (helm template) no address is known: the ports alone. A real install names the
    // API server's addresses (helm-chart.test.ts).
    expect(policy.spec['egress']).toEqual([
      {
        ports: [
          { port: 443, protocol: 'TCP' },
          { port: 6443, protocol: 'TCP' },
        ],
      },
    ]);
  });

  it('ingress: the metrics port only, from the monitoring namespaces and the release', () => {
    const policy = find('NetworkPolicy', INSTALL_RELEASE);
    expect(policy.spec['policyTypes']).toEqual(['Ingress']);
    expect(policy.spec['ingress']).toEqual([
      {
        from: [
          {
            namespaceSelector: {
              matchExpressions: [
                { key: 'kubernetes.io/metadata.name', operator: 'In', values: ['monitoring'] },
              ],
            },
          },
          { podSelector: { matchLabels: selector } },
        ],
        ports: [{ port: 8080, protocol: 'TCP' }],
      },
    ]);
  });
});
