// The database's certificates against a real API server, the operator holding only the RBAC
// of operator/rbac.ts. Without cert-manager it issues them itself: a CA per app, kept in a
// Secret of its own namespace under the app's uid, per shard a server key pair in a Secret it never reads back, the public half
// in a ConfigMap it watches; a record two thirds through its life is renewed in place. With
// cert-manager's CRDs (the upstream ones, from its Go module) the Certificates and Issuers
// it renders are accepted by the API server, and it issues nothing itself.
import { X509Certificate, createPrivateKey, randomUUID } from 'node:crypto';
import { connect, createServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, printLogDirOnFailure, uniqueName } from '../../devcluster/testing.ts';
import { CA_SECRET_NAME } from '../../operator/reconcile/certificates.ts';
import type { KubeClient } from '../../operator/runtime/kube-client.ts';
import { issueCa, issueServerCert, signedBy } from '../../operator/tiers/shared/tls/x509.ts';
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
/** An app's CA as the operator keeps it: under the app's uid in its CA Secret. */
async function appCa(name: string): Promise<{ cert: string; key: string }> {
  const uid = String(((await getApp(client, ns, name))?.['metadata'] as Json)['uid']);
  return eventually(`the CA of app ${name}`, async () => {
    const s = await secret('default', CA_SECRET_NAME);
    const ca = { cert: decoded(s, `${uid}.crt`), key: decoded(s, `${uid}.key`) };
    return ca.cert && ca.key ? ca : undefined;
  });
}

/**
 * A verify-full TLS handshake, as every client of a tier makes it: the server presents
 * `server`, the client trusts `ca` only and checks `host`. Resolves to the client's error
 * code, or 'ok'.
 */
async function handshake(
  server: { cert: string; key: string },
  ca: string,
  host: string,
): Promise<string> {
  const srv = createServer({ cert: server.cert, key: server.key }, (sock) => sock.end());
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  try {
    return await new Promise<string>((resolve) => {
      const sock = connect({ host: '127.0.0.1', port, ca, servername: host });
      sock.once('secureConnect', () => {
        sock.destroy();
        resolve('ok');
      });
      sock.once('error', (err: NodeJS.ErrnoException) => resolve(String(err.code ?? err.message)));
    });
  } finally {
    srv.close();
  }
}

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
    const caCert = (await appCa('shop')).cert;
    const ca = new X509Certificate(caCert);
    expect(ca.ca).toBe(true);
    // Two years (issue 36: ten before), and its own: no CA shared by every app.
    expect((new Date(ca.validTo).getTime() - new Date(ca.validFrom).getTime()) / DAY).toBeCloseTo(
      730,
      0,
    );
    expect(ca.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');

    for (const shard of [0, 1]) {
      const s = await eventually(`Secret shop-db-${shard}-tls with a key pair`, async () => {
        const x = await secret(ns, `shop-db-${shard}-tls`);
        return decoded(x, 'tls.key') ? x : undefined;
      });
      const cert = new X509Certificate(decoded(s, 'tls.crt'));
      expect(cert.checkIssued(ca) && cert.verify(ca.publicKey)).toBe(true);
      expect(cert.checkPrivateKey(createPrivateKey(decoded(s, 'tls.key')))).toBe(true);
      // A server certificate only: no peer asks for a client certificate (issue 36).
      expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
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
    const ca = await appCa('shop');
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
    const caCert = (await appCa('rd')).cert;
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

  it("gives each app its own CA: another app's certificate is refused by this app's clients (issue 36)", async () => {
    const shop = await appCa('shop');
    const rd = await appCa('rd');
    expect(rd.cert).not.toBe(shop.cert);
    const keyPair = async (name: string) => {
      const s = await secret(ns, name);
      return { cert: decoded(s, 'tls.crt'), key: decoded(s, 'tls.key'), ca: decoded(s, 'ca.crt') };
    };
    const db = await keyPair('shop-db-0-tls');
    const cache = await keyPair('rd-cache-tls');
    // Chains: each to its own app's CA only.
    expect(signedBy(db.cert, shop.cert)).toBe(true);
    expect(signedBy(db.cert, rd.cert)).toBe(false);
    expect(signedBy(cache.cert, rd.cert)).toBe(true);
    expect(signedBy(cache.cert, shop.cert)).toBe(false);
    expect(db.ca).toBe(shop.cert);
    expect(cache.ca).toBe(rd.cert);
    // Both certificates name localhost (the exporters verify it over loopback): with one CA
    // for all apps, rd's key passed for shop's server there. Now shop's clients (the CA file
    // its pods mount) refuse it, and still accept shop's own.
    expect(await handshake(db, db.ca, 'localhost')).toBe('ok');
    expect(await handshake(cache, db.ca, 'localhost')).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(await handshake(db, cache.ca, 'localhost')).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
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
    const ca = await appCa('shop');
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

  it("removes a deleted app's CA entries from the CA Secret, and only those (issue 36)", async () => {
    await applyAs(
      client,
      'test-user',
      scalableApp(ns, 'brief', { web: { image: 'ghcr.io/acme/brief:1' }, cache: {} }),
    );
    const uidOf = async (name: string) =>
      String(((await getApp(client, ns, name))?.['metadata'] as Json)['uid']);
    const [brief, shop] = [await uidOf('brief'), await uidOf('shop')];
    await appCa('brief');
    // Each entry records its app: an operator watching some namespaces removes only theirs.
    const before = await eventually("brief's CA entry records its app", async () => {
      const s = await secret('default', CA_SECRET_NAME);
      return decoded(s, `${brief}.app`) === `${ns}/brief` ? s : undefined;
    });
    expect(decoded(before, `${shop}.app`)).toBe(`${ns}/shop`);
    // An entry of an earlier version (no record) whose app is long gone: this operator
    // watches every namespace, so it would see that app anywhere, and removes it too.
    const orphan = randomUUID();
    const b64 = (x: string) => Buffer.from(x).toString('base64');
    await applyAs(client, 'orphan-seed', {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: CA_SECRET_NAME, namespace: 'default' },
      data: { [`${orphan}.crt`]: b64('its CA'), [`${orphan}.key`]: b64('its key') },
    });
    await client.request(
      'DELETE',
      `/apis/scalable.dev/v1alpha1/namespaces/${ns}/scalableapps/brief`,
      {
        verb: 'delete',
        resource: 'scalableapps',
      },
    );
    const after = await eventually(
      "brief's and the orphan's CA entries removed",
      async () => {
        const s = await secret('default', CA_SECRET_NAME);
        const left = Object.keys(dataOf(s)).filter(
          (k) => k.startsWith(`${brief}.`) || k.startsWith(`${orphan}.`),
        );
        return left.length === 0 ? s : undefined;
      },
      120_000,
    );
    // The other apps' entries are as they were.
    for (const key of [`${shop}.crt`, `${shop}.key`, `${shop}.app`])
      expect(decoded(after, key), key).toBe(decoded(before, key));
  });
});

describe('moving apps to a CA of their own, and rotating it (issue 36)', () => {
  printLogDirOnFailure();

  /**
   * The states the record of `cm` passes through until `done` holds: which CA signed the
   * certificate and which CAs ca.crt carries, by the labels in `cas`. Polled every 100 ms;
   * each step waits SCALABLE_TLS_TRUST_HOLD_SECONDS (4 s here), so none is missed.
   */
  async function statesUntil(
    cm: string,
    cas: Record<string, string>,
    done: (state: string) => boolean,
  ): Promise<string[]> {
    const label = (pem: string) =>
      Object.entries(cas).find(([, ca]) => ca.trim() === pem.trim())?.[0] ?? 'other';
    const seen: string[] = [];
    await eventually(
      `${cm}: ${Object.keys(cas).join(', ')}`,
      async () => {
        const data = dataOf(await configMap(cm));
        const cert = data['tls.crt'] ?? '';
        const signer = Object.entries(cas).find(([, ca]) => signedBy(cert, ca))?.[0] ?? 'other';
        const bundle =
          (data['ca.crt'] ?? '').match(/-----BEGIN[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
        const state = `${signer} [${bundle.map(label).join(' ')}]`;
        if (seen.at(-1) !== state) seen.push(state);
        return done(state) ? true : undefined;
      },
      120_000,
      100,
    );
    return seen;
  }

  it('an app issued from the shared CA of earlier versions moves to its own, each step trusted before it is used; a rotation asked for does the same', async () => {
    // An earlier version's state: the one shared CA in the Secret's tls.crt/tls.key, and an
    // app whose Secret and record it issued from it.
    await op.stop('SIGTERM');
    const shared = await issueCa('scalable-operator CA', new Date());
    const b64 = (x: string) => Buffer.from(x).toString('base64');
    await applyAs(client, 'earlier-version', {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: CA_SECRET_NAME, namespace: 'default' },
      data: { 'tls.crt': b64(shared.cert), 'tls.key': b64(shared.key) },
    });
    const leaf = await issueServerCert(shared, ['localhost'], new Date());
    const written = await applyAs(client, 'earlier-version', {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'old-db-0-tls', namespace: ns },
      data: { 'tls.crt': b64(leaf.cert), 'tls.key': b64(leaf.key), 'ca.crt': b64(shared.cert) },
    });
    const wm = written['metadata'] as Json;
    await applyAs(client, 'scalable-operator-certificates', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'old-db-0-tls-public',
        namespace: ns,
        annotations: {
          'scalable.dev/secret-uid': String(wm['uid']),
          'scalable.dev/secret-resource-version': String(wm['resourceVersion']),
        },
      },
      data: { 'tls.crt': leaf.cert, 'ca.crt': shared.cert },
    });
    await applyAs(
      client,
      'test-user',
      scalableApp(ns, 'old', {
        web: { image: 'ghcr.io/acme/old:1' },
        database: { shards: 1, replicasPerShard: 0, shardKey: 'user_id' },
      }),
    );
    op = await startOperatorAs(
      client,
      `${identity}-move`,
      { lease: uniqueName('lease-tls-move') },
      { SCALABLE_TLS_TRUST_HOLD_SECONDS: '4', SCALABLE_RESYNC_SECONDS: '10' },
    );
    const own = await appCa('old');
    expect(own.cert).not.toBe(shared.cert);
    // 1. the app's CA joins the trust bundle (the certificate still from the shared CA);
    // 2. the certificate comes from the app's CA (both still trusted: pods that have not
    //    reloaded yet present the old one); 3. the shared CA leaves the bundle.
    const moved = await statesUntil(
      'old-db-0-tls-public',
      { shared: shared.cert, own: own.cert },
      (s) => s === 'own [own]',
    );
    // (The first step may be done before the first poll: the operator issues at start.)
    expect(moved[0] === 'shared [shared]' ? moved.slice(1) : moved).toEqual([
      'shared [shared own]',
      'own [shared own]',
      'own [own]',
    ]);
    // Replaced in place, never deleted: the pods' mount follows it (they reload, no restart).
    const after = await secret(ns, 'old-db-0-tls');
    expect((after?.['metadata'] as Json)['uid']).toBe(wm['uid']);
    expect(signedBy(decoded(after, 'tls.crt'), own.cert)).toBe(true);
    expect(decoded(after, 'ca.crt')).toBe(own.cert);

    // A rotation asked for on the app: a new CA, through the same three steps.
    const app = await getApp(client, ns, 'old');
    // A manager of its own: the spec stays test-user's.
    await applyAs(client, 'rotator', {
      apiVersion: String(app?.['apiVersion']),
      kind: 'ScalableApp',
      metadata: { name: 'old', namespace: ns, annotations: { 'scalable.dev/rotate-ca': '1' } },
    });
    const next = await eventually('a new CA for old', async () => {
      const ca = await appCa('old');
      return ca.cert !== own.cert ? ca : undefined;
    });
    const rotated = await statesUntil(
      'old-db-0-tls-public',
      { own: own.cert, next: next.cert },
      (s) => s === 'next [next]',
    );
    expect(rotated[0] === 'own [own]' ? rotated.slice(1) : rotated).toEqual([
      'own [own next]',
      'next [own next]',
      'next [next]',
    ]);
    // The store keeps the predecessor for the steps (its key signs step 1).
    const uid = String((app?.['metadata'] as Json)['uid']);
    expect(decoded(await secret('default', CA_SECRET_NAME), `${uid}.previous.crt`)).toBe(own.cert);
    await deleteRbac(client, `${identity}-move`);
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
