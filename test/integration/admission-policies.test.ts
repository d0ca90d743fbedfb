// The chart's bounds on the operator and on Patroni (issue 36), on the embedded API server
// (kube-apiserver 1.36: ValidatingAdmissionPolicy is GA there):
// - the installed operator's ServiceAccount holds none of Patroni's rights (RBAC), and its
//   admission policy refuses what RBAC alone would allow: any write in kube-system, objects
//   without an app's labels, taking over an object by labelling it, a ServiceAccount-token
//   Secret, a RoleBinding of another role or subject, pods under another ServiceAccount;
// - a database pod's token (bound to its pod, as the kubelet mounts it) may change its own
//   pod's role label and status annotation and its own shards' ConfigMaps, and nothing else:
//   not its app label, not another pod, not another ConfigMap.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binPath } from '../../devcluster/index.ts';
import {
  createNamespace,
  eventually,
  printLogDirOnFailure,
  testKubeconfig,
  uniqueName,
} from '../../devcluster/testing.ts';
import { bindingOf, patroniPolicy } from '../../operator/admission.ts';
import { toModel } from '../../operator/api/model.ts';
import { validateApp } from '../../operator/api/validate.ts';
import { helmPath } from '../../operator/chart-install.ts';
import { buildDatabase } from '../../operator/tiers/database/build.ts';
import { IF_SERVED_ANNOTATION } from '../../operator/tiers/shared/meta.ts';
import { installCrd } from './operator-harness.ts';

const exec = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');

interface Out {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}
async function cmd(bin: string, args: readonly string[], input?: string): Promise<Out> {
  const p = exec(bin, args, { cwd: ROOT, maxBuffer: 16 << 20, timeout: 120_000 });
  if (input !== undefined) p.child.stdin?.end(input);
  try {
    const { stdout, stderr } = await p;
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}
const kubectl = (args: readonly string[], input?: string, kubeconfig = testKubeconfig()) =>
  cmd(binPath('kubectl'), [`--kubeconfig=${kubeconfig}`, ...args], input);
const helm = (...args: string[]) => cmd(helmPath(), ['--kubeconfig', testKubeconfig(), ...args]);

/** A kubeconfig of the test cluster that authenticates with this token only. */
function tokenKubeconfig(token: string): string {
  const admin = yaml.load(readFileSync(testKubeconfig(), 'utf8')) as {
    clusters: Array<{ cluster: Record<string, unknown> }>;
  };
  const path = join(mkdtempSync(join(tmpdir(), 'scalable-token-')), 'kubeconfig');
  writeFileSync(
    path,
    yaml.dump({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: admin.clusters[0]!.cluster }],
      users: [{ name: 'u', user: { token } }],
      contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'c',
    }),
    { mode: 0o600 },
  );
  return path;
}

/** Polls until check holds or a minute has passed; never throws (the cases assert). */
async function settled(check: () => Promise<boolean>): Promise<void> {
  await eventually(
    'a policy in force',
    async () => ((await check()) ? true : undefined),
    60_000,
    500,
  ).catch(() => undefined);
}

const denied = (out: Out, message: string) => {
  expect(out.code, out.stdout).not.toBe(0);
  expect(out.stderr).toContain('denied request');
  expect(out.stderr).toContain(message);
};
const admitted = (out: Out) => expect(out.code, out.stderr).toBe(0);

printLogDirOnFailure();

describe("the chart's admission policy bounds the operator's ServiceAccount", () => {
  const ns = uniqueName('adm-op');
  const tenant = uniqueName('adm-tenant');
  const release = uniqueName('scalable-operator');
  let as: string[] = [];

  beforeAll(async () => {
    await installCrd(testKubeconfig());
    await createNamespace(ns);
    await createNamespace(tenant);
    const r = await helm('install', release, join(ROOT, 'charts/scalable-operator'), '-n', ns);
    expect(r.code, r.stderr).toBe(0);
    as = [
      `--as=system:serviceaccount:${ns}:${release}`,
      '--as-group=system:serviceaccounts',
      `--as-group=system:serviceaccounts:${ns}`,
      '--as-group=system:authenticated',
    ];
    // The policy and its binding are served once the API server's policy cache has them.
    // Best effort: without a policy (a broken build) the cases below fail on their own.
    await settled(async () => {
      const probe = await kubectl([
        ...as,
        'create',
        'configmap',
        'probe',
        '-n',
        tenant,
        '--dry-run=server',
        '-o',
        'name',
      ]);
      return probe.code !== 0 && probe.stderr.includes('denied request');
    });
  });

  afterAll(async () => {
    await helm('uninstall', release, '-n', ns, '--wait');
    await kubectl(['delete', 'namespace', ns, tenant, '--wait=false']);
  });

  const canI = async (...args: string[]) =>
    (await kubectl([...as, 'auth', 'can-i', ...args])).stdout.trim();

  it("holds none of Patroni's rights, and may bind only the chart's Patroni ClusterRole (RBAC)", async () => {
    for (const verb of ['update', 'patch', 'get'])
      expect(await canI(verb, 'pods', '-A'), `${verb} pods`).toBe('no');
    expect(await canI('update', 'configmaps', '-A')).toBe('no');
    expect(await canI('create', 'roles', '-A')).toBe('no');
    expect(await canI('escalate', 'roles', '-A')).toBe('no');
    expect(await canI('bind', `clusterroles/${release}-patroni`, '-n', tenant)).toBe('yes');
    for (const role of ['cluster-admin', 'admin', 'edit'])
      expect(await canI('bind', `clusterroles/${role}`, '-n', tenant), role).toBe('no');
  });

  it('writes nothing in kube-system, though RBAC alone would let it', async () => {
    // RBAC (a ClusterRole) cannot leave a namespace out; the policy does.
    expect(await canI('patch', 'deployments', '-n', 'kube-system')).toBe('yes');
    const labels = { 'scalable.dev/app': 'x' };
    const cm = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'x-config', namespace: 'kube-system', labels },
    };
    denied(
      await kubectl([...as, 'create', '--dry-run=server', '-f', '-'], JSON.stringify(cm)),
      'never in kube-system',
    );
    // A ConfigMap every cluster has there, which RBAC lets it delete.
    expect(await canI('delete', 'configmaps', '-n', 'kube-system')).toBe('yes');
    denied(
      await kubectl([
        ...as,
        'delete',
        'configmap',
        'extension-apiserver-authentication',
        '-n',
        'kube-system',
        '--dry-run=server',
      ]),
      'never in kube-system',
    );
  });

  it("writes only objects labelled with an app, and takes over none that wasn't", async () => {
    const cm = (name: string, labels?: Record<string, string>) =>
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name, namespace: tenant, ...(labels ? { labels } : {}) },
      });
    denied(
      await kubectl([...as, 'create', '--dry-run=server', '-f', '-'], cm('plain')),
      'only objects labelled scalable.dev/app',
    );
    admitted(
      await kubectl(
        [...as, 'create', '--dry-run=server', '-f', '-'],
        cm('x-config', { 'scalable.dev/app': 'x' }),
      ),
    );
    // Someone else's ConfigMap: labelling it would make it the operator's.
    admitted(await kubectl(['create', '-f', '-'], cm('theirs')));
    denied(
      await kubectl([
        ...as,
        'label',
        'configmap',
        'theirs',
        '-n',
        tenant,
        'scalable.dev/app=x',
        '--dry-run=server',
      ]),
      'does not take over',
    );
  });

  it('creates no ServiceAccount-token Secret, binds no other role or subject, runs pods under no foreign ServiceAccount', async () => {
    const labels = { 'scalable.dev/app': 'x' };
    const create = (obj: unknown) =>
      kubectl([...as, 'create', '--dry-run=server', '-f', '-'], JSON.stringify(obj));
    denied(
      await create({
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'kubernetes.io/service-account-token',
        metadata: {
          name: 'x-token',
          namespace: tenant,
          labels,
          annotations: { 'kubernetes.io/service-account.name': 'default' },
        },
      }),
      'never a ServiceAccount token',
    );
    admitted(
      await create({
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'Opaque',
        metadata: { name: 'x-auth', namespace: tenant, labels },
      }),
    );
    const binding = (subject: string) => ({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: `x-${subject}`, namespace: tenant, labels },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: `${release}-patroni`,
      },
      subjects: [{ kind: 'ServiceAccount', name: subject, namespace: tenant }],
    });
    admitted(await create(binding('x-db')));
    denied(await create(binding('default')), `binds only ${release}-patroni`);
    const deployment = (serviceAccountName: string) => ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'x-web', namespace: tenant, labels },
      spec: {
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: { serviceAccountName, containers: [{ name: 'web', image: 'x:1' }] },
        },
      },
    });
    admitted(await create(deployment('x-web')));
    denied(await create(deployment('default')), "only as their app's own ServiceAccounts");
  });

  it("runs commands only in a database pod's postgres container, never in kube-system", async () => {
    // RBAC grants pods/exec cluster-wide (the resharding SQL runs in shard primaries); the
    // exec policy confines it. kwok runs no container: an exec the policy admits fails later,
    // at the kubelet, with another message.
    const pod = (name: string, namespace: string, container: string) =>
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace, labels: { 'scalable.dev/app': 'x' } },
        spec: { containers: [{ name: container, image: 'example.invalid/x:1' }] },
      });
    for (const [name, namespace, container] of [
      ['x-db-0-0', tenant, 'postgres'],
      ['x-web-1', tenant, 'web'],
      ['x-db-0-0', 'kube-system', 'postgres'],
    ] as const)
      admitted(await kubectl(['apply', '-f', '-'], pod(name, namespace, container)));
    expect(await canI('create', 'pods', '--subresource=exec', '-n', 'kube-system')).toBe('yes');
    // A POST to the exec subresource (kubectl exec would GET the pod first, which the operator
    // may not): authorization and admission run on it before the upgrade it lacks.
    const execAs = (namespace: string, name: string, container: string, ...command: string[]) =>
      kubectl(
        [
          ...as,
          'create',
          '--raw',
          `/api/v1/namespaces/${namespace}/pods/${name}/exec?container=${container}&stdout=true&${command
            .map((c) => `command=${encodeURIComponent(c)}`)
            .join('&')}`,
          '-f',
          '-',
        ],
        '',
      );
    denied(
      await execAs('kube-system', 'x-db-0-0', 'postgres', 'python3', '-c', '1'),
      'runs no command in kube-system',
    );
    denied(
      await execAs(tenant, 'x-web-1', 'web', 'python3', '-c', '1'),
      "only in a database pod's postgres container",
    );
    denied(await execAs(tenant, 'x-db-0-0', 'postgres', 'sh', '-c', 'id'), 'only python3 or bash');
    const allowed = await execAs(tenant, 'x-db-0-0', 'postgres', 'python3', '-c', '1');
    expect(allowed.stderr).not.toContain('denied request');
    await kubectl(['delete', 'pod', 'x-db-0-0', '-n', 'kube-system', '--wait=false']);
  });
});

describe("the chart's admission policy bounds what a ScalableApp may claim", () => {
  const release = uniqueName('scalable-operator');
  const home = uniqueName('adm-apps-op');
  const open = uniqueName('adm-apps-open');
  const fenced = uniqueName('adm-apps-fenced');
  const app = (ns: string, name: string, spec: Record<string, unknown>) =>
    JSON.stringify({
      apiVersion: 'scalable.dev/v1alpha1',
      kind: 'ScalableApp',
      metadata: { name, namespace: ns },
      spec: { web: { image: 'x:1' }, ...spec },
    });
  const create = (ns: string, name: string, spec: Record<string, unknown>) =>
    kubectl(['create', '--dry-run=server', '-f', '-'], app(ns, name, spec));

  beforeAll(async () => {
    await installCrd(testKubeconfig());
    for (const ns of [home, open, fenced]) await createNamespace(ns);
    admitted(
      await kubectl([
        'annotate',
        'namespace',
        fenced,
        'scalable.dev/ingress-hosts=*.team-a.example.com, shop.example.com',
      ]),
    );
    const r = await helm(
      'install',
      release,
      join(ROOT, 'charts/scalable-operator'),
      '-n',
      home,
      '--set',
      'admissionPolicies.allowedClusterIssuers={letsencrypt}',
    );
    expect(r.code, r.stderr).toBe(0);
    await settled(async () => {
      const out = await create(fenced, 'probe', { ingress: { host: 'probe.example.com' } });
      return out.code !== 0 && out.stderr.includes('denied request');
    });
  });

  afterAll(async () => {
    await helm('uninstall', release, '-n', home, '--wait');
    await kubectl(['delete', 'namespace', home, open, fenced, '--wait=false']);
  });

  it("claims only the hosts its namespace's annotation allows", async () => {
    denied(
      await create(fenced, 'evil', { ingress: { host: 'shop.team-b.example.com' } }),
      'spec.ingress.host: shop.team-b.example.com is not a host this namespace may serve',
    );
    denied(
      await create(fenced, 'evil', { ingress: { host: 'team-a.example.com' } }),
      'is not a host this namespace may serve',
    );
    for (const host of ['shop.example.com', 'api.team-a.example.com', '*.eu.team-a.example.com'])
      admitted(await create(fenced, 'ok', { ingress: { host } }));
    // A namespace without the annotation: any host (admissionPolicies.requireHostAnnotation off).
    admitted(await create(open, 'ok', { ingress: { host: 'shop.team-b.example.com' } }));
  });

  it('names a ClusterIssuer only if the chart lists it', async () => {
    const db = (kind: string, name: string) => ({
      database: { certificateIssuer: { kind, name } },
    });
    denied(
      await create(open, 'ci', db('ClusterIssuer', 'internal-ca')),
      'spec.database.certificateIssuer: ClusterIssuer internal-ca is not one',
    );
    admitted(await create(open, 'ci', db('ClusterIssuer', 'letsencrypt')));
    admitted(await create(open, 'ci', db('Issuer', 'internal-ca')));
  });
});

describe("the chart's admission policy bounds a database pod's token", () => {
  const ns = uniqueName('adm-db');
  const prefix = uniqueName('adm-policy');
  const policy = patroniPolicy({
    prefix,
    operatorUser: 'system:serviceaccount:none:none',
    operatorNamespace: 'none',
    patroniClusterRole: 'scalable-operator-patroni',
  });
  const objects = [policy, bindingOf(policy)];
  let own = '';
  let sibling = '';
  let member = '';

  beforeAll(async () => {
    await installCrd(testKubeconfig());
    await createNamespace(ns, { 'pod-security.kubernetes.io/enforce': 'restricted' });
    const r = validateApp({
      apiVersion: 'scalable.dev/v1alpha1',
      kind: 'ScalableApp',
      metadata: { name: 'shop', namespace: ns },
      spec: { web: { image: 'x:1' }, database: { replicasPerShard: 1, tls: false } },
    });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    // What the operator applies for the database tier (its RoleBinding to the chart's
    // Patroni ClusterRole among it), kwok runs the pods.
    const rendered = buildDatabase(toModel(r.app)).filter(
      (o) => o.metadata.annotations?.[IF_SERVED_ANNOTATION] !== 'true',
    );
    admitted(
      await kubectl(
        ['apply', '--server-side', '-f', '-'],
        JSON.stringify({ apiVersion: 'v1', kind: 'List', items: rendered }),
      ),
    );
    admitted(
      await kubectl(
        ['apply', '--server-side', '-f', '-'],
        JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }),
      ),
    );
    admitted(
      await kubectl([
        'run',
        'victim',
        '-n',
        ns,
        '--image=x:1',
        '--labels=app=victim',
        '--restart=Never',
        '--overrides={"spec":{"securityContext":{"runAsNonRoot":true,"runAsUser":1000,"seccompProfile":{"type":"RuntimeDefault"}},"containers":[{"name":"victim","image":"x:1","securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}}}]}}',
      ]),
    );
    const uid = await eventually('pod shop-db-0-0', async () => {
      const p = await kubectl([
        'get',
        'pod',
        'shop-db-0-0',
        '-n',
        ns,
        '-o',
        'jsonpath={.metadata.uid}',
      ]);
      return p.code === 0 && p.stdout ? p.stdout : undefined;
    });
    await eventually('pod shop-db-0-1', async () =>
      (await kubectl(['get', 'pod', 'shop-db-0-1', '-n', ns])).code === 0 ? true : undefined,
    );
    // As the kubelet mounts it: a token bound to the member's own pod.
    const bound = await kubectl([
      'create',
      'token',
      'shop-db',
      '-n',
      ns,
      '--bound-object-kind=Pod',
      '--bound-object-name=shop-db-0-0',
      `--bound-object-uid=${uid}`,
    ]);
    admitted(bound);
    own = tokenKubeconfig(bound.stdout.trim());
    const unbound = await kubectl(['create', 'token', 'shop-db', '-n', ns]);
    member = tokenKubeconfig(unbound.stdout.trim());
    sibling = 'shop-db-0-1';
    // The policy is in force once the member's write to another pod is refused (best
    // effort, as above).
    await settled(async () => {
      const out = await patch('pod', sibling, {
        metadata: { labels: { 'scalable.dev/role': 'replica' } },
      });
      return out.code !== 0 && out.stderr.includes('denied request');
    });
  });

  afterAll(async () => {
    await kubectl(
      ['delete', '-f', '-', '--wait=false'],
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }),
    );
    await kubectl(['delete', 'namespace', ns, '--wait=false']);
  });

  const patch = (kind: string, name: string, body: unknown, kubeconfig = own) =>
    kubectl(
      ['patch', kind, name, '-n', ns, '--type=merge', '-p', JSON.stringify(body)],
      undefined,
      kubeconfig,
    );

  it("may set its own pod's role label and status annotation, as Patroni does", async () => {
    admitted(
      await patch('pod', 'shop-db-0-0', {
        metadata: {
          labels: { 'scalable.dev/role': 'primary' },
          annotations: { status: '{"role":"primary","state":"running"}' },
        },
      }),
    );
  });

  it('cannot relabel its own pod out of its app or into another', async () => {
    denied(
      await patch('pod', 'shop-db-0-0', { metadata: { labels: { 'scalable.dev/app': 'other' } } }),
      'only its pod',
    );
    denied(
      await patch('pod', 'shop-db-0-0', { metadata: { labels: { 'scalable.dev/app': null } } }),
      'only its pod',
    );
    denied(
      await patch('pod', 'shop-db-0-0', { metadata: { annotations: { other: 'x' } } }),
      'only its pod',
    );
  });

  it('cannot touch another pod, not even a member of its own shard', async () => {
    denied(
      await patch('pod', sibling, { metadata: { labels: { 'scalable.dev/role': 'primary' } } }),
      'only its own pod',
    );
    denied(
      await patch('pod', 'victim', { metadata: { labels: { 'scalable.dev/app': 'shop' } } }),
      'only its own pod',
    );
    // A token not bound to a pod (not what the kubelet mounts) updates no pod at all.
    denied(
      await patch(
        'pod',
        'shop-db-0-0',
        { metadata: { labels: { 'scalable.dev/role': 'replica' } } },
        member,
      ),
      'only its own pod',
    );
  });

  it("writes only its own shards' ConfigMaps, labelled as Patroni labels them", async () => {
    const cm = (name: string, labels: Record<string, string>) =>
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name, namespace: ns, labels, annotations: { leader: 'shop-db-0-0' } },
      });
    const patroni = { 'scalable.dev/database': 'shop', 'scalable.dev/cluster': 'shop-db-0' };
    admitted(await kubectl(['create', '-f', '-'], cm('shop-db-0-leader', patroni), own));
    admitted(
      await patch('configmap', 'shop-db-0-leader', {
        metadata: { annotations: { leader: 'shop-db-0-1' } },
      }),
    );
    denied(
      await kubectl(['create', '-f', '-'], cm('shop-web-config', patroni), own),
      "only its own shards' ConfigMaps",
    );
    denied(
      await kubectl(['create', '-f', '-'], cm('shop-db-0-leader2', patroni), own),
      "only its own shards' ConfigMaps",
    );
    denied(
      await patch('configmap', 'shop-db-0-leader', {
        metadata: { labels: { 'scalable.dev/app': 'other' } },
      }),
      'adds no other label',
    );
    // RBAC already refuses a delete (the policy would too).
    const del = await kubectl(
      ['delete', 'configmap', 'shop-db-0-leader', '-n', ns],
      undefined,
      own,
    );
    expect(del.code).not.toBe(0);
    expect(del.stderr).toMatch(/forbidden|denied request/);
  });
});
