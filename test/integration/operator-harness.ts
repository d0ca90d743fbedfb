// The operator as a separate process against the test cluster, plus the few reads the
// operator suites assert on. Tests check the world (objects, status, leases), not calls.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import yaml from 'js-yaml';
import {
  OPERATOR_RULES,
  clusterRole,
  leaderElectionRole,
  namespacedRole,
} from '../../operator/rbac.ts';
import type { PolicyRule } from '../../operator/rbac.ts';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeClient, isNotFound } from '../../operator/runtime/kube-client.ts';
import { mutatingRequests, startOperatorProcess, sumMetric } from './operator-process.ts';
import type { OperatorProcess } from './operator-process.ts';
import { installCrd, kubectl } from '../../operator/runtime/embedded.ts';
import { APP_KIND, kindOf, pathOf } from '../../operator/reconcile/kinds.ts';
import type { KindInfo } from '../../operator/reconcile/kinds.ts';
import { testKubeconfig } from '../../devcluster/testing.ts';
import { readState } from '../../devcluster/cluster.ts';
import { clusterDir } from '../../devcluster/paths.ts';
import { startProcess, stopProcess } from '../../devcluster/processes.ts';

export type Json = Record<string, unknown>;

export const kubeconfig = (): string => testKubeconfig();

export { installCrd, kubectl, mutatingRequests, sumMetric };
export type { OperatorProcess };

export async function apiClient(): Promise<KubeClient> {
  return KubeClient.load(kubeconfig());
}

export async function startOperator(
  env: Record<string, string> = {},
  kubeconfigPath: string = kubeconfig(),
): Promise<OperatorProcess> {
  return startOperatorProcess(kubeconfigPath, { LOG_LEVEL: 'debug', ...env });
}

/**
 * A test file's start on the shared API server: the CRD installed (the suites before may
 * have replaced it), an admin client, the file's namespaces created.
 */
export async function openSuite(...namespaces: readonly string[]): Promise<KubeClient> {
  await installCrd(kubeconfig());
  const client = await apiClient();
  for (const ns of namespaces) await createNamespace(client, ns);
  return client;
}

/** What an operator started by startOperatorAs holds and leads on (rbacKubeconfig's options). */
export interface OperatorIdentity {
  /** SCALABLE_LEASE_NAME; unset: the operator's default Lease. */
  readonly lease?: string;
  readonly watchNamespaces?: readonly string[];
  readonly rules?: readonly PolicyRule[];
  readonly operatorNamespace?: string;
}

/**
 * The operator as a ServiceAccount `identity` bound to exactly operator/rbac.ts's rules (see
 * rbacKubeconfig), with `env` on top; closeSuite deletes the identity.
 */
export async function startOperatorAs(
  client: KubeClient,
  identity: string,
  opts: OperatorIdentity = {},
  env: Record<string, string> = {},
): Promise<OperatorProcess> {
  const { lease, watchNamespaces, rules, operatorNamespace } = opts;
  return startOperator(
    { ...(lease ? { SCALABLE_LEASE_NAME: lease } : {}), ...env },
    await rbacKubeconfig(client, identity, lease, watchNamespaces, rules, operatorNamespace),
  );
}

/**
 * A test file's end: its operators stopped (SIGTERM), its namespaces and operator identities
 * deleted, the client closed. Safe after a beforeAll that failed half way.
 */
export async function closeSuite(
  client: KubeClient | undefined,
  owned: {
    readonly operators?: readonly (OperatorProcess | undefined)[];
    readonly namespaces?: readonly string[];
    readonly identities?: readonly string[];
  },
): Promise<void> {
  for (const op of owned.operators ?? []) await op?.stop('SIGTERM');
  if (!client) return;
  for (const ns of owned.namespaces ?? []) await deleteNamespace(client, ns);
  for (const id of owned.identities ?? []) await deleteRbac(client, id);
  client.close();
}

export async function getObj(
  client: KubeClient,
  info: KindInfo,
  ns: string,
  name: string,
): Promise<Json | undefined> {
  try {
    return await client.request<Json>('GET', pathOf(info, ns, name), {
      verb: 'get',
      resource: info.plural,
    });
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export const getApp = (client: KubeClient, ns: string, name: string) =>
  getObj(client, APP_KIND, ns, name);

export function kindInfo(apiVersion: string, kind: string): KindInfo {
  const info = kindOf(apiVersion, kind);
  if (!info) throw new Error(`unknown kind ${apiVersion} ${kind}`);
  return info;
}

export async function createNamespace(client: KubeClient, name: string): Promise<void> {
  await client.request('POST', '/api/v1/namespaces', {
    verb: 'create',
    resource: 'namespaces',
    body: {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } },
    },
  });
}

export async function deleteNamespace(client: KubeClient, name: string): Promise<void> {
  await client
    .request('DELETE', `/api/v1/namespaces/${name}`, { verb: 'delete', resource: 'namespaces' })
    .catch(() => undefined);
}

/** Server-side apply as a user would (field manager kubectl-like, not the operator's). */
export async function applyAs(client: KubeClient, manager: string, obj: Json): Promise<Json> {
  const meta = obj['metadata'] as Json;
  const info =
    obj['kind'] === 'ScalableApp'
      ? APP_KIND
      : kindInfo(String(obj['apiVersion']), String(obj['kind']));
  return client.request<Json>(
    'PATCH',
    pathOf(info, String(meta['namespace']), String(meta['name'])),
    {
      verb: 'apply',
      resource: info.plural,
      query: { fieldManager: manager, force: true },
      contentType: 'application/apply-patch+yaml',
      body: obj,
    },
  );
}

export async function mergePatch(
  client: KubeClient,
  info: KindInfo,
  ns: string,
  name: string,
  patch: Json,
  manager = 'hand-edit',
): Promise<Json> {
  return client.request<Json>('PATCH', pathOf(info, ns, name), {
    verb: 'patch',
    resource: info.plural,
    query: { fieldManager: manager },
    contentType: 'application/merge-patch+json',
    body: patch,
  });
}

export function conditionOf(app: Json | undefined, type: string): Json | undefined {
  const conds = ((app?.['status'] as Json | undefined)?.['conditions'] ?? []) as Json[];
  return conds.find((c) => c['type'] === type);
}

export function scalableApp(ns: string, name: string, spec: Json): Json {
  return {
    apiVersion: 'scalable.dev/v1alpha1',
    kind: 'ScalableApp',
    metadata: { name, namespace: ns },
    spec,
  };
}

/**
 * Stops the test cluster's kube-apiserver, waits downMs, starts it again with the same
 * command line, and waits until it is ready. The devcluster state file is updated so the
 * cluster can still be stopped (and reused) afterwards.
 */
export async function restartApiServer(downMs: number): Promise<void> {
  const state = await readState();
  const proc = state?.processes.find((p) => p.name === 'kube-apiserver');
  if (!state || !proc) throw new Error('no devcluster state with a kube-apiserver');
  const args = readFileSync(`/proc/${proc.pid}/cmdline`, 'utf8')
    .split('\0')
    .filter(Boolean)
    .slice(1);
  await stopProcess(proc);
  await sleep(downMs);
  const started = startProcess(
    'kube-apiserver',
    proc.bin,
    args,
    join(state.logDir, 'kube-apiserver.log'),
  );
  state.processes = state.processes.map((p) => (p.name === 'kube-apiserver' ? started : p));
  writeFileSync(join(clusterDir(), 'state.json'), JSON.stringify(state, null, 2) + '\n');
  const client = await apiClient();
  try {
    const deadline = Date.now() + 90_000;
    for (;;) {
      try {
        await client.request('GET', '/readyz', {
          verb: 'get',
          resource: 'readyz',
          timeoutMs: 2_000,
        });
        return;
      } catch {
        if (Date.now() > deadline) throw new Error('kube-apiserver not ready 90s after restart');
        await sleep(250);
      }
    }
  } finally {
    client.close();
  }
}

/**
 * A kubeconfig for a ServiceAccount bound to exactly the ClusterRole of operator/rbac.ts: an
 * operator started with it proves the RBAC written down is enough (and nothing is a wildcard).
 */
export async function rbacKubeconfig(
  client: KubeClient,
  name: string,
  /** SCALABLE_LEASE_NAME of the operator: its Role reaches that Lease only. */
  lease = 'scalable-operator',
  /** Watch-namespaces mode: the rules as a Role in each of these, nothing cluster-wide. */
  watchNamespaces?: readonly string[],
  /** The operator's rules (default operator/rbac.ts's): a test may withhold some. */
  rules: readonly PolicyRule[] = OPERATOR_RULES,
  /** POD_NAMESPACE of the operator: its Lease and CA Secret (the Role) live there. */
  operatorNamespace = 'default',
): Promise<string> {
  // The ServiceAccount stays in default: the devcluster audits that namespace's accounts.
  const ns = 'default';
  const post = (path: string, resource: string, body: Json) =>
    client.request<Json>('POST', path, { verb: 'create', resource, body });
  await post(`/api/v1/namespaces/${ns}/serviceaccounts`, 'serviceaccounts', {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name, namespace: ns },
  });
  const subjects = [{ kind: 'ServiceAccount', name, namespace: ns }];
  if (watchNamespaces === undefined) {
    await post('/apis/rbac.authorization.k8s.io/v1/clusterroles', 'clusterroles', {
      ...clusterRole(name),
      rules,
    });
    await post('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', 'clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects,
    });
  } else {
    for (const watched of watchNamespaces) {
      const path = `/apis/rbac.authorization.k8s.io/v1/namespaces/${watched}`;
      await post(`${path}/roles`, 'roles', { ...namespacedRole(name, watched), rules });
      await post(`${path}/rolebindings`, 'rolebindings', {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name, namespace: watched },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
        subjects,
      });
    }
  }
  // The Lease lives in the operator's namespace (POD_NAMESPACE, default unless given).
  const rbacNs = `/apis/rbac.authorization.k8s.io/v1/namespaces/${operatorNamespace}`;
  const leaseRole = `${name}-lease`;
  await post(`${rbacNs}/roles`, 'roles', leaderElectionRole(leaseRole, operatorNamespace, lease));
  await post(`${rbacNs}/rolebindings`, 'rolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: leaseRole, namespace: operatorNamespace },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: leaseRole },
    subjects,
  });
  const tr = await post(
    `/api/v1/namespaces/${ns}/serviceaccounts/${name}/token`,
    'serviceaccounts/token',
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds: 3600 },
    },
  );
  const token = String((tr['status'] as Json)['token']);
  const admin = yaml.load(readFileSync(kubeconfig(), 'utf8')) as Json;
  const cluster = ((admin['clusters'] as Json[])[0] as Json)['cluster'] as Json;
  const path = join(mkdtempSync(join(tmpdir(), 'scalable-rbac-')), 'kubeconfig');
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster }],
    users: [{ name, user: { token } }],
    contexts: [{ name: 'c', context: { cluster: 'c', user: name } }],
    'current-context': 'c',
  };
  writeFileSync(path, yaml.dump(doc), { mode: 0o600 });
  return path;
}

export async function deleteRbac(client: KubeClient, name: string): Promise<void> {
  const del = (path: string, resource: string) =>
    client.request('DELETE', path, { verb: 'delete', resource }).catch(() => undefined);
  await del(
    `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${name}`,
    'clusterrolebindings',
  );
  await del(`/apis/rbac.authorization.k8s.io/v1/clusterroles/${name}`, 'clusterroles');
  await del(
    `/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings/${name}-lease`,
    'rolebindings',
  );
  await del(`/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles/${name}-lease`, 'roles');
  await del(`/api/v1/namespaces/default/serviceaccounts/${name}`, 'serviceaccounts');
}
