// The database's certificates against a real API server, the operator holding only the RBAC
// of operator/rbac.ts. Without cert-manager it issues them itself: its CA in a Secret of its
// own namespace, per shard a server key pair in a Secret it never reads back, the public half
// in a ConfigMap it watches; a record two thirds through its life is renewed in place. With
// cert-manager's CRDs (the upstream ones, from its Go module) the Certificates and Issuers
// it renders are accepted by the API server, and it issues nothing itself.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, printLogDirOnFailure, uniqueName } from '../../devcluster/testing.ts';
import { CA_SECRET_NAME } from '../../operator/reconcile/certificates.ts';
import type { KubeClient } from '../../operator/runtime/kube-client.ts';
import { issueServerCert } from '../../operator/tiers/shared/tls/x509.ts';
import {
  applyAs,
  closeSuite,
  conditionOf,
  deleteRbac,
  getApp,
  getObj,
  kindInfo,
  openSuite,
  scalableApp,
  startOperatorAs,
} from './operator-harness.ts';
import { installCertManagerCrds, removeCertManagerCrds } from './cert-manager.ts';
import type { Json, OperatorProcess } from './operator-harness.ts';

const ns = uniqueName('op-tls');
const identity = uniqueName('scalable-operator');
const DAY = 86_400_000;
let client: KubeClient;
let op: OperatorProcess;

const decoded = (s: Json | undefined, key: string): string =>
  Buffer.from(String(((s?.['data'] ?? {}) as Json)[key] ?? ''), 'base64').toString('utf8');
const secret = (namespace: string, name: string) =>
  getObj(client, kindInfo('v1', 'Secret'), namespace, name);
const configMap = (name: string) => getObj(client, kindInfo('v1', 'ConfigMap'), ns, name);
const dataOf = (o: Json | undefined): Record<string, string> =>
  (o?.['data'] ?? {}) as Record<string, string>;

beforeAll(async () => {
  client = await openSuite(ns);
  // The operator's Role reaches its own Lease only, by name.
  op = await startOperatorAs(client, identity, { lease: uniqueName('lease-tls') });
});

let certManagerInstalled = false;

afterAll(async () => {
  await op?.stop('SIGTERM');
  if (certManagerInstalled) await removeCertManagerCrds();
  await closeSuite(client, { namespaces: [ns], identities: [identity] });
});

describe('certificates the operator issues (no cert-manager)', () => {
  printLogDirOnFailure();

  it('issues a server certificate per shard from its CA, for the Services and pods', async () => {
    await applyAs(
      client,
      'test-user',
      scalableApp(ns, 'shop', {
        web: { image: 'ghcr.io/acme/shop:1' },
        database: { shards: 2, replicasPerShard: 0, shardKey: 'user_id' },
      }),
    );
    // The operator's namespace is `default` here (POD_NAMESPACE unset).
    const caSecret = await eventually('the CA Secret', () => secret('default', CA_SECRET_NAME));
    const caCert = decoded(caSecret, 'tls.crt');
    const ca = new X509Certificate(caCert);
    expect(ca.ca).toBe(true);
    expect(ca.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');

    for (const shard of [0, 1]) {
      const s = await eventually(`Secret shop-db-${shard}-tls with a key pair`, async () => {
        const x = await secret(ns, `shop-db-${shard}-tls`);
        return decoded(x, 'tls.key') ? x : undefined;
      });
      const cert = new X509Certificate(decoded(s, 'tls.crt'));
      expect(cert.checkIssued(ca) && cert.verify(ca.publicKey)).toBe(true);
      expect(cert.checkPrivateKey(createPrivateKey(decoded(s, 'tls.key')))).toBe(true);
      expect(decoded(s, 'ca.crt')).toBe(caCert);
      expect(cert.checkHost(`shop-db-${shard}.${ns}.svc`)).toBeDefined();
      expect(cert.checkHost(`shop-db-${shard}-ro.${ns}.svc`)).toBeDefined();
      expect(cert.checkHost(`shop-db-${shard}-0.shop-db-${shard}-hl.${ns}.svc`)).toBeDefined();
      expect(cert.checkHost(`shop-db-${1 - shard}.${ns}.svc`)).toBeUndefined();
      // The owner reference: the key pair goes with the app.
      expect((s?.['metadata'] as Json)['ownerReferences']).toEqual([
        expect.objectContaining({ kind: 'ScalableApp', name: 'shop' }),
      ]);
      // The public half, which app pods mount the CA from and the operator renews by.
      const pub = await eventually(`ConfigMap shop-db-${shard}-tls-public`, async () => {
        const c = await configMap(`shop-db-${shard}-tls-public`);
        return dataOf(c)['tls.crt'] ? c : undefined;
      });
      expect(dataOf(pub)['tls.crt']).toBe(decoded(s, 'tls.crt'));
      expect(dataOf(pub)['ca.crt']).toBe(caCert);
    }
    // The StatefulSet mounts the key pair; the web pods get the CA and verify-full.
    const sts = await eventually('StatefulSet shop-db-0', () =>
      getObj(client, kindInfo('apps/v1', 'StatefulSet'), ns, 'shop-db-0'),
    );
    expect(JSON.stringify(sts)).toContain('"secretName":"shop-db-0-tls"');
    const web = await eventually('Deployment shop-web', () =>
      getObj(client, kindInfo('apps/v1', 'Deployment'), ns, 'shop-web'),
    );
    expect(JSON.stringify(web)).toContain('{"name":"DATABASE_SSLMODE","value":"verify-full"}');
  });

  it('renews a certificate two thirds through its life, replacing the Secret in place', async () => {
    const before = await secret(ns, 'shop-db-0-tls');
    const uid = (before?.['metadata'] as Json)['uid'];
    const oldSerial = new X509Certificate(decoded(before, 'tls.crt')).serialNumber;
    // Stand in for time passing: the record now shows a certificate issued 61 days ago
    // (of 90) by the same CA for the same names.
    const caSecret = await secret('default', CA_SECRET_NAME);
    const ca = { cert: decoded(caSecret, 'tls.crt'), key: decoded(caSecret, 'tls.key') };
    const names = String(
      ((before?.['metadata'] as Json)['annotations'] as Json)['scalable.dev/tls-dns-names'],
    ).split(',');
    const aged = await issueServerCert(ca, names, new Date(Date.now() - 61 * DAY));
    await applyAs(client, 'clock', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'shop-db-0-tls-public', namespace: ns },
      data: { 'tls.crt': aged.cert, 'ca.crt': ca.cert },
    });
    const after = await eventually(
      'a renewed certificate in shop-db-0-tls',
      async () => {
        const s = await secret(ns, 'shop-db-0-tls');
        const serial = new X509Certificate(decoded(s, 'tls.crt')).serialNumber;
        return serial !== oldSerial && serial !== new X509Certificate(aged.cert).serialNumber
          ? s
          : undefined;
      },
      60_000,
    );
    expect((after?.['metadata'] as Json)['uid']).toBe(uid);
    const renewed = new X509Certificate(decoded(after, 'tls.crt'));
    expect(new Date(renewed.validFrom).getTime()).toBeGreaterThan(Date.now() - 2 * 3_600_000);
    const record = await eventually('the record of the renewed certificate', async () => {
      const c = await configMap('shop-db-0-tls-public');
      return dataOf(c)['tls.crt'] === decoded(after, 'tls.crt') ? c : undefined;
    });
    expect(dataOf(record)['ca.crt']).toBe(ca.cert);
  });

  it('issues a certificate per Redis tier for its Services, pods and Sentinels; the app gets rediss:// and the CAs', async () => {
    await applyAs(
      client,
      'test-user',
      scalableApp(ns, 'rd', {
        web: { image: 'ghcr.io/acme/rd:1' },
        cache: { replicas: 1 },
        sessions: {},
        queue: { consumers: [{ name: 'a', image: 'ghcr.io/acme/rd-worker:1' }] },
      }),
    );
    const caCert = decoded(await secret('default', CA_SECRET_NAME), 'tls.crt');
    const ca = new X509Certificate(caCert);
    const hosts: Record<string, string[]> = {
      'rd-cache': [
        `rd-cache-0.rd-cache-headless.${ns}.svc`,
        `rd-cache-sentinel.${ns}.svc`,
        `rd-cache-sentinel-2.rd-cache-sentinel-headless.${ns}.svc`,
        'localhost',
      ],
      'rd-sessions': [`rd-sessions.${ns}.svc`, `rd-sessions-0.rd-sessions-headless.${ns}.svc`],
      'rd-queue': [`rd-queue.${ns}.svc`, `rd-queue-0.rd-queue-headless.${ns}.svc.cluster.local`],
    };
    for (const [base, names] of Object.entries(hosts)) {
      const s = await eventually(`Secret ${base}-tls with a key pair`, async () => {
        const x = await secret(ns, `${base}-tls`);
        return decoded(x, 'tls.key') ? x : undefined;
      });
      const cert = new X509Certificate(decoded(s, 'tls.crt'));
      expect(cert.checkIssued(ca) && cert.verify(ca.publicKey)).toBe(true);
      expect(decoded(s, 'ca.crt')).toBe(caCert);
      for (const n of names) expect(cert.checkHost(n), `${base}: ${n}`).toBeDefined();
      expect(cert.checkHost(`rd-db-0.${ns}.svc`)).toBeUndefined();
    }
    const web = JSON.stringify(
      await eventually('Deployment rd-web', () =>
        getObj(client, kindInfo('apps/v1', 'Deployment'), ns, 'rd-web'),
      ),
    );
    expect(web).toContain(
      '{"name":"REDIS_SSLROOTCERT","value":"/etc/scalable/ca/cache-ca/ca.crt"}',
    );
    expect(web).toContain(
      `{"name":"SESSION_REDIS_URL","value":"rediss://rd-sessions.${ns}.svc:6379/0"}`,
    );
    expect(web).toContain(`{"name":"QUEUE_URL","value":"rediss://rd-queue.${ns}.svc:6379/0"}`);
    expect(web).toContain('"secretName":"rd-queue-tls"');
  });

  it('does not renew into a Secret that changed since it wrote it: left untouched, and the app says so (issue 36)', async () => {
    const before = await secret(ns, 'shop-db-0-tls');
    const serial = new X509Certificate(decoded(before, 'tls.crt')).serialNumber;
    // Someone changes the Secret the operator wrote (its resourceVersion moves on).
    await applyAs(client, 'someone', {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'shop-db-0-tls', namespace: ns, labels: { 'example.com/touched': 'yes' } },
    });
    const touched = await secret(ns, 'shop-db-0-tls');
    // Time passes (as above): the operator wants to renew.
    const caSecret = await secret('default', CA_SECRET_NAME);
    const ca = { cert: decoded(caSecret, 'tls.crt'), key: decoded(caSecret, 'tls.key') };
    const names = String(
      ((before?.['metadata'] as Json)['annotations'] as Json)['scalable.dev/tls-dns-names'],
    ).split(',');
    const aged = await issueServerCert(ca, names, new Date(Date.now() - 61 * DAY));
    await applyAs(client, 'clock', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'shop-db-0-tls-public', namespace: ns },
      data: { 'tls.crt': aged.cert, 'ca.crt': ca.cert },
    });
    const ready = await eventually('shop says why it did not renew', async () => {
      const c = conditionOf(await getApp(client, ns, 'shop'), 'Ready');
      return String(c?.['message'] ?? '').includes(
        'Secret shop-db-0-tls changed since the operator wrote it',
      )
        ? c
        : undefined;
    });
    expect(ready?.['reason']).toBe('ApplyFailed');
    const after = await secret(ns, 'shop-db-0-tls');
    expect((after?.['metadata'] as Json)['resourceVersion']).toBe(
      (touched?.['metadata'] as Json)['resourceVersion'],
    );
    expect(new X509Certificate(decoded(after, 'tls.crt')).serialNumber).toBe(serial);
  });

  it('leaves a Secret it did not create untouched, says so, and deleting the app leaves it (issue 36)', async () => {
    // A Secret of someone else's that an app's name happens to (or is chosen to) collide with.
    await applyAs(client, 'someone', {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: { name: 'victim-cache-tls', namespace: ns },
      stringData: { 'tls.crt': 'their certificate', 'tls.key': 'their key' },
    });
    const theirs = await secret(ns, 'victim-cache-tls');
    await applyAs(
      client,
      'test-user',
      scalableApp(ns, 'victim', { web: { image: 'ghcr.io/acme/victim:1' }, cache: {} }),
    );
    const ready = await eventually("victim says the Secret is not the operator's", async () => {
      const c = conditionOf(await getApp(client, ns, 'victim'), 'Ready');
      return String(c?.['message'] ?? '').includes(
        'Secret victim-cache-tls exists and was not created by scalable-operator',
      )
        ? c
        : undefined;
    });
    expect(ready?.['status']).toBe('False');
    const after = await secret(ns, 'victim-cache-tls');
    expect(after?.['data']).toEqual(theirs?.['data']);
    expect((after?.['metadata'] as Json)['resourceVersion']).toBe(
      (theirs?.['metadata'] as Json)['resourceVersion'],
    );
    expect((after?.['metadata'] as Json)['ownerReferences']).toBeUndefined();
    // The app goes; what it owns goes with it (the garbage collector), their Secret stays.
    const web = await eventually('Deployment victim-web', () =>
      getObj(client, kindInfo('apps/v1', 'Deployment'), ns, 'victim-web'),
    );
    expect(web).toBeDefined();
    await client.request(
      'DELETE',
      `/apis/scalable.dev/v1alpha1/namespaces/${ns}/scalableapps/victim`,
      {
        verb: 'delete',
        resource: 'scalableapps',
      },
    );
    await eventually(
      "victim's Deployment collected",
      async () =>
        (await getObj(client, kindInfo('apps/v1', 'Deployment'), ns, 'victim-web'))
          ? undefined
          : true,
      120_000,
    );
    expect((await secret(ns, 'victim-cache-tls'))?.['data']).toEqual(theirs?.['data']);
  });

  it('tls: false renders no certificate and hands the app no TLS settings', async () => {
    await applyAs(
      client,
      'test-user',
      scalableApp(ns, 'plain', {
        web: { image: 'ghcr.io/acme/plain:1' },
        database: { shards: 1, replicasPerShard: 0, tls: false },
      }),
    );
    const web = await eventually('Deployment plain-web', () =>
      getObj(client, kindInfo('apps/v1', 'Deployment'), ns, 'plain-web'),
    );
    expect(JSON.stringify(web)).not.toContain('DATABASE_SSLMODE');
    await eventually('StatefulSet plain-db-0', () =>
      getObj(client, kindInfo('apps/v1', 'StatefulSet'), ns, 'plain-db-0'),
    );
    expect(await secret(ns, 'plain-db-0-tls')).toBeUndefined();
    expect(await configMap('plain-db-0-tls-public')).toBeUndefined();
  });
});

describe('with cert-manager served', () => {
  printLogDirOnFailure();

  it('the API server accepts the Certificates and Issuers, and the operator issues nothing', async () => {
    certManagerInstalled = true;
    await installCertManagerCrds();
    // A fresh operator discovers the API at start.
    await op.stop('SIGTERM');
    op = await startOperatorAs(client, `${identity}-cm`, { lease: uniqueName('lease-tls-cm') });
    await applyAs(
      client,
      'test-user',
      scalableApp(ns, 'cm', {
        web: { image: 'ghcr.io/acme/cm:1' },
        database: { shards: 1, replicasPerShard: 0 },
      }),
    );
    const certificate = await eventually('Certificate cm-db-0', () =>
      getObj(client, kindInfo('cert-manager.io/v1', 'Certificate'), ns, 'cm-db-0'),
    );
    expect(certificate['spec']).toMatchObject({
      secretName: 'cm-db-0-tls',
      issuerRef: { name: 'cm-tls-ca', kind: 'Issuer' },
    });
    for (const name of ['cm-tls-selfsigned', 'cm-tls-ca'])
      expect(
        await getObj(client, kindInfo('cert-manager.io/v1', 'Issuer'), ns, name),
      ).toBeDefined();
    expect(
      await getObj(client, kindInfo('cert-manager.io/v1', 'Certificate'), ns, 'cm-tls-ca'),
    ).toBeDefined();
    // The operator left the Secret to cert-manager (not running here: nothing fills it).
    // A status is written once every object of the reconcile, issued Secrets last, is done.
    await eventually('a status on app cm', async () => {
      const status = (await getApp(client, ns, 'cm'))?.['status'] as Json | undefined;
      return status?.['observedGeneration'] ? true : undefined;
    });
    expect(await secret(ns, 'cm-db-0-tls')).toBeUndefined();
    // The Redis tiers' Certificates, from the app's CA Issuer (declared by the cache tier
    // when the database has no TLS of its own).
    await applyAs(
      client,
      'test-user',
      scalableApp(ns, 'cmr', {
        web: { image: 'ghcr.io/acme/cmr:1' },
        database: { shards: 1, replicasPerShard: 0, tls: false },
        cache: { replicas: 1 },
        sessions: {},
      }),
    );
    for (const tier of ['cache', 'sessions']) {
      const c = await eventually(`Certificate cmr-${tier}`, () =>
        getObj(client, kindInfo('cert-manager.io/v1', 'Certificate'), ns, `cmr-${tier}`),
      );
      expect(c['spec']).toMatchObject({
        secretName: `cmr-${tier}-tls`,
        issuerRef: { name: 'cmr-tls-ca', kind: 'Issuer' },
      });
    }
    const issuer = await eventually('Issuer cmr-tls-ca', () =>
      getObj(client, kindInfo('cert-manager.io/v1', 'Issuer'), ns, 'cmr-tls-ca'),
    );
    expect(((issuer['metadata'] as Json)['labels'] as Json)['scalable.dev/tier']).toBe('cache');
    expect(await secret(ns, 'cmr-cache-tls')).toBeUndefined();
    await deleteRbac(client, `${identity}-cm`);
  });
});
