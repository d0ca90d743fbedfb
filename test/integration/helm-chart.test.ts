// The Helm charts against the embedded API server: they lint, render objects the server
// accepts, refuse bad values by name, and an installed operator holds exactly the RBAC of
// operator/rbac.ts — and none of a sample of rights it must not have.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import yaml from 'js-yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { binPath } from '../../devcluster/index.ts';
import {
  createNamespace,
  printLogDirOnFailure,
  testKubeconfig,
  uniqueName,
} from '../../devcluster/testing.ts';
import { VERSIONS } from '../../devcluster/versions.ts';
import { INSTALL_MANIFEST, helmPath, renderInstallManifest } from '../../operator/chart-install.ts';
import { leaderElectionRules, operatorRules } from '../../operator/rbac.ts';

const exec = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const OPERATOR_CHART = join(ROOT, 'charts/scalable-operator');
const APP_CHART = join(ROOT, 'charts/scalable-app');
const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`;

interface Out {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}
async function cmd(bin: string, args: readonly string[], input?: string): Promise<Out> {
  const p = exec(bin, args, { cwd: ROOT, maxBuffer: 64 << 20, timeout: 120_000 });
  if (input !== undefined) {
    p.child.stdin?.end(input);
  }
  try {
    const { stdout, stderr } = await p;
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}
const helm = (...args: string[]) => cmd(helmPath(), ['--kubeconfig', testKubeconfig(), ...args]);
const kubectl = (args: readonly string[], input?: string) =>
  cmd(binPath('kubectl'), [`--kubeconfig=${testKubeconfig()}`, ...args], input);

const valuesFile = (values: unknown): string => {
  const path = join(mkdtempSync(join(tmpdir(), 'scalable-values-')), 'values.yaml');
  writeFileSync(path, yaml.dump(values));
  return path;
};

/** kubectl apply --server-side --dry-run=server of a rendered chart. */
async function serverAccepts(manifest: string, namespace: string): Promise<Out> {
  return kubectl(
    ['apply', '--server-side', '--force-conflicts', '--dry-run=server', '-n', namespace, '-f', '-'],
    manifest,
  );
}

printLogDirOnFailure();

describe('charts/scalable-operator', () => {
  let ns: string;
  beforeAll(async () => {
    ns = uniqueName('helm-op');
    await createNamespace(ns);
  });

  it('passes helm lint --strict (both charts)', async () => {
    for (const chart of [OPERATOR_CHART, APP_CHART]) {
      const r = await cmd(helmPath(), ['lint', '--strict', chart]);
      expect(r.stdout + r.stderr, chart).toContain('0 chart(s) failed');
      expect(r.code).toBe(0);
    }
  });

  it(`${INSTALL_MANIFEST} is helm template of the defaults (npm run gen:chart)`, () => {
    expect(readFileSync(join(ROOT, INSTALL_MANIFEST), 'utf8')).toBe(renderInstallManifest());
  });

  it('renders, with default and with non-default values, objects the API server accepts', async () => {
    const nonDefault = valuesFile({
      image: {
        repository: 'registry.example.com/platform/operator',
        tag: '9.9.9',
        pullPolicy: 'Always',
      },
      imagePullSecrets: [{ name: 'regcred' }],
      images: {
        prefix: 'registry.example.com/platform',
        tag: '1.2.3',
        postgres: 'registry.example.com/pg/patroni:{version}-custom',
        redisExporter: `registry.example.com/platform/redis-exporter@${DIGEST}`,
      },
      replicas: 3,
      workers: 4,
      logLevel: 'debug',
      resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '256Mi' } },
      topologySpread: { enabled: false },
      serviceAccount: { name: 'custom-sa', annotations: { 'example.com/role': 'operator' } },
      podLabels: { team: 'platform' },
      nodeSelector: { 'kubernetes.io/os': 'linux' },
      podDisruptionBudget: { enabled: true, minAvailable: '50%' },
      metrics: {
        port: 9090,
        serviceMonitor: { enabled: true, interval: '15s', labels: { release: 'kps' } },
      },
    });
    for (const extra of [[], ['-f', nonDefault]]) {
      const t = await helm(
        'template',
        'rel',
        OPERATOR_CHART,
        '-n',
        ns,
        '--include-crds',
        '--kube-version',
        VERSIONS.kubernetes,
        ...extra,
      );
      expect(t.code, t.stderr).toBe(0);
      const applied = await serverAccepts(t.stdout, ns);
      expect(applied.stderr, `values ${extra.join(' ') || '(defaults)'}`).toBe('');
      expect(applied.code).toBe(0);
      if (extra.length > 0) {
        expect(applied.stdout).toContain(
          'servicemonitor.monitoring.coreos.com/rel-scalable-operator serverside-applied (server dry run)',
        );
        expect(t.stdout).toContain('value: "registry.example.com/platform/redis:1.2.3"');
        expect(t.stdout).toContain('value: "registry.example.com/pg/patroni:{version}-custom"');
        expect(t.stdout).toContain('image: registry.example.com/platform/operator:9.9.9');
        expect(t.stdout).toContain(
          `value: "registry.example.com/platform/redis-exporter@${DIGEST}"`,
        );
      }
    }
    // By digest: the operator's image is repository@digest, the tag ignored.
    const byDigest = await helm(
      'template',
      'rel',
      OPERATOR_CHART,
      '--kube-version',
      VERSIONS.kubernetes,
      '--set',
      `image.digest=${DIGEST}`,
      '--set',
      'image.tag=9.9.9',
    );
    expect(byDigest.code, byDigest.stderr).toBe(0);
    expect(byDigest.stdout).toContain(`image: ghcr.io/scalable-dev/operator@${DIGEST}`);
    expect(byDigest.stdout).not.toContain('operator:9.9.9');
  });

  it('refuses values that break its schema, naming the value', async () => {
    const bad = valuesFile({
      replicas: 'two',
      logLevel: 'loud',
      images: { prefix: 'ghcr.io/x', tag: 'a b' },
      image: { repository: 'ghcr.io/x/operator', digest: 'sha256:short' },
    });
    const r = await helm(
      'template',
      'rel',
      OPERATOR_CHART,
      '--kube-version',
      VERSIONS.kubernetes,
      '-f',
      bad,
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("at '/replicas': got string, want integer");
    expect(r.stderr).toContain("at '/logLevel'");
    expect(r.stderr).toContain("at '/images/tag'");
    expect(r.stderr).toContain("at '/image/digest'");
    const unknown = await helm(
      'template',
      'rel',
      OPERATOR_CHART,
      '--kube-version',
      VERSIONS.kubernetes,
      '--set',
      'replica=2',
    );
    expect(unknown.stderr).toContain("additional properties 'replica' not allowed");
  });

  describe('helm install on the embedded control plane', () => {
    // Contains the chart's name, so every object (ServiceAccount, Deployment, roles) is named after it.
    const release = uniqueName('scalable-operator');
    let sa: string;
    beforeAll(async () => {
      const r = await helm('install', release, OPERATOR_CHART, '-n', ns);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('STATUS: deployed');
      sa = `system:serviceaccount:${ns}:${release}`;
    });

    /**
     * A SubjectAccessReview for the release's ServiceAccount (what `kubectl auth can-i --as`
     * asks, but kubectl cannot name a resource whose API is not served, e.g. cert-manager's).
     * `resource` is `<plural>[.<group>][/<subresource>]`; scope as kubectl's flags.
     */
    const canI = async (
      verb: string,
      resource: string,
      scope: string[],
      name?: string,
    ): Promise<boolean> => {
      const [qualifiedRes, sub] = resource.split('/');
      const dot = qualifiedRes!.indexOf('.');
      const res = dot < 0 ? qualifiedRes! : qualifiedRes!.slice(0, dot);
      const group = dot < 0 ? '' : qualifiedRes!.slice(dot + 1);
      const namespace = scope[0] === '-n' ? scope[1] : undefined;
      const review = {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: sa,
          groups: [
            'system:serviceaccounts',
            `system:serviceaccounts:${ns}`,
            'system:authenticated',
          ],
          resourceAttributes: {
            verb,
            group,
            resource: res,
            ...(sub ? { subresource: sub } : {}),
            ...(namespace ? { namespace } : {}),
            ...(name ? { name } : {}),
          },
        },
      };
      const r = await kubectl(['create', '-o', 'json', '-f', '-'], JSON.stringify(review));
      if (r.code !== 0) throw new Error(`can-i ${verb} ${resource}: ${r.stderr}`);
      return (JSON.parse(r.stdout) as { status?: { allowed?: boolean } }).status?.allowed === true;
    };
    const qualified = (group: string, resource: string) => {
      const [res, sub] = resource.split('/');
      return `${group === '' ? res : `${res}.${group}`}${sub ? `/${sub}` : ''}`;
    };
    async function all<T>(items: readonly T[], fn: (t: T) => Promise<void>, width = 6) {
      const queue = [...items];
      await Promise.all(
        Array.from({ length: width }, async () => {
          for (let t = queue.shift(); t !== undefined; t = queue.shift()) await fn(t);
        }),
      );
    }

    it('its ServiceAccount may do everything operator/rbac.ts lists', async () => {
      const checks: { v: string; res: string; scope: string[]; name?: string }[] = [
        // bind: on the release's Patroni ClusterRole only, by name.
        ...operatorRules(`${release}-patroni`).flatMap((r) =>
          r.apiGroups.flatMap((g) =>
            r.resources.flatMap((res) =>
              r.verbs.flatMap((v) =>
                (r.resourceNames ?? [undefined]).map((name) => ({
                  v,
                  res: qualified(g, res),
                  scope: ['--all-namespaces'],
                  ...(name ? { name } : {}),
                })),
              ),
            ),
          ),
        ),
        // The Lease by name (release = the chart's fullname): get/update are limited to it.
        ...leaderElectionRules(release).flatMap((r) =>
          r.apiGroups.flatMap((g) =>
            r.resources.flatMap((res) =>
              r.verbs.flatMap((v) =>
                (r.resourceNames ?? [undefined]).map((name) => ({
                  v,
                  res: qualified(g, res),
                  scope: ['-n', ns],
                  ...(name ? { name } : {}),
                })),
              ),
            ),
          ),
        ),
      ];
      expect(checks.length).toBeGreaterThan(50);
      const denied: string[] = [];
      await all(checks, async (c) => {
        if (!(await canI(c.v, c.res, c.scope, c.name)))
          denied.push(`${c.v} ${c.res}${c.name ? `/${c.name}` : ''} ${c.scope.join(' ')}`);
      });
      expect(denied).toEqual([]);
    });

    it('and none of a sample of rights it must not hold', async () => {
      const mustNot: [string, string, string[], string?][] = [
        ['list', 'secrets', ['--all-namespaces']],
        ['watch', 'secrets', ['--all-namespaces']],
        ['get', 'secrets', ['-n', 'kube-system']],
        ['deletecollection', 'secrets', ['-n', 'default']],
        ['patch', 'secrets', ['-n', 'default']],
        // The CA Secret's Role names one Secret: any other in its namespace stays unreadable.
        ['get', 'secrets', ['-n', ns]],
        ['list', 'secrets', ['-n', ns]],
        ['delete', 'customresourcedefinitions.apiextensions.k8s.io', []],
        // pods/exec is held (the resharding SQL runs in shard primaries, tiers/database/
        // shard-sql-exec.ts); the chart's exec admission policy confines it to a database pod's
        // postgres container outside kube-system (admission-policies.test.ts). Not attach.
        ['create', 'pods/attach', ['--all-namespaces']],
        ['create', 'pods/portforward', ['--all-namespaces']],
        ['*', '*', ['--all-namespaces']],
        ['update', 'leases.coordination.k8s.io', ['-n', 'kube-node-lease']],
        // Only its own Lease: not another controller's in the same namespace.
        ['update', 'leases.coordination.k8s.io', ['-n', ns], 'another-controller'],
        ['get', 'endpoints', ['--all-namespaces']],
        ['create', 'clusterrolebindings.rbac.authorization.k8s.io', []],
        ['escalate', 'roles.rbac.authorization.k8s.io', ['--all-namespaces']],
        ['impersonate', 'serviceaccounts', ['--all-namespaces']],
        // Issue 36: Patroni's rights are no longer held to be granted.
        ['update', 'pods', ['--all-namespaces']],
        ['patch', 'pods', ['--all-namespaces']],
        ['update', 'configmaps', ['--all-namespaces']],
        ['create', 'roles.rbac.authorization.k8s.io', ['--all-namespaces']],
        ['bind', 'clusterroles.rbac.authorization.k8s.io', ['--all-namespaces'], 'cluster-admin'],
      ];
      const allowed: string[] = [];
      await all(mustNot, async ([v, res, scope, name]) => {
        if (await canI(v, res, scope, name))
          allowed.push(`${v} ${res} ${name ?? ''} ${scope.join(' ')}`);
      });
      expect(allowed).toEqual([]);
    });

    it("its pods may send to the API server's addresses, looked up at install, and nowhere else", async () => {
      const get = async <T>(args: string[]): Promise<T> => {
        const r = await kubectl([...args, '-o', 'json']);
        expect(r.code, r.stderr).toBe(0);
        return JSON.parse(r.stdout) as T;
      };
      const svc = await get<{ spec: { clusterIPs: string[] } }>([
        'get',
        'service',
        'kubernetes',
        '-n',
        'default',
      ]);
      // The API server writes this slice; a control plane that does not (the embedded one's
      // endpoint reconciler) leaves the lookup, and so the policy, with the Service's IPs.
      const found = await kubectl([
        'get',
        'endpointslice',
        'kubernetes',
        '-n',
        'default',
        '-o',
        'json',
      ]);
      if (found.code !== 0) expect(found.stderr).toContain('NotFound');
      const slice = (
        found.code === 0 ? JSON.parse(found.stdout) : { endpoints: [], ports: [] }
      ) as { endpoints: { addresses: string[] }[]; ports: { port: number }[] };
      const cidr = (ip: string) => `${ip}/${ip.includes(':') ? 128 : 32}`;
      const expected = [
        ...new Set([...svc.spec.clusterIPs, ...slice.endpoints.flatMap((e) => e.addresses)]),
      ].map(cidr);
      const ports = [...new Set([443, 6443, ...slice.ports.map((p) => p.port)])];
      const policy = await get<{ spec: { egress: unknown[]; policyTypes: string[] } }>([
        'get',
        'networkpolicy',
        `${release}-egress`,
        '-n',
        ns,
      ]);
      expect(policy.spec.policyTypes).toEqual(['Egress']);
      expect(policy.spec.egress).toEqual([
        {
          ports: ports.map((port) => ({ port, protocol: 'TCP' })),
          to: expected.map((c) => ({ ipBlock: { cidr: c } })),
        },
      ]);
      // The same addresses the operator hands Patroni's egress rule.
      const env = await kubectl([
        'get',
        'deployment',
        release,
        '-n',
        ns,
        '-o',
        'jsonpath={.spec.template.spec.containers[0].env[?(@.name=="SCALABLE_API_SERVER_CIDRS")].value}',
      ]);
      expect(env.stdout.split(',')).toEqual(expected);
    });

    it('helm upgrade and helm uninstall leave the CRD and the users’ apps in place', async () => {
      const appNs = uniqueName('helm-app');
      await createNamespace(appNs);
      const app = await kubectl([
        'apply',
        '-n',
        appNs,
        '-f',
        join(ROOT, 'manifests/examples/minimal.yaml'),
      ]);
      expect(app.code, app.stderr).toBe(0);

      const up = await helm('upgrade', release, OPERATOR_CHART, '-n', ns, '--set', 'replicas=3');
      expect(up.code, up.stderr).toBe(0);
      const replicas = await kubectl([
        'get',
        'deployment',
        release,
        '-n',
        ns,
        '-o',
        'jsonpath={.spec.replicas}',
      ]);
      expect(replicas.stdout).toBe('3');

      const un = await helm('uninstall', release, '-n', ns, '--wait');
      expect(un.code, un.stderr).toBe(0);
      const role = await kubectl(['get', 'clusterrole', release]);
      expect(role.stderr).toContain('NotFound');
      const crd = await kubectl(['get', 'crd', 'scalableapps.scalable.dev', '-o', 'name']);
      expect(crd.stdout.trim()).toBe(
        'customresourcedefinition.apiextensions.k8s.io/scalableapps.scalable.dev',
      );
      const still = await kubectl(['get', 'scalableapps', '-n', appNs, '-o', 'name']);
      expect(still.stdout.trim()).toBe('scalableapp.scalable.dev/hello');
    });
  });
});

describe('charts/scalable-app', () => {
  const example = (
    yaml.loadAll(readFileSync(join(ROOT, 'manifests/examples/full.yaml'), 'utf8')) as {
      kind?: string;
      metadata: { name: string; namespace?: string };
      spec: unknown;
    }[]
  ).find((d) => d?.kind === 'ScalableApp')!;

  it('renders, from the values of manifests/examples/full.yaml, the same ScalableApp, which the API server accepts', async () => {
    const ns = uniqueName('helm-app');
    await createNamespace(ns);
    const t = await helm(
      'template',
      example.metadata.name,
      APP_CHART,
      '-n',
      ns,
      '--kube-version',
      VERSIONS.kubernetes,
      '-f',
      valuesFile(example.spec),
    );
    expect(t.code, t.stderr).toBe(0);
    const docs = (yaml.loadAll(t.stdout) as Record<string, unknown>[]).filter(Boolean);
    expect(docs).toHaveLength(1);
    const app = docs[0] as {
      apiVersion: string;
      kind: string;
      metadata: { name: string; namespace: string };
      spec: unknown;
    };
    expect(app.apiVersion).toBe('scalable.dev/v1alpha1');
    expect(app.kind).toBe('ScalableApp');
    expect(app.metadata.name).toBe(example.metadata.name);
    expect(app.metadata.namespace).toBe(ns);
    expect(app.spec).toEqual(example.spec);
    const applied = await serverAccepts(t.stdout, ns);
    expect(applied.code, applied.stderr).toBe(0);
  });

  it('refuses a bad app before the API server sees it, naming the field', async () => {
    const bad = valuesFile({
      web: { image: 'x' },
      cache: { evictionPolicy: 'lru' },
      database: { shard: 2 },
    });
    const r = await helm(
      'template',
      'bad',
      APP_CHART,
      '--kube-version',
      VERSIONS.kubernetes,
      '-f',
      bad,
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("at '/cache/evictionPolicy': value must be one of 'allkeys-lru'");
    expect(r.stderr).toContain("at '/database': additional properties 'shard' not allowed");
  });
});
