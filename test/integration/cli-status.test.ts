// `scalable status` as a user runs it: the real CLI (bin/scalable.js, and through kubectl as
// the plugin `kubectl scalable`) as a child process against the embedded control plane, on an
// app the operator reconciled. kwok runs no Patroni: the test labels and annotates the
// database pods and writes the `-sync` key as Patroni does (see operator-fast-failover).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, printLogDirOnFailure, uniqueName } from '../../devcluster/testing.ts';
import { binPath } from '../../devcluster/paths.ts';
import type { StatusDocument } from '../../operator/cli/status/model.ts';
import type { KubeClient } from '../../operator/runtime/kube-client.ts';
import {
  applyAs,
  closeSuite,
  conditionOf,
  getApp,
  getObj,
  kindInfo,
  kubeconfig,
  mergePatch,
  openSuite,
  scalableApp,
  startOperator,
} from './operator-harness.ts';
import type { Json, OperatorProcess } from './operator-harness.ts';
import { freePort } from './operator-process.ts';

const REPO = join(import.meta.dirname, '..', '..');
const BIN = join(REPO, 'bin', 'scalable.js');
const ns = uniqueName('cli-status');
const POD = kindInfo('v1', 'Pod');
let client: KubeClient;
let op: OperatorProcess;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `file args` to its end with the test cluster's kubeconfig (unless env says another). */
function run(
  file: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: tmpdir(), // not the repo: the CLI must not depend on the working directory
      env: { ...process.env, KUBECONFIG: kubeconfig(), NO_COLOR: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
const scalable = (args: readonly string[], env: Record<string, string> = {}) =>
  run(process.execPath, [BIN, ...args], env);

const status = async (args: readonly string[] = [], env: Record<string, string> = {}) => {
  const r = await scalable(['status', 'shop', '-n', ns, '-o', 'json', ...args], env);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as StatusDocument;
};

/** Whitespace collapsed: column widths are the text view's business. */
const linesOf = (text: string) => text.split('\n').map((l) => l.replace(/\s+/g, ' ').trim());

const groupOf = (doc: StatusDocument, tier: string, name: string) => {
  const g = doc.tiers.find((t) => t.tier === tier)?.groups.find((x) => x.name === name);
  if (!g) throw new Error(`no ${tier}/${name} in ${JSON.stringify(doc.tiers, null, 1)}`);
  return g;
};

/** As Patroni: the role label and the member status it publishes on its pod. */
async function patroniMember(pod: string, role: 'master' | 'replica', xlog?: number) {
  await eventually(`pod ${pod}`, () => getObj(client, POD, ns, pod), 180_000);
  await mergePatch(client, POD, ns, pod, {
    metadata: {
      labels: { 'scalable.dev/role': role },
      annotations: {
        status: JSON.stringify({
          conn_url: `postgres://${pod}:5432/postgres`,
          api_url: `https://${pod}:8008/patroni`,
          state: 'running',
          role: role === 'master' ? 'primary' : 'replica',
          ...(xlog !== undefined ? { xlog_location: xlog } : {}),
          ...(role === 'replica' ? { replication_state: 'streaming' } : {}),
          timeline: 1,
        }),
      },
    },
  });
}

/** A kubeconfig for a ServiceAccount that may read the app's objects in `ns`, but no node. */
async function readOnlyKubeconfig(name: string): Promise<string> {
  const post = (path: string, resource: string, body: Json) =>
    client.request<Json>('POST', path, { verb: 'create', resource, body });
  await post(`/api/v1/namespaces/${ns}/serviceaccounts`, 'serviceaccounts', {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name, namespace: ns },
  });
  const rbac = `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}`;
  const read = ['get', 'list'];
  await post(`${rbac}/roles`, 'roles', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name, namespace: ns },
    rules: [
      { apiGroups: [''], resources: ['pods', 'configmaps', 'services'], verbs: read },
      { apiGroups: ['networking.k8s.io'], resources: ['ingresses'], verbs: read },
      { apiGroups: ['gateway.networking.k8s.io'], resources: ['httproutes'], verbs: read },
      { apiGroups: ['scalable.dev'], resources: ['scalableapps'], verbs: read },
    ],
  });
  await post(`${rbac}/rolebindings`, 'rolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name, namespace: ns },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
    subjects: [{ kind: 'ServiceAccount', name, namespace: ns }],
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
  return writeKubeconfig({ token: String((tr['status'] as Json)['token']) });
}

/** The admin kubeconfig with another user or server. */
function writeKubeconfig(change: { token?: string; server?: string }): string {
  const doc = yaml.load(readFileSync(kubeconfig(), 'utf8')) as Json;
  const cluster = ((doc['clusters'] as Json[])[0] as Json)['cluster'] as Json;
  if (change.server) cluster['server'] = change.server;
  if (change.token) {
    doc['users'] = [{ name: 'u', user: { token: change.token } }];
    for (const c of doc['contexts'] as Json[]) (c['context'] as Json)['user'] = 'u';
  }
  const path = join(mkdtempSync(join(tmpdir(), 'scalable-status-')), 'kubeconfig');
  writeFileSync(path, yaml.dump(doc), { mode: 0o600 });
  return path;
}

beforeAll(async () => {
  client = await openSuite(ns);
  op = await startOperator({ SCALABLE_LEASE_NAME: uniqueName('lease-status') });
  await applyAs(
    client,
    'test-user',
    scalableApp(ns, 'shop', {
      web: { image: 'ghcr.io/acme/shop:1', autoscaling: { minReplicas: 2, maxReplicas: 3 } },
      ingress: { host: 'shop.example.test', tls: { secretName: 'shop-tls' } },
      cache: { replicas: 1 },
      sessions: {},
      database: {
        shards: 2,
        shardKey: 'tenant_id',
        replicasPerShard: 2,
        synchronous: true,
        storage: { size: '1Gi' },
      },
    }),
  );
});

afterAll(() => closeSuite(client, { operators: [op], namespaces: [ns] }));

describe('scalable status against a cluster', () => {
  printLogDirOnFailure();

  it('before Patroni leads: no primary, and the thing to do next', async () => {
    await eventually(
      'DatabaseReady: NoPrimary',
      async () => {
        const c = conditionOf(await getApp(client, ns, 'shop'), 'DatabaseReady');
        return c?.['reason'] === 'NoPrimary' ? c : undefined;
      },
      180_000,
    );
    const r = await scalable(['status', 'shop', '-n', ns]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = linesOf(r.stdout);
    expect(lines[0]).toMatch(new RegExp(`^ScalableApp ${ns}/shop not Ready`));
    expect(lines).toContain('├─ shop-db-0 shard 0: no primary');
    expect(
      lines.some((l) => l.startsWith('✗ DatabaseReady False NoPrimary: no ready primary')),
    ).toBe(true);
    expect(lines).toContain(
      `next: kubectl -n ${ns} exec shop-db-<shard>-0 -c postgres -- patronictl -c /etc/patroni/patroni.yml list shows why no member holds the lock; then docs/runbooks.md, ScalableDatabaseNoPrimary`,
    );
    // Not a terminal: no colour.
    expect(r.stdout).not.toContain('\x1b[');
  });

  it('shows roles, zones, lag, the shard map and URLs, in text and as JSON', async () => {
    // Shard 0: primary 0 (its WAL at 50331808), synchronous standby 1, replica 2 160 B behind.
    await patroniMember('shop-db-0-0', 'master', 50_331_808);
    await patroniMember('shop-db-0-1', 'replica', 50_331_808);
    await patroniMember('shop-db-0-2', 'replica', 50_331_648);
    await applyAs(client, 'patroni', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'shop-db-0-sync',
        namespace: ns,
        labels: { 'scalable.dev/database': 'shop', 'scalable.dev/cluster': 'shop-db-0' },
        annotations: { leader: 'shop-db-0-0', sync_standby: 'shop-db-0-1' },
      },
    });
    // Shard 1: a replica that published no WAL position (lag unknown), one level with it.
    await patroniMember('shop-db-1-0', 'master', 1000);
    await patroniMember('shop-db-1-1', 'replica');
    await patroniMember('shop-db-1-2', 'replica', 1000);
    // Every tier ready (web at its 2 pods, the Sentinels up): the world holds still.
    await eventually(
      'Ready (DatabaseReady: ShardsReady)',
      async () => {
        const got = await getApp(client, ns, 'shop');
        const db = conditionOf(got, 'DatabaseReady');
        return db?.['reason'] === 'ShardsReady' && conditionOf(got, 'Ready')?.['status'] === 'True'
          ? db
          : undefined;
      },
      240_000,
    );

    const doc = await status();
    expect(doc.app).toMatchObject({ namespace: ns, name: 'shop' });
    expect(doc.ready).toBe('True');
    expect(doc.tiers.map((t) => t.tier)).toEqual(['web', 'cache', 'sessions', 'database']);
    const pods = doc.tiers.flatMap((t) => t.groups.flatMap((g) => g.pods));
    expect(pods.length).toBe(2 + 2 + 3 + 1 + 6);
    for (const p of pods) {
      // kwok's nodes are kwok-<zone>, labelled with their zone.
      expect(p.node, p.name).toMatch(/^kwok-zone-[abc]$/);
      expect(p.zone, p.name).toBe(p.node?.replace(/^kwok-/, ''));
    }
    const s0 = groupOf(doc, 'database', 'shop-db-0');
    expect(s0.shard).toEqual({ index: 0, primary: 'shop-db-0-0', syncStandbys: ['shop-db-0-1'] });
    expect(s0.pods.map((p) => [p.name, p.role, p.lagBytes])).toEqual([
      ['shop-db-0-0', 'primary', undefined],
      ['shop-db-0-1', 'sync-standby', 0],
      ['shop-db-0-2', 'replica', 160],
    ]);
    const s1 = groupOf(doc, 'database', 'shop-db-1');
    expect(s1.pods.map((p) => [p.name, p.role, p.lagBytes])).toEqual([
      ['shop-db-1-0', 'primary', undefined],
      ['shop-db-1-1', 'replica', null],
      ['shop-db-1-2', 'replica', 0],
    ]);
    expect(groupOf(doc, 'cache', 'shop-cache')).toMatchObject({
      master: null,
      sentinelMasterName: 'shop-cache',
    });
    expect(groupOf(doc, 'cache', 'shop-cache-sentinel').pods).toHaveLength(3);
    expect(groupOf(doc, 'sessions', 'shop-sessions').master).toBe('shop-sessions-0');
    expect(doc.urls).toEqual([
      { url: 'https://shop.example.test/static', via: 'Ingress shop-static' },
      { url: 'https://shop.example.test/', via: 'Ingress shop-web' },
    ]);
    expect(doc.shardMap?.perShard.map((s) => s.shard)).toEqual([0, 1]);
    expect(doc.shardMap?.perShard.reduce((n, s) => n + s.buckets, 0)).toBe(doc.shardMap?.buckets);
    expect(doc.shardMap?.move).toBeNull();
    expect(doc.conditions.find((c) => c.type === 'DatabaseReady')).toMatchObject({
      status: 'True',
      reason: 'ShardsReady',
      problem: false,
      next: null,
    });
    expect(doc.notes).toEqual([]);

    const text = await scalable(['status', 'shop', '-n', ns]);
    expect(text.code).toBe(0);
    const lines = linesOf(text.stdout);
    const zone = (pod: string) => pods.find((p) => p.name === pod)?.zone;
    expect(lines).toContain('├─ shop-db-0 shard 0: primary shop-db-0-0, sync standby shop-db-0-1');
    expect(lines).toContain(
      `│ ├─ shop-db-0-1 sync standby ready kwok-${zone('shop-db-0-1')} zone ${zone('shop-db-0-1')} lag 0 B`,
    );
    expect(lines).toContain(
      `│ └─ shop-db-0-2 replica ready kwok-${zone('shop-db-0-2')} zone ${zone('shop-db-0-2')} lag 160 B`,
    );
    expect(lines).toContain(
      `├─ shop-db-1-1 replica ready kwok-${zone('shop-db-1-1')} zone ${zone('shop-db-1-1')} lag unknown`,
    );
    expect(lines).toContain(
      '├─ shop-cache master known to Sentinel only (SENTINEL get-master-addr-by-name shop-cache)',
    );
    expect(lines).toContain('https://shop.example.test/ Ingress shop-web');

    const diagram = await scalable(['diagram', 'shop', '-n', ns]);
    expect(diagram.stderr).toBe('');
    expect(diagram.code).toBe(0);
    const mermaid = linesOf(diagram.stdout);
    expect(mermaid[0]).toBe('flowchart LR');
    expect(mermaid).toContain('lb --> tier_web');
    expect(mermaid).toContain('tier_web --> tier_database');
    expect(mermaid).toContain('pod_shop_db_0_0 -->|sync| pod_shop_db_0_1');
    expect(mermaid).toContain('pod_shop_db_0_0 -->|async| pod_shop_db_0_2');
    expect(mermaid).toContain(
      `pod_shop_db_0_2["shop-db-0-2<br/>replica, ${zone('shop-db-0-2')}<br/>lag 160 B"]`,
    );
  });

  it('is the kubectl plugin `kubectl scalable` when on PATH as kubectl-scalable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scalable-plugin-'));
    symlinkSync(BIN, join(dir, 'kubectl-scalable'));
    const path = [dir, dirname(process.execPath), process.env['PATH'] ?? ''].join(delimiter);
    const list = await run(binPath('kubectl'), ['plugin', 'list'], { PATH: path });
    expect(list.stdout).toContain(join(dir, 'kubectl-scalable'));
    const r = await run(
      binPath('kubectl'),
      ['scalable', 'status', 'shop', '-n', ns, '-o', 'json'],
      {
        PATH: path,
      },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as StatusDocument;
    expect(groupOf(doc, 'database', 'shop-db-0').shard?.primary).toBe('shop-db-0-0');
  });

  it('says zone unknown, and no more, to a user who may not read nodes', async () => {
    const restricted = await readOnlyKubeconfig('status-reader');
    const doc = await status([], { KUBECONFIG: restricted });
    const pods = doc.tiers.flatMap((t) => t.groups.flatMap((g) => g.pods));
    expect(pods.length).toBe(14);
    expect(pods.every((p) => p.node !== null && p.zone === null)).toBe(true);
    expect(doc.notes).toEqual([
      'zone unknown: nodes are not readable with these credentials (403)',
    ]);
    expect(groupOf(doc, 'database', 'shop-db-0').shard?.syncStandbys).toEqual(['shop-db-0-1']);
    const text = await scalable(['status', 'shop', '-n', ns], { KUBECONFIG: restricted });
    expect(text.code).toBe(0);
    expect(linesOf(text.stdout)).toContain(
      'zone unknown: nodes are not readable with these credentials (403)',
    );
  });

  it('exits 1 naming an unknown app, or the address of an unreachable server', async () => {
    expect(await scalable(['status', 'nope', '-n', ns])).toEqual({
      code: 1,
      stdout: '',
      stderr: `scalableapp ${ns}/nope not found\n`,
    });
    const port = await freePort(); // nothing listens there
    const nowhere = writeKubeconfig({ server: `https://127.0.0.1:${port}` });
    const r = await scalable(['status', 'shop', '-n', ns], { KUBECONFIG: nowhere });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(
      `cannot reach the Kubernetes API server at https://127.0.0.1:${port}`,
    );
  });

  it('--watch prints again when a pod changes and ends with exit 0 on Ctrl-C', async () => {
    const child = spawn(
      process.execPath,
      [BIN, 'status', 'shop', '-n', ns, '-o', 'json', '--watch'],
      {
        env: { ...process.env, KUBECONFIG: kubeconfig() },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<[number | null, string | null]>((resolve) =>
      child.on('exit', (code, signal) => resolve([code, signal])),
    );
    try {
      const lagOf = (line: string) =>
        (JSON.parse(line) as StatusDocument).tiers
          .flatMap((t) => t.groups.flatMap((g) => g.pods))
          .find((p) => p.name === 'shop-db-0-2')?.lagBytes;
      const docs = () => stdout.split('\n').filter((l) => l !== '');
      await eventually(
        'the first document',
        async () => (docs().length > 0 ? true : undefined),
        60_000,
      );
      expect(lagOf(docs()[0] as string)).toBe(160);
      await patroniMember('shop-db-0-2', 'replica', 50_331_808 - 4096);
      await eventually(
        'a document with the new lag',
        async () => (docs().some((l) => lagOf(l) === 4096) ? true : undefined),
        60_000,
      );
      // Printed again on a change only: every document differs from the one before it.
      const all = docs();
      expect(new Set(all).size).toBe(all.length);
      child.kill('SIGINT');
      expect(await exited).toEqual([0, null]);
      expect(stderr).toBe('');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});
