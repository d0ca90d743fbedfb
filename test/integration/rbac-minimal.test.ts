// operator/rbac.ts's rules are sufficient and minimal, in both modes: an operator bound to
// exactly those rules (a ClusterRole, or in watch-namespaces mode a Role in the watched
// namespace) and its leader-election Role is driven through every path that needs a right:
// every tier on, a certificate renewal, a database rollout (the operator deletes the outdated
// pod itself), every tier and feature switched off again (prunes), the app deleted with
// deletionPolicy Delete (data clean-up), and cert-manager's kinds created and pruned. Then
// the API server's audit log, filtered to that operator's ServiceAccount and the time since
// its describe began, must show every (group, resource, verb) of its own rules used at least
// once (in the Role's namespace, by the Role's resourceNames), and no request refused (403).
// Rights held only to grant them to Patroni (GRANT_ONLY_RULES: bind on its ClusterRole) are
// exempt, and so is pods/exec (KUBELET_ONLY_RULES: no kubelet here to run a command). The
// chart's admission policy for the operator (operator/admission.ts) is in force for
// this identity throughout: "none refused" covers it too (its denials are 403 Forbidden).
import { X509Certificate, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eventually, printLogDirOnFailure, uniqueName } from '../../devcluster/testing.ts';
import { CA_SECRET_NAME } from '../../operator/reconcile/certificates.ts';
import { APP_KIND, pathOf } from '../../operator/reconcile/kinds.ts';
import type { KubeClient } from '../../operator/runtime/kube-client.ts';
import { bindingOf, defaultPolicyNames, operatorPolicy } from '../../operator/admission.ts';
import {
  GRANT_ONLY_RULES,
  KUBELET_ONLY_RULES,
  OPERATOR_RULES,
  leaderElectionRules,
} from '../../operator/rbac.ts';
import {
  DATABASE_LABEL,
  PRIMARY_ROLE,
  ROLE_LABEL,
  SCOPE_LABEL,
} from '../../operator/tiers/database/names.ts';
import { issueServerCert } from '../../operator/tiers/shared/tls/x509.ts';
import { installCertManagerCrds, removeCertManagerCrds } from './cert-manager.ts';
import {
  applyAs,
  createNamespace,
  deleteNamespace,
  deleteRbac,
  getApp,
  getObj,
  kindInfo,
  mergePatch,
  openSuite,
  rbacKubeconfig,
  scalableApp,
  startOperator,
} from './operator-harness.ts';
import type { Json, OperatorProcess } from './operator-harness.ts';
import {
  describePair,
  describeRequest,
  eventsOf,
  readAuditLog,
  refused,
  ruleUse,
  serviceAccountUser,
} from './rbac-audit.ts';

const DAY = 86_400_000;
let client: KubeClient;

const web = { image: 'ghcr.io/acme/shop:1' };
const database = {
  shards: 1,
  replicasPerShard: 0,
  deletionPolicy: 'Delete',
  storage: { size: '1Gi' },
};
const everyTier: Json = {
  web,
  // traefik: the static path's Cache-Control comes from a Middleware.
  ingress: { host: 'shop.example.com', className: 'traefik' },
  cache: {},
  sessions: {},
  database,
  queue: { consumers: [{ name: 'mail', image: 'ghcr.io/acme/shop-worker:1' }] },
  monitoring: {},
};

const info = {
  middleware: kindInfo('traefik.io/v1alpha1', 'Middleware'),
  scaledObject: kindInfo('keda.sh/v1alpha1', 'ScaledObject'),
  triggerAuth: kindInfo('keda.sh/v1alpha1', 'TriggerAuthentication'),
  podMonitor: kindInfo('monitoring.coreos.com/v1', 'PodMonitor'),
  prometheusRule: kindInfo('monitoring.coreos.com/v1', 'PrometheusRule'),
  httpRoute: kindInfo('gateway.networking.k8s.io/v1', 'HTTPRoute'),
  ingress: kindInfo('networking.k8s.io/v1', 'Ingress'),
  statefulSet: kindInfo('apps/v1', 'StatefulSet'),
  role: kindInfo('rbac.authorization.k8s.io/v1', 'Role'),
  roleBinding: kindInfo('rbac.authorization.k8s.io/v1', 'RoleBinding'),
  pod: kindInfo('v1', 'Pod'),
  pvc: kindInfo('v1', 'PersistentVolumeClaim'),
  secret: kindInfo('v1', 'Secret'),
  configMap: kindInfo('v1', 'ConfigMap'),
  certificate: kindInfo('cert-manager.io/v1', 'Certificate'),
  issuer: kindInfo('cert-manager.io/v1', 'Issuer'),
};
type Kind = keyof typeof info;

/** Objects of the test's apps (shop, cm): in namespaced mode the operator's Role is there too. */
async function names(kind: Kind, namespace: string): Promise<string[]> {
  const list = await client.request<{ items: Json[] }>('GET', pathOf(info[kind], namespace), {
    verb: 'list',
    resource: info[kind].plural,
  });
  return list.items
    .map((o) => String((o['metadata'] as Json)['name']))
    .filter((n) => /^(shop|cm)-/.test(n));
}

const present = async (kind: Kind, ns: string) =>
  (await names(kind, ns)).length > 0 ? true : undefined;
const absent = async (kind: Kind, ns: string) =>
  (await names(kind, ns)).length === 0 ? true : undefined;
const decoded = (s: Json | undefined, key: string): string =>
  Buffer.from(String(((s?.['data'] ?? {}) as Json)[key] ?? ''), 'base64').toString('utf8');
const uidOf = (o: Json | undefined) => (o?.['metadata'] as Json | undefined)?.['uid'];
const isReady = (pod: Json | undefined) =>
  (((pod?.['status'] as Json | undefined)?.['conditions'] ?? []) as Json[]).some(
    (c) => c['type'] === 'Ready' && c['status'] === 'True',
  );

beforeAll(async () => {
  client = await openSuite();
});

afterAll(() => client?.close());

/**
 * cluster: the rules as a ClusterRole. namespaced: SCALABLE_WATCH_NAMESPACES names the app's
 * namespace and the same rules are a Role there, nothing cluster-wide.
 */
for (const mode of ['cluster', 'namespaced'] as const)
  describe(`${mode} mode: operator/rbac.ts's rules are sufficient and minimal`, () => {
    printLogDirOnFailure();
    const ns = uniqueName(`rbac-${mode}`);
    // The operator's own namespace (POD_NAMESPACE): a fresh one, so it creates its CA there.
    const home = uniqueName(`rbac-${mode}-op`);
    const identity = uniqueName(`scalable-operator-${mode}`);
    const lease = uniqueName(`lease-${mode}`);
    const watched = mode === 'namespaced' ? [ns] : undefined;
    let op: OperatorProcess | undefined;
    let operatorKubeconfig = '';
    let since = new Date();
    let certManagerInstalled = false;
    const policy = operatorPolicy({
      ...defaultPolicyNames(home),
      prefix: identity,
      operatorUser: serviceAccountUser(identity),
    });
    const policies = [policy, bindingOf(policy)];
    const policyPath = (o: Json) =>
      `/apis/admissionregistration.k8s.io/v1/${String(o['kind']).toLowerCase().replace(/y$/, 'ie')}s`;

    const start = async () => {
      op = await startOperator(
        {
          SCALABLE_LEASE_NAME: lease,
          POD_NAMESPACE: home,
          ...(watched ? { SCALABLE_WATCH_NAMESPACES: watched.join(',') } : {}),
        },
        operatorKubeconfig,
      );
    };

    beforeAll(async () => {
      // The audit log's times are this machine's clock, to the microsecond.
      since = new Date();
      await createNamespace(client, ns);
      await createNamespace(client, home);
      for (const o of policies)
        await client.request('POST', policyPath(o), {
          verb: 'create',
          resource: 'policies',
          body: o,
        });
      operatorKubeconfig = await rbacKubeconfig(
        client,
        identity,
        lease,
        watched,
        OPERATOR_RULES,
        home,
      );
      await start();
    });

    afterAll(async () => {
      await op?.stop('SIGTERM');
      if (certManagerInstalled) await removeCertManagerCrds();
      await deleteNamespace(client, ns);
      await deleteNamespace(client, home);
      await deleteRbac(client, identity);
      for (const o of policies)
        await client
          .request('DELETE', `${policyPath(o)}/${String((o['metadata'] as Json)['name'])}`, {
            verb: 'delete',
            resource: 'policies',
          })
          .catch(() => undefined);
    });

    it('builds every tier, prunes the Role of an earlier version, renews a certificate and rolls the database', async () => {
      const app = await applyAs(client, 'test-user', scalableApp(ns, 'shop', everyTier));
      // What versions before issue 36 rendered for Patroni: a Role and its RoleBinding.
      const meta = (name: string) => ({
        name,
        namespace: ns,
        labels: {
          'app.kubernetes.io/managed-by': 'scalable-operator',
          'scalable.dev/app': 'shop',
          'scalable.dev/tier': 'database',
        },
        ownerReferences: [
          {
            apiVersion: 'scalable.dev/v1alpha1',
            kind: 'ScalableApp',
            name: 'shop',
            uid: String((app['metadata'] as Json)['uid']),
            controller: true,
          },
        ],
      });
      // Applied by the operator's field manager, as that version did: only its own objects
      // are pruned (reconcile/project.ts appliedByUs).
      await applyAs(client, 'scalable-operator', {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: meta('shop-db'),
        rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list'] }],
      });
      await applyAs(client, 'scalable-operator', {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: meta('shop-db'),
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'shop-db' },
        subjects: [{ kind: 'ServiceAccount', name: 'shop-db', namespace: ns }],
      });
      await eventually('the old Role pruned', () => absent('role', ns), 120_000);
      await eventually(
        'the old RoleBinding pruned, Patroni bound to the ClusterRole',
        async () => {
          const bindings = await names('roleBinding', ns);
          return !bindings.includes('shop-db') && bindings.includes('shop-db-patroni')
            ? true
            : undefined;
        },
        120_000,
      );
      for (const kind of [
        'middleware',
        'scaledObject',
        'triggerAuth',
        'podMonitor',
        'prometheusRule',
      ] as const)
        await eventually(`a ${kind} in ${ns}`, () => present(kind, ns), 120_000);
      const tls = await eventually('Secret shop-db-0-tls with a key pair', async () => {
        const s = await getObj(client, info.secret, ns, 'shop-db-0-tls');
        return decoded(s, 'tls.key') ? s : undefined;
      });
      const ca = await getObj(client, info.secret, home, CA_SECRET_NAME);
      expect(ca).toBeDefined();
      // The record is written after the Secret: age it only once the operator wrote it.
      await eventually('the record of shop-db-0-tls', async () => {
        const record = await getObj(client, info.configMap, ns, 'shop-db-0-tls-public');
        return ((record?.['data'] ?? {}) as Json)['tls.crt'] === decoded(tls, 'tls.crt')
          ? true
          : undefined;
      });

      // Renewal (a Secret update): the record shows a certificate issued 61 days ago (of
      // 90), standing in for time passing, as operator-tls.test.ts does.
      // The app's own CA, kept under its uid (the Secret's owner).
      const appUid = String(((tls['metadata'] as Json)['ownerReferences'] as Json[])[0]?.['uid']);
      const pair = { cert: decoded(ca, `${appUid}.crt`), key: decoded(ca, `${appUid}.key`) };
      const dnsNames = String(
        ((tls['metadata'] as Json)['annotations'] as Json)['scalable.dev/tls-dns-names'],
      ).split(',');
      const aged = await issueServerCert(pair, dnsNames, new Date(Date.now() - 61 * DAY));
      const oldSerial = new X509Certificate(decoded(tls, 'tls.crt')).serialNumber;
      await applyAs(client, 'clock', {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'shop-db-0-tls-public', namespace: ns },
        data: { 'tls.crt': aged.cert, 'ca.crt': pair.cert },
      });
      await eventually('a renewed certificate in shop-db-0-tls', async () => {
        const s = await getObj(client, info.secret, ns, 'shop-db-0-tls');
        const serial = new X509Certificate(decoded(s, 'tls.crt')).serialNumber;
        return serial !== oldSerial && serial !== new X509Certificate(aged.cert).serialNumber
          ? true
          : undefined;
      });
      // A CA rotation asked for (an update of the CA Secret, by its name).
      await applyAs(client, 'rotator', {
        apiVersion: 'scalable.dev/v1alpha1',
        kind: 'ScalableApp',
        metadata: { name: 'shop', namespace: ns, annotations: { 'scalable.dev/rotate-ca': '1' } },
      });
      await eventually("shop's CA rotated", async () => {
        const s = await getObj(client, info.secret, home, CA_SECRET_NAME);
        return decoded(s, `${appUid}.previous.crt`) === pair.cert ? true : undefined;
      });

      // A rollout: the shard's only pod, labelled primary as Patroni labels its leader, is
      // on an old revision once the resources change. The StatefulSet is OnDelete, so only
      // the operator replaces the pod (it reads the StatefulSet fresh, then deletes the pod).
      const pod = await eventually(
        'pod shop-db-0-0 ready',
        async () => {
          const p = await getObj(client, info.pod, ns, 'shop-db-0-0');
          return isReady(p) ? p : undefined;
        },
        120_000,
      );
      await mergePatch(
        client,
        info.pod,
        ns,
        'shop-db-0-0',
        { metadata: { labels: { [ROLE_LABEL]: PRIMARY_ROLE } } },
        'patroni',
      );
      // ... and holding the shard's leader lock, as Patroni's leader does: the operator rolls
      // a shard only while the lock holder is the labelled primary (issue 25 item 5). Patroni
      // labels every key it writes with its `labels` and `scope_label` (patroni-config.ts) and
      // lists its keys by them: a ConfigMap without them is no lock to Patroni, nor to the
      // operator (lease-break.ts leaderRecordOf).
      await applyAs(client, 'patroni', {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name: 'shop-db-0-leader',
          namespace: ns,
          labels: { [DATABASE_LABEL]: 'shop', [SCOPE_LABEL]: 'shop-db-0' },
          annotations: { leader: 'shop-db-0-0' },
        },
      });
      await applyAs(
        client,
        'test-user',
        scalableApp(ns, 'shop', {
          ...everyTier,
          database: { ...database, resources: { requests: { cpu: '600m' } } },
        }),
      );
      await eventually(
        'shop-db-0-0 replaced by the operator',
        async () => {
          const p = await getObj(client, info.pod, ns, 'shop-db-0-0');
          if (p && uidOf(p) !== uidOf(pod)) return true;
          // What the operator says it waits for, in the timeout's message.
          const app = await getApp(client, ns, 'shop');
          const conditions = ((app?.['status'] as Json | undefined)?.['conditions'] ??
            []) as Json[];
          throw new Error(JSON.stringify(conditions.find((c) => c['type'] === 'DatabaseReady')));
        },
        120_000,
      );
    });

    it('prunes what the spec drops: every optional kind, the database, then the route', async () => {
      await applyAs(
        client,
        'test-user',
        scalableApp(ns, 'shop', {
          web,
          ingress: { host: 'shop.example.com', gateway: { name: 'public', namespace: ns } },
        }),
      );
      await eventually('an HTTPRoute', () => present('httpRoute', ns), 90_000);
      for (const kind of [
        'middleware',
        'scaledObject',
        'triggerAuth',
        'podMonitor',
        'prometheusRule',
        'ingress',
        'statefulSet',
        'role',
      ] as const)
        await eventually(`no ${kind} left in ${ns}`, () => absent(kind, ns), 90_000);
      await applyAs(client, 'test-user', scalableApp(ns, 'shop', { web }));
      await eventually('the HTTPRoute pruned', () => absent('httpRoute', ns), 90_000);
    });

    it("deletionPolicy Delete: deleting the app deletes its volume and Secrets, and its CA's entries", async () => {
      const shopUid = String(uidOf(await getApp(client, ns, 'shop')));
      // Entries of apps this operator cannot see the end of: one recorded in a namespace it
      // may not watch, one of an earlier version (no record). Only an operator watching every
      // namespace removes them (it would see their apps anywhere).
      const foreign = randomUUID();
      const unrecorded = randomUUID();
      const b64 = (x: string) => Buffer.from(x).toString('base64');
      await applyAs(client, 'another-operator', {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: CA_SECRET_NAME, namespace: home },
        data: {
          [`${foreign}.crt`]: b64('their CA'),
          [`${foreign}.key`]: b64('their key'),
          [`${foreign}.app`]: b64('elsewhere/api'),
          [`${unrecorded}.crt`]: b64('an old CA'),
          [`${unrecorded}.key`]: b64('an old key'),
        },
      });
      await client.request('DELETE', pathOf(APP_KIND, ns, 'shop'), {
        verb: 'delete',
        resource: 'scalableapps',
      });
      await eventually(
        'app gone',
        async () => ((await getApp(client, ns, 'shop')) ? undefined : true),
        120_000,
      );
      await eventually(
        'the database volume gone',
        async () => ((await getObj(client, info.pvc, ns, 'data-shop-db-0-0')) ? undefined : true),
        60_000,
      );
      for (const name of ['shop-db-auth', 'shop-db-app', 'shop-db-rewind'])
        expect(await getObj(client, info.secret, ns, name), name).toBeUndefined();
      const keysOf = async (uid: string) =>
        Object.keys(
          ((await getObj(client, info.secret, home, CA_SECRET_NAME))?.['data'] ?? {}) as Json,
        ).filter((k) => k.startsWith(`${uid}.`));
      await eventually(
        "shop's CA entries removed",
        async () => ((await keysOf(shopUid)).length === 0 ? true : undefined),
        60_000,
      );
      if (mode === 'namespaced') {
        expect(await keysOf(foreign)).toEqual([
          `${foreign}.app`,
          `${foreign}.crt`,
          `${foreign}.key`,
        ]);
        expect(await keysOf(unrecorded)).toEqual([`${unrecorded}.crt`, `${unrecorded}.key`]);
      } else
        await eventually(
          "the unseen apps' entries removed too",
          async () =>
            (await keysOf(foreign)).length + (await keysOf(unrecorded)).length === 0
              ? true
              : undefined,
          60_000,
        );
    });

    it('with cert-manager served: creates its Certificates and Issuers, and prunes them', async () => {
      certManagerInstalled = true;
      await installCertManagerCrds();
      // Discovery runs at start: the same identity, a fresh process.
      await op?.stop('SIGTERM');
      await start();
      await applyAs(client, 'test-user', scalableApp(ns, 'cm', { web, database }));
      await eventually('a Certificate', () => present('certificate', ns), 90_000);
      await eventually('an Issuer', () => present('issuer', ns), 30_000);
      await applyAs(
        client,
        'test-user',
        scalableApp(ns, 'cm', { web, database: { ...database, tls: false } }),
      );
      await eventually('no Certificate left', () => absent('certificate', ns), 90_000);
      await eventually('no Issuer left', () => absent('issuer', ns), 30_000);
    });

    it('the audit log: every right of its own used, none refused', async () => {
      await op?.stop('SIGTERM');
      const logDir = inject('devclusterLogDir') ?? process.env['SCALABLE_TEST_LOG_DIR'] ?? '';
      const mine = eventsOf(readAuditLog(logDir), serviceAccountUser(identity), since);
      const bound = [
        ...OPERATOR_RULES.map((r) => ({ ...r, ...(watched ? { namespace: ns } : {}) })),
        ...leaderElectionRules(lease).map((r) => ({ ...r, namespace: home })),
      ];
      const use = ruleUse(mine, bound, [...GRANT_ONLY_RULES, ...KUBELET_ONLY_RULES]);
      console.log(
        `[rbac-minimal] ${mode}: ${mine.length} audited requests, ${use.length} rights, ` +
          `fewest uses ${Math.min(...use.filter((u) => !u.grantOnly).map((u) => u.uses))}`,
      );
      expect(mine.length).toBeGreaterThan(0);
      expect(refused(mine).map(describeRequest)).toEqual([]);
      expect(use.filter((u) => u.uses === 0 && !u.grantOnly).map(describePair)).toEqual([]);
    });
  });
