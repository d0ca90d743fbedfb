// Cross-cutting checks over everything the builders render: Kubernetes' own OpenAPI
// schemas, Pod Security "restricted", labels and owner references, and golden files.
import { readFileSync, writeFileSync } from 'node:fs';
import yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { toModel } from '../../operator/api/model.ts';
import { validateApp } from '../../operator/api/validate.ts';
import { renderText } from '../../operator/render.ts';
import type { K8sObject } from '../../operator/tiers/shared/chart.ts';
import { buildAll } from '../../operator/tiers/index.ts';
import { EXAMPLES, VARIANTS, exampleText } from './fixtures.ts';
import { validateAgainstOpenApi } from './k8s-openapi.ts';
import { podSpecsOf, restrictedViolations } from './pod-security.ts';

function render(doc: unknown, uid?: string): K8sObject[] {
  const r = validateApp(doc);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  const app = uid ? { ...r.app, metadata: { ...r.app.metadata, uid } } : r.app;
  return buildAll(toModel(app));
}

const ALL: Array<[string, K8sObject[]]> = [
  ...EXAMPLES.map((e): [string, K8sObject[]] => [e, render(yaml.load(exampleText(e)))]),
  ...Object.entries(VARIANTS).map(([n, d]): [string, K8sObject[]] => [n, render(d)]),
];

describe.each(ALL)('%s', (_name, objects) => {
  it('renders objects with unique kind/name', () => {
    const keys = objects.map(
      (o) => `${o.apiVersion}/${o.kind}/${o.metadata.namespace}/${o.metadata.name}`,
    );
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('every object is valid against the OpenAPI schema of its kind', async () => {
    for (const o of objects) {
      await expect(
        validateAgainstOpenApi(o),
        `${o.kind} ${o.metadata.name}`,
      ).resolves.toBeUndefined();
    }
  });

  it('every pod template meets Pod Security "restricted"', () => {
    const pods = objects.flatMap((o) =>
      podSpecsOf(o).map((s) => [`${o.kind}/${o.metadata.name}`, s] as const),
    );
    expect(pods.length).toBeGreaterThan(0);
    for (const [name, spec] of pods) expect(restrictedViolations(spec), name).toEqual([]);
  });

  it('labels every object with the app and its tier', () => {
    for (const o of objects) {
      expect(o.metadata.labels?.['scalable.dev/app'], `${o.kind} ${o.metadata.name}`).toBeTruthy();
      expect(o.metadata.labels?.['scalable.dev/tier']).toBeTruthy();
      expect(o.metadata.labels?.['app.kubernetes.io/managed-by']).toBe('scalable-operator');
    }
  });

  it('every container requests ephemeral storage', () => {
    for (const o of objects) {
      for (const spec of podSpecsOf(o)) {
        const containers = [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
        for (const c of containers) {
          expect(
            c.resources?.requests?.['ephemeral-storage'],
            `${o.kind}/${o.metadata.name} ${c.name}`,
          ).toBeTruthy();
        }
      }
    }
  });

  it('no container restarts on the very check that takes it out of rotation', () => {
    for (const o of objects) {
      for (const spec of podSpecsOf(o)) {
        for (const c of spec.containers ?? []) {
          if (!c.livenessProbe || !c.readinessProbe) continue;
          const handler = (p: Record<string, unknown>) =>
            JSON.stringify([p['httpGet'], p['tcpSocket'], p['exec']]);
          expect(handler(c.livenessProbe), `${o.kind}/${o.metadata.name} ${c.name}`).not.toBe(
            handler(c.readinessProbe),
          );
        }
      }
    }
  });

  it('data tiers may send only to DNS, their own pods and (Patroni) the API server', () => {
    // The data pods' policies; a queue worker's own policy (ingress only) is not one of them.
    const policies = objects.filter(
      (o) =>
        o.kind === 'NetworkPolicy' &&
        ['database', 'cache', 'sessions', 'queue'].includes(
          o.metadata.labels?.['scalable.dev/tier'] ?? '',
        ) &&
        !(o.metadata.labels?.['app.kubernetes.io/component'] ?? '').startsWith('worker-'),
    );
    for (const np of policies) {
      const spec = np['spec'] as {
        policyTypes: string[];
        podSelector: { matchLabels: Record<string, string> };
        egress: Array<{ to?: Array<{ podSelector?: unknown }>; ports?: Array<{ port: number }> }>;
      };
      const name = `NetworkPolicy ${np.metadata.name}`;
      expect(spec.policyTypes, name).toContain('Egress');
      for (const rule of spec.egress) {
        // Never "anywhere on any port"; DNS only to the cluster's DNS pods (issue 36: a rule
        // by port alone let the exporter send its password to any listener on :53); a rule
        // without `to` is the API server by port (the database's Patroni).
        expect(rule.ports?.length, name).toBeGreaterThan(0);
        const ports = (rule.ports ?? []).map((p) => p.port);
        if (ports.includes(53)) {
          expect(ports, name).toEqual([53, 53]);
          expect(rule.to, name).toEqual([
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
              podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
            },
          ]);
        } else if (rule.to === undefined) {
          expect(np.metadata.labels?.['scalable.dev/tier'], name).toBe('database');
          expect(ports, name).toEqual([443, 6443]);
        } else {
          expect(rule.to, name).toEqual([{ podSelector: spec.podSelector }]);
        }
      }
    }
  });

  it('no NetworkPolicy admits a port from every pod or every namespace', () => {
    // Issue 36: the exporters' port (9121, /scrape), postgres_exporter's and Patroni's, and
    // web metrics on the app port were admitted by rules with no `from`, or from
    // `namespaceSelector: {}`. Scrape ports come from the monitoring namespaces only.
    const everyNamespace = (p: Record<string, unknown>) =>
      p['ipBlock'] === undefined &&
      p['namespaceSelector'] !== undefined &&
      JSON.stringify(p['namespaceSelector']) === '{}' &&
      p['podSelector'] === undefined;
    for (const np of objects.filter((o) => o.kind === 'NetworkPolicy')) {
      const spec = np['spec'] as { ingress?: Array<{ from?: Array<Record<string, unknown>> }> };
      for (const rule of spec.ingress ?? []) {
        const name = `NetworkPolicy ${np.metadata.name} ${JSON.stringify(rule)}`;
        expect(rule.from?.length, name).toBeGreaterThan(0);
        for (const peer of rule.from ?? []) expect(everyNamespace(peer), name).toBe(false);
      }
    }
  });

  // Issue 35 (publishNotReadyAddresses): a Service clients use sends them to ready pods only;
  // a headless Service of peers (Patroni, Redis, Sentinel) also names the pods not ready yet,
  // as members resolve each other while they bootstrap.
  it('Services with a ClusterIP route to ready pods only; headless peer Services publish the not ready', () => {
    const services = objects.filter((o) => o.kind === 'Service');
    expect(services.length).toBeGreaterThan(0);
    for (const o of services) {
      const spec = o['spec'] as { clusterIP?: string; publishNotReadyAddresses?: boolean };
      const headless = spec.clusterIP === 'None';
      expect(
        spec.publishNotReadyAddresses === true,
        `Service ${o.metadata.name} (${headless ? 'headless' : 'ClusterIP'}): publishNotReadyAddresses`,
      ).toBe(headless);
    }
  });

  it('runs redis_exporter with /scrape and key values off', () => {
    const exporters = objects
      .flatMap((o) => podSpecsOf(o))
      .flatMap(
        (s) =>
          (s.containers ?? []) as Array<{
            name: string;
            image: string;
            env?: Array<{ name: string; value?: string }>;
          }>,
      )
      .filter((c) => c.image.includes('redis-exporter'));
    for (const c of exporters) {
      const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
      expect(env['REDIS_EXPORTER_DISABLE_SCRAPE_ENDPOINT']).toBe('true');
      expect(env['REDIS_EXPORTER_DISABLE_EXPORTING_KEY_VALUES']).toBe('true');
      for (const k of Object.keys(env))
        expect(k).not.toMatch(/CHECK_KEYS|CHECK_SINGLE_KEYS|COUNT_KEYS|SCRIPT/);
    }
  });

  it('puts no secret material in ConfigMaps, args or literal env', () => {
    const text = JSON.stringify(objects.filter((o) => o.kind !== 'Secret'));
    expect(text).not.toMatch(/password"\s*:\s*"[^"]+"/i);
    for (const o of objects.filter((x) => x.kind === 'Secret')) {
      expect(
        o['data'] ?? o['stringData'],
        `Secret ${o.metadata.name} is declared, never filled offline`,
      ).toBeUndefined();
    }
  });
});

describe('owner references', () => {
  it('are set on every object when the app has a UID, but for the retained Secrets', () => {
    const objects = render(yaml.load(exampleText('full')), 'uid-123');
    // The issued TLS Secrets are owned: a certificate is re-issued, never reopens data.
    const retained = objects.filter(
      (o) =>
        o.kind === 'Secret' &&
        o.metadata.name.startsWith('shop-db-') &&
        !o.metadata.name.endsWith('-tls'),
    );
    expect(retained.map((o) => o.metadata.name)).toEqual([
      'shop-db-auth',
      'shop-db-app',
      'shop-db-rewind',
    ]);
    for (const o of retained) expect(o.metadata['ownerReferences']).toBeUndefined();
    for (const o of objects.filter((o) => !retained.includes(o))) {
      expect(o.metadata['ownerReferences'], `${o.kind} ${o.metadata.name}`).toEqual([
        expect.objectContaining({
          kind: 'ScalableApp',
          name: 'shop',
          uid: 'uid-123',
          controller: true,
        }),
      ]);
    }
  });
});

describe('golden files', () => {
  it.each(EXAMPLES)(
    '%s renders exactly as test/golden (UPDATE_GOLDEN=1 to accept a change)',
    (name) => {
      const result = renderText(exampleText(name), `${name}.yaml`);
      if (!result.ok) throw new Error(JSON.stringify(result.errors));
      const text = result.objects
        .map((o) => `---\n${yaml.dump(o, { noRefs: true, lineWidth: -1 })}`)
        .join('');
      const file = new URL(`../golden/${name}.yaml`, import.meta.url);
      if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(file, text);
      expect(text).toBe(readFileSync(file, 'utf8'));
    },
  );
});

describe('the checks themselves', () => {
  const deploy = () =>
    render(yaml.load(exampleText('minimal'))).find((o) => o.kind === 'Deployment')!;

  it('the OpenAPI check rejects a malformed object and an unknown kind', async () => {
    const bad = structuredClone(deploy());
    (bad['spec'] as Record<string, unknown>)['replicas'] = 'two';
    await expect(validateAgainstOpenApi(bad)).rejects.toThrow(/replicas/);
    await expect(validateAgainstOpenApi({ ...deploy(), kind: 'Deploymnt' })).rejects.toThrow(
      /no OpenAPI model/,
    );
  });

  it('the Pod Security check flags root, privilege and host paths', () => {
    const spec = structuredClone(podSpecsOf(deploy())[0]!);
    spec['containers'][0].securityContext = { privileged: true };
    spec['volumes'].push({ name: 'h', hostPath: { path: '/' } });
    expect(restrictedViolations(spec)).toEqual(
      expect.arrayContaining([
        'volume h of type hostPath',
        'container web: privileged',
        'container web: allowPrivilegeEscalation != false',
        'container web: capabilities not dropping ALL',
      ]),
    );
  });
});
