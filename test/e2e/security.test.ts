// Issue 36 on real pods: what an attacker with a pod in another namespace, or in control of a
// database pod, can do once the app runs, and what the operator's ServiceAccount may do. Its
// own namespaces and app; it shares only the cluster (and the operator the chart installed).
// - redis_exporter: its port is closed to other namespaces; from the monitoring namespace
//   /metrics answers and /scrape is not served;
// - the data tiers' egress: a listener on :53 (and on the API server's :443) in another
//   namespace sees no connection from the Redis or Patroni containers, while cluster DNS works;
// - the operator pods' egress: the API server only (a listener, the app's database and web
//   pods see no connection from an operator pod, while the app reconciles);
// - the database pod: the token is in Patroni's container only, and it cannot relabel its pod;
// - the operator's ServiceAccount: kubectl auth can-i, and a server-side dry run in kube-system.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SUITE_LABEL } from './support/app.ts';
import { OPERATOR_NAMESPACE, RELEASE } from './support/cluster.ts';
import { IMAGE_PREFIX, appVersion } from './support/images.ts';
import {
  apply,
  createNamespace,
  eventually,
  getJson,
  kubectl,
  nodeScript,
  sleeperPod,
  waitAppReady,
  waitPodReady,
  type Pod,
} from './support/kube.ts';
import { operatorPods } from './support/operator.ts';
import { binPath } from '../../devcluster/paths.ts';
import { kubeconfig } from './support/kube.ts';

const root = join(import.meta.dirname, '..', '..');
const NS = 'e2e-security';
const ATTACKER = 'e2e-security-attacker';
// The operator's default SCALABLE_MONITORING_NAMESPACES: where Prometheus would run.
const MONITORING = 'monitoring';
const APP = 'vault';
const image = `${IMAGE_PREFIX}/photoshare:${appVersion(root)}`;

/** kubectl that answers instead of throwing: exit code and both streams (`auth can-i` says
 * "no" on stdout with exit code 1). */
function tryKubectl(args: readonly string[], input?: string) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(binPath('kubectl'), ['--kubeconfig', kubeconfig(), ...args], {
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
  });
}

const podIp = async (ns: string, name: string) =>
  (await getJson<Pod>(['get', 'pod', name, '-n', ns])).status.podIP ?? '';

/** HTTP GET from a pod (node's fetch): status and body, or the error's code. */
async function fetchFrom(ns: string, pod: string, url: string) {
  const out = await nodeScript(
    ns,
    pod,
    `try {
       const r = await fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(5000) });
       console.log(JSON.stringify({ status: r.status, body: await r.text() }));
     } catch (e) {
       console.log(JSON.stringify({ error: String(e.cause?.code ?? e.name ?? e) }));
     }`,
  );
  return JSON.parse(out) as { status?: number; body?: string; error?: string };
}

/** A pod that accepts TCP on :53 and :443 and logs every connection and the bytes it gets. */
async function listenerPod(ns: string, name: string): Promise<void> {
  await apply({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels: { 'e2e.scalable.dev/listener': 'true' } },
    spec: {
      terminationGracePeriodSeconds: 1,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 65532,
        seccompProfile: { type: 'RuntimeDefault' },
        // Ports below 1024 for a non-root process (a namespaced, pod-safe sysctl).
        sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }],
      },
      containers: [
        {
          name: 'listener',
          image,
          imagePullPolicy: 'IfNotPresent',
          command: [
            'node',
            '-e',
            `const net = require('node:net');
             // The kubelet's readiness probe gets a port of its own: only 53 and 443 are logged.
             net.createServer((s) => s.destroy()).listen(8081);
             for (const port of [53, 443])
               net.createServer((s) => {
                 console.log('connection on ' + port + ' from ' + s.remoteAddress);
                 s.on('data', (d) => console.log('data on ' + port + ': ' + JSON.stringify(d.toString('latin1'))));
                 s.on('error', () => {});
               }).listen(port, () => console.log('listening on ' + port));`,
          ],
          readinessProbe: { tcpSocket: { port: 8081 }, periodSeconds: 2 },
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        },
      ],
    },
  });
  await waitPodReady(ns, name);
}

/** What the listener saw: its log without the 'listening' lines. */
const listenerLog = async () =>
  (await kubectl(['logs', 'listener', '-n', ATTACKER]))
    .split('\n')
    .filter((l) => l && !l.startsWith('listening'));

describe('security on kind (issue 36)', () => {
  beforeAll(async () => {
    // The suite label: a file timing a failover waits until these are gone (quietCluster).
    for (const ns of [NS, ATTACKER]) await createNamespace(ns, { [SUITE_LABEL]: ns });
    await tryKubectl(['create', 'namespace', MONITORING]);
    await kubectl([
      'create',
      'secret',
      'generic',
      `${APP}-session`,
      '-n',
      NS,
      '--from-literal=secret=e2e-security-session-secret-0123456789',
    ]);
    await apply({
      apiVersion: 'scalable.dev/v1alpha1',
      kind: 'ScalableApp',
      metadata: { name: APP, namespace: NS },
      spec: {
        web: {
          image,
          env: [
            {
              name: 'SESSION_SECRET',
              valueFrom: { secretKeyRef: { name: `${APP}-session`, key: 'secret' } },
            },
          ],
          probes: { readinessPath: '/healthz', livenessPath: '/healthz' },
          autoscaling: { minReplicas: 1, maxReplicas: 1 },
        },
        sessions: {},
        database: { shards: 1, replicasPerShard: 0, shardKey: 'user_id' },
        queue: {
          consumers: [{ name: 'thumbnails', image, stream: 'vault.thumbnails', maxReplicas: 1 }],
        },
      },
    });
    // Everything must still work under the new bounds: Patroni (its token in one container,
    // the admission policy, the API server only at its addresses, verify-full), Redis, DNS.
    await waitAppReady(NS, APP);
    await sleeperPod(ATTACKER, 'attacker', image);
    await sleeperPod(MONITORING, 'prometheus', image);
    await listenerPod(ATTACKER, 'listener');
  });

  afterAll(async () => {
    await tryKubectl(['delete', 'namespace', NS, ATTACKER, '--wait=false']);
    await tryKubectl(['delete', 'pod', 'prometheus', '-n', MONITORING, '--wait=false']);
  });

  it('redis_exporter: refused from another namespace; from the monitoring namespace /metrics answers and /scrape is not served', async () => {
    const ip = await podIp(NS, `${APP}-sessions-0`);
    const scrape = `http://${ip}:9121/scrape?target=${encodeURIComponent('rediss://localhost:6379')}&check-keys=${encodeURIComponent('sess:*')}`;
    for (const url of [scrape, `http://${ip}:9121/metrics`]) {
      const r = await fetchFrom(ATTACKER, 'attacker', url);
      expect(r.status, `${url} from ${ATTACKER}: ${JSON.stringify(r)}`).toBeUndefined();
    }
    const metrics = await fetchFrom(MONITORING, 'prometheus', `http://${ip}:9121/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/^redis_up 1$/m);
    const fromPrometheus = await fetchFrom(MONITORING, 'prometheus', scrape);
    expect(fromPrometheus.status).toBe(404);
    expect(fromPrometheus.body ?? '').not.toContain('sess:');
  });

  it('the data tiers reach DNS only at the cluster DNS, and Patroni the API server only at its addresses: a listener elsewhere sees nothing', async () => {
    const listener = await podIp(ATTACKER, 'listener');
    // The exporter's old trick, by hand: redis-cli from the session store's Redis container.
    await tryKubectl([
      'exec',
      '-n',
      NS,
      `${APP}-sessions-0`,
      '-c',
      'redis',
      '--',
      'timeout',
      '8',
      'redis-cli',
      '-h',
      listener,
      '-p',
      '53',
      'PING',
    ]);
    // From Patroni's container, to :53 and :443 (Python is Patroni's).
    const connect = (port: number) =>
      tryKubectl([
        'exec',
        '-n',
        NS,
        `${APP}-db-0-0`,
        '-c',
        'postgres',
        '--',
        'python3',
        '-c',
        `import socket,sys\ntry:\n  socket.create_connection(('${listener}', ${port}), 5).close(); print('open')\nexcept Exception as e:\n  print(type(e).__name__)`,
      ]);
    const dns = await connect(53);
    const api = await connect(443);
    expect(dns.stdout.trim(), dns.stderr).not.toBe('open');
    expect(api.stdout.trim(), api.stderr).not.toBe('open');
    // The redis-cli and Python attempts above have ended: nothing reached the listener.
    expect(await listenerLog()).toEqual([]);
    // While the cluster's DNS still answers them.
    const resolved = await tryKubectl([
      'exec',
      '-n',
      NS,
      `${APP}-sessions-0`,
      '-c',
      'redis',
      '--',
      'getent',
      'hosts',
      `kubernetes.default.svc`,
    ]);
    expect(resolved.code, resolved.stderr).toBe(0);
    expect(resolved.stdout).toMatch(/^\d+\.\d+\.\d+\.\d+\s/);
  });

  it("the operator pods send to the API server only: a listener and the app's pods see no connection from them", async () => {
    // The app above went Ready under this policy: the operator reconciles through it.
    const policy = await getJson<{
      spec: { egress: { to?: { ipBlock?: { cidr: string } }[] }[] };
    }>(['get', 'networkpolicy', `${RELEASE}-egress`, '-n', OPERATOR_NAMESPACE]);
    // helm install looked the API server's addresses up: not the ports-alone fallback.
    const to = policy.spec.egress.flatMap((r) => r.to ?? []);
    expect(to.length).toBeGreaterThan(0);
    expect(to.every((t) => t.ipBlock?.cidr)).toBe(true);
    const listener = await podIp(ATTACKER, 'listener');
    const web = (
      await getJson<{ items: Pod[] }>(['get', 'pods', '-n', NS, '-l', `scalable.dev/tier=web`])
    ).items[0];
    const db = await podIp(NS, `${APP}-db-0-0`);
    const targets: [string, number][] = [
      [listener, 443],
      [listener, 53],
      [db, 5432],
      ...(web?.status.podIP ? [[web.status.podIP, 8080] as [string, number]] : []),
    ];
    const operator = (await operatorPods())[0]?.metadata.name;
    if (!operator) throw new Error('no operator pod');
    const out = await tryKubectl([
      'exec',
      '-n',
      OPERATOR_NAMESPACE,
      operator,
      '-c',
      'operator',
      '--',
      'node',
      '-e',
      `const net = require('node:net');
       const one = ([host, port]) => new Promise((resolve) => {
         const s = net.connect({ host, port, timeout: 5000 });
         s.on('connect', () => { s.destroy(); resolve(host + ':' + port + ' open'); });
         s.on('timeout', () => { s.destroy(); resolve(host + ':' + port + ' timeout'); });
         s.on('error', (e) => resolve(host + ':' + port + ' ' + e.code));
       });
       Promise.all(${JSON.stringify(targets)}.map(one)).then((r) => console.log(r.join('\\n')));`,
    ]);
    expect(out.code, out.stderr).toBe(0);
    const results = out.stdout.trim().split('\n');
    expect(results).toHaveLength(targets.length);
    for (const r of results) expect(r).not.toMatch(/ open$/);
    expect(await listenerLog()).toEqual([]);
    // The same reach from the app's pod is open (the targets are up): the policy refused them.
    const fromWeb = await tryKubectl([
      'exec',
      '-n',
      NS,
      web?.metadata.name ?? '',
      '--',
      'node',
      '-e',
      `const s = require('node:net').connect({ host: ${JSON.stringify(db)}, port: 5432, timeout: 5000 });
       s.on('connect', () => { console.log('open'); s.destroy(); });
       s.on('timeout', () => { console.log('timeout'); s.destroy(); });
       s.on('error', (e) => console.log(e.code));`,
    ]);
    expect(fromWeb.stdout.trim(), fromWeb.stderr).toBe('open');
  });

  it("the database pod: the token is in Patroni's container only, and it cannot relabel its pod", async () => {
    const pod = `${APP}-db-0-0`;
    const token = '/var/run/secrets/kubernetes.io/serviceaccount/token';
    const inExporter = await tryKubectl([
      'exec',
      '-n',
      NS,
      pod,
      '-c',
      'exporter',
      '--',
      'cat',
      token,
    ]);
    expect(inExporter.code, 'the exporter sidecar reads a token').not.toBe(0);
    const patch = (labels: Record<string, string>, dryRun = false) =>
      tryKubectl([
        'exec',
        '-n',
        NS,
        pod,
        '-c',
        'postgres',
        '--',
        'python3',
        '-c',
        [
          'import json, ssl, urllib.request',
          `t = open('${token}').read()`,
          "ctx = ssl.create_default_context(cafile='/var/run/secrets/kubernetes.io/serviceaccount/ca.crt')",
          `body = json.dumps({'metadata': {'labels': ${JSON.stringify(labels)}}}).encode()`,
          `r = urllib.request.Request('https://kubernetes.default.svc/api/v1/namespaces/${NS}/pods/${pod}${dryRun ? '?dryRun=All' : ''}', data=body, method='PATCH', headers={'Authorization': 'Bearer ' + t, 'Content-Type': 'application/merge-patch+json'})`,
          'try:',
          '  print(urllib.request.urlopen(r, context=ctx).status)',
          'except urllib.error.HTTPError as e:',
          "  print(e.code, json.loads(e.read()).get('message', ''))",
        ].join('\n'),
      ]);
    // A binding takes effect some time after it is created: wait (dry runs, no side effect)
    // until the policy refuses what it exists to refuse, then look at everything else.
    await eventually(
      'the Patroni admission policy in force',
      async () =>
        /^403 /.test((await patch({ 'scalable.dev/app': 'shop' }, true)).stdout) ? true : undefined,
      120_000,
      2000,
    );
    const role = (await getJson<Pod>(['get', 'pod', pod, '-n', NS])).metadata.labels?.[
      'scalable.dev/role'
    ];
    // What Patroni does: its own role label (here to the value it has).
    const own = await patch({ 'scalable.dev/role': role ?? 'primary' });
    expect(own.stdout.trim(), own.stderr).toBe('200');
    const foreign: Record<string, string>[] = [
      { 'scalable.dev/app': 'shop' },
      { 'scalable.dev/tier': 'web' },
    ];
    for (const labels of foreign) {
      const out = await patch(labels);
      expect(out.stdout, JSON.stringify(labels)).toMatch(
        /^403 .*may change only its pod's scalable\.dev\/role label/,
      );
    }
    const after = await getJson<Pod>(['get', 'pod', pod, '-n', NS]);
    expect(after.metadata.labels?.['scalable.dev/app']).toBe(APP);
  });

  it("the operator's ServiceAccount: none of Patroni's rights, and no write in kube-system", async () => {
    const sa = `system:serviceaccount:${OPERATOR_NAMESPACE}:${RELEASE}`;
    const canI = async (...args: string[]) =>
      (await tryKubectl(['auth', 'can-i', `--as=${sa}`, ...args])).stdout.trim();
    for (const verb of ['update', 'patch', 'get'])
      expect(await canI(verb, 'pods', '-A'), verb).toBe('no');
    expect(await canI('update', 'configmaps', '-A')).toBe('no');
    expect(await canI('create', 'roles', '-A')).toBe('no');
    expect(await canI('bind', `clusterroles/${RELEASE}-patroni`, '-n', NS)).toBe('yes');
    expect(await canI('bind', 'clusterroles/cluster-admin', '-n', NS)).toBe('no');
    // RBAC lets it delete Deployments anywhere (a ClusterRole); the admission policy not in
    // kube-system. A binding takes effect some time after it is created: wait for the refusal
    // (a server-side dry run: nothing happens either way) before the other cases.
    expect(await canI('delete', 'deployments', '-n', 'kube-system')).toBe('yes');
    const del = await eventually(
      'the operator admission policy in force',
      async () => {
        const r = await tryKubectl([
          'delete',
          'deployment',
          'coredns',
          '-n',
          'kube-system',
          `--as=${sa}`,
          '--dry-run=server',
        ]);
        return r.code !== 0 ? r : undefined;
      },
      120_000,
      2000,
    );
    expect(del.stderr).toContain('never in kube-system');
    const cm = await tryKubectl(
      ['create', '-f', '-', `--as=${sa}`, '--dry-run=server'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'kubernetes.io/service-account-token',
        metadata: {
          name: `${APP}-token`,
          namespace: NS,
          labels: { 'scalable.dev/app': APP },
          annotations: { 'kubernetes.io/service-account.name': 'default' },
        },
      }),
    );
    expect(cm.code).not.toBe(0);
    expect(cm.stderr).toContain('never a ServiceAccount token');
    await eventually('the app still Ready', async () =>
      (
        await getJson<{ status?: { conditions?: { type: string; status: string }[] } }>([
          'get',
          'scalableapp',
          APP,
          '-n',
          NS,
        ])
      ).status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')
        ? true
        : undefined,
    );
  });
});
