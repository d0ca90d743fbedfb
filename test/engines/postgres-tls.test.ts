// TLS on Postgres and Patroni, with the real programs running the rendered configuration
// (patroni-harness.ts): one shard, primary + replica. Who is refused (no CA, a wrong name,
// plain TCP, plain HTTP), that replication runs over TLS, that the exporter verifies the
// server as rendered (sslmode=verify-full), and a certificate rotation that an open
// connection survives. Then `tls: false`: the plain configuration, for the opt-out.
import { execFileSync } from 'node:child_process';
import { chownSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appDatabaseName } from '../../operator/tiers/database/names.ts';
import { patroniConfig } from '../../operator/tiers/database/patroni-config.ts';
import { exporterDataSource } from '../../operator/tiers/database/statefulset.ts';
import { TLS_FILES } from '../../operator/tiers/shared/tls/objects.ts';
import {
  certInfo,
  issueCa,
  issueServerCert,
  joinBundle,
} from '../../operator/tiers/shared/tls/x509.ts';
import { forgetCa, liveCa } from '../../sdk/src/ca-file.ts';
import { pgSsl } from '../../sdk/src/db/tls.ts';
import { caVolume } from './ca-volume.ts';
import { caStore, issuePlan } from '../../operator/reconcile/certificates.ts';
import { KubeClient } from '../../operator/runtime/kube-client.ts';
import { TLS_DNS_NAMES_ANNOTATION } from '../../operator/tiers/shared/tls/objects.ts';
import {
  PASSWORDS,
  TEST_CA,
  TLS_RELOAD_TEST_SECONDS,
  eventually,
  freePort,
  sql,
  startDatabase,
  streamingPrimary,
} from './patroni-harness.ts';
import type { Harness, Member } from './patroni-harness.ts';
import { ENGINE_IMAGES, ENGINE_UID, PG_BIN, runOnce, startContainer } from './containers.ts';
import type { Container } from './containers.ts';

const numbers: Record<string, number> = {};

/** A client of the app role, as the SDK connects: the options decide the TLS part. */
async function appClient(h: Harness, m: Member, ssl: pg.ClientConfig['ssl']): Promise<pg.Client> {
  const db = appDatabaseName(h.app);
  const c = new pg.Client({
    host: '127.0.0.1',
    port: m.pgPort,
    user: db,
    password: PASSWORDS.app,
    database: db,
    ssl,
    connectionTimeoutMillis: 2000,
  });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

/** The error a connection attempt ends with (the test fails if it succeeds). */
async function refusal(h: Harness, m: Member, ssl: pg.ClientConfig['ssl']): Promise<string> {
  try {
    const c = await appClient(h, m, ssl);
    await c.end();
  } catch (e) {
    return `${(e as { code?: string }).code ?? ''} ${(e as Error).message}`;
  }
  throw new Error('the connection was accepted');
}

/** The serial of the certificate a Postgres server presents (openssl's STARTTLS). */
function servedSerial(port: number): string {
  const out = execFileSync(
    'openssl',
    [
      's_client',
      '-starttls',
      'postgres',
      '-connect',
      `127.0.0.1:${port}`,
      '-servername',
      'localhost',
    ],
    { input: '', stdio: 'pipe', timeout: 10_000 },
  ).toString();
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(out)?.[0];
  const serial = certInfo(pem)?.serial;
  if (!serial) throw new Error(`no certificate from 127.0.0.1:${port}`);
  return serial;
}

/** The serial of the certificate Patroni's REST API presents, verified by name. */
function restSerial(m: Member): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect(
      { host: '127.0.0.1', port: m.restPort, servername: 'localhost', ca: TEST_CA.cert },
      () => {
        resolve(s.getPeerCertificate().serialNumber);
        s.end();
      },
    );
    s.on('error', reject);
  });
}

function restGet(m: Member, path: string, ca?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port: m.restPort,
        path,
        servername: 'localhost',
        ...(ca ? { ca } : {}),
        timeout: 2000,
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('Postgres with TLS (the default): rendered config, real Patroni and Postgres', () => {
  let h: Harness;
  let primary: Member;
  let replica: Member;
  const exporters: Container[] = [];

  beforeAll(async () => {
    h = await startDatabase('pg-tls', { replicasPerShard: 1 });
    primary = await streamingPrimary(h);
    replica = h.members.find((m) => m !== primary)!;
    // Streaming starts before the replica's Postgres accepts connections (and pg_basebackup's
    // WAL stream may still be listed): wait until the replica is ready and streams alone.
    await eventually(
      'the replica ready, one streaming walsender',
      async () => {
        const rows = await sql<{ n: string }>(
          primary.pgPort,
          'SELECT count(*) AS n FROM pg_stat_replication',
        );
        return rows[0]?.n === '1' && (await h.isReady(replica)) ? true : undefined;
      },
      60_000,
      500,
    );
  });

  afterAll(async ({}, suite) => {
    for (const e of exporters) await e.remove();
    await h?.stop(suite);
    console.log(`[postgres-tls] measured: ${JSON.stringify(numbers)}`);
  });

  it('replicates over TLS', async () => {
    const rows = await sql<{ ssl: boolean; version: string }>(
      primary.pgPort,
      'SELECT s.ssl, s.version FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)',
    );
    expect(rows).toEqual([{ ssl: true, version: expect.stringMatching(/^TLSv1\.[23]$/) }]);
  });

  it('accepts a client that verifies the CA and a name the certificate carries', async () => {
    for (const servername of ['localhost', `shop-db-0.${h.ns}.svc`, `shop-db-0-ro.${h.ns}.svc`]) {
      const c = await appClient(h, primary, { ca: TEST_CA.cert, servername });
      const [row] = (await c.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'))
        .rows as Array<{ ssl: boolean }>;
      expect(row?.ssl).toBe(true);
      await c.end();
    }
  });

  it('a replica of another app, told this primary is its own, refuses it: the certificate names another app (verify-full, issue 36)', async () => {
    // Both apps' certificates come from one CA. A replica connects with the rendered
    // replication settings to its primary's pod name; here a network position (hostaddr)
    // sends the replica of app "blog" to shop's primary instead. verify-ca accepted the chain
    // and went on to authenticate; verify-full refuses before any password or WAL moves.
    // The replication settings every app's members render (the app name does not enter them).
    const replication = patroniConfig(h.app, 0).postgresql.authentication.replication as {
      username: string;
      sslmode?: string;
    };
    const host = `blog-db-0-0.blog-db-0-hl.${h.ns}.svc`;
    // psql from the Postgres image, on the host's network like the members.
    const out = runOnce(
      {
        image: ENGINE_IMAGES.postgres,
        name: 'pg-tls-foreign-replica',
        entrypoint: `${PG_BIN}/psql`,
        args: [
          '-X',
          '-w',
          '-c',
          'IDENTIFY_SYSTEM',
          `host=${host} hostaddr=127.0.0.1 port=${primary.pgPort} user=${replication.username} ` +
            `dbname=postgres replication=true sslmode=${replication.sslmode} sslrootcert=${h.caFile} connect_timeout=5`,
        ],
        env: { PGPASSWORD: PASSWORDS.replication },
        readOnlyMounts: [h.caFile],
      },
      60_000,
    );
    expect(out.status, `accepted: ${out.stdout}`).not.toBe(0);
    expect(out.stderr).toMatch(
      /server certificate for "[^"]*shop[^"]*" .*does not match host name/,
    );
    expect(replication.sslmode).toBe('verify-full');
  });

  it("another app's key pair cannot pass for this app's server, even at a name both carry (localhost): each app's clients trust its CA only (issue 36)", async () => {
    // Two apps' key pairs as the operator issues them: their CAs from its store (on this
    // harness's API server), the issue plan for a new server Secret, the x509 module.
    const store = caStore(await KubeClient.load(h.kubeconfig), h.ns);
    const issue = async (app: string) => {
      const names = [`${app}-db-0.${h.ns}.svc`, 'localhost'];
      const declared = {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name: `${app}-db-0-tls`,
          annotations: { [TLS_DNS_NAMES_ANNOTATION]: names.join(',') },
        },
      };
      const cas = await store.forApp({ uid: `${h.ns}-${app}`, name: app, namespace: h.ns });
      const plan = issuePlan(declared, undefined, cas, new Date())!;
      return {
        ...(await issueServerCert(plan.signer, names, new Date())),
        ca: joinBundle(plan.bundle),
      };
    };
    const shop = await issue('shop');
    const blog = await issue('blog');
    // blog's key pair on shop's shard (a network position: what shop's clients reach at
    // localhost, or a pod that took the address), swapped in as the kubelet would.
    const tlsDir = join(h.dir, 'tls-0');
    const original = {
      cert: readFileSync(join(tlsDir, TLS_FILES.cert), 'utf8'),
      key: readFileSync(join(tlsDir, TLS_FILES.key), 'utf8'),
    };
    const swap = async (pair: { cert: string; key: string }) => {
      writeFileSync(join(tlsDir, 'next.crt'), pair.cert);
      writeFileSync(join(tlsDir, 'next.key'), pair.key, { mode: 0o600 });
      for (const f of ['next.crt', 'next.key']) chownSync(join(tlsDir, f), ENGINE_UID, ENGINE_UID);
      renameSync(join(tlsDir, 'next.key'), join(tlsDir, TLS_FILES.key));
      renameSync(join(tlsDir, 'next.crt'), join(tlsDir, TLS_FILES.cert));
      const serial = certInfo(pair.cert)!.serial;
      await eventually(
        `the primary serving ${serial}`,
        async () => (servedSerial(primary.pgPort) === serial ? true : undefined),
        30_000,
        250,
      );
    };
    try {
      await swap(blog);
      // shop's clients verify as the SDK and the exporter do (verify-full, localhost): the
      // name matches, the chain does not. With one CA for every app this connected.
      expect(await refusal(h, primary, { ca: shop.ca, servername: 'localhost' })).toMatch(
        /unable to verify|UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to get local issuer/i,
      );
      // blog's own clients would accept it: the refusal is the CA, not the connection.
      const c = await appClient(h, primary, { ca: blog.ca, servername: 'localhost' });
      await c.end();
      // And shop's key pair serves shop's clients.
      await swap(shop);
      const d = await appClient(h, primary, { ca: shop.ca, servername: 'localhost' });
      await d.end();
    } finally {
      await swap(original);
    }
  });

  it('refuses a client without the CA, with a wrong name, or in plain TCP', async () => {
    // No CA: the server's chain is not trusted.
    expect(await refusal(h, primary, { servername: 'localhost' })).toMatch(
      /self-signed|unable to get local issuer|UNABLE_TO_VERIFY|SELF_SIGNED/i,
    );
    // The right CA, a name the certificate does not carry (another shard, another namespace).
    for (const servername of [`shop-db-1.${h.ns}.svc`, 'shop-db-0.other.svc']) {
      expect(await refusal(h, primary, { ca: TEST_CA.cert, servername })).toMatch(
        /ERR_TLS_CERT_ALTNAME_INVALID/,
      );
    }
    // Plain TCP: pg_hba.conf has no line for it.
    expect(await refusal(h, primary, false)).toMatch(/no pg_hba\.conf entry.*no encryption/);
    expect(await refusal(h, replica, false)).toMatch(/no pg_hba\.conf entry.*no encryption/);
  });

  it('the exporter connects with the rendered data source (sslmode=verify-full)', async () => {
    const port = await freePort();
    const uri = exporterDataSource(h.app, h.caFile).replace(':5432/', `:${primary.pgPort}/`);
    expect(uri).toContain('sslmode=verify-full');
    // The sidecar: the postgres-exporter image, its rendered env, the CA mounted.
    exporters.push(
      startContainer({
        image: ENGINE_IMAGES.postgresExporter,
        name: 'pg-tls-exporter',
        args: [`--web.listen-address=127.0.0.1:${port}`],
        env: {
          DATA_SOURCE_URI: uri,
          DATA_SOURCE_USER: 'monitor',
          DATA_SOURCE_PASS: PASSWORDS.monitor,
        },
        readOnlyMounts: [h.caFile],
      }),
    );
    const up = await eventually(
      'pg_up from the exporter',
      async () => {
        try {
          const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
          return /^pg_up 1$/m.test(text) ? true : undefined;
        } catch {
          return undefined;
        }
      },
      30_000,
      500,
    );
    expect(up).toBe(true);
    const rows = await sql<{ ssl: boolean }>(
      primary.pgPort,
      "SELECT s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.usename = 'monitor'",
    );
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(r.ssl).toBe(true);
  });

  it("serves Patroni's REST API over HTTPS only, verifiable by name", async () => {
    const ok = await restGet(primary, '/patroni', TEST_CA.cert);
    expect(ok.status).toBe(200);
    // Patroni 4 names the leader's role `primary` (3.x said `master`).
    expect(JSON.parse(ok.body)).toMatchObject({ state: 'running', role: 'primary' });
    await expect(restGet(primary, '/patroni')).rejects.toThrow(/self-signed|issuer|verify/i);
    // Plain HTTP on the same port gets no HTTP answer.
    const plain = await fetch(`http://127.0.0.1:${primary.restPort}/patroni`, {
      signal: AbortSignal.timeout(2000),
    }).then(
      (r) => r.status,
      () => 'refused',
    );
    expect(plain).not.toBe(200);
  });

  it('rotates the certificate without a restart: an open connection keeps its session', async () => {
    const before = servedSerial(primary.pgPort);
    const restBefore = await restSerial(primary);
    const app = await appClient(h, primary, { ca: TEST_CA.cert, servername: 'localhost' });
    const pid = (await app.query('SELECT pg_backend_pid() AS pid')).rows[0] as { pid: number };
    const postmasterStart = await sql<{ t: string }>(
      primary.pgPort,
      'SELECT pg_postmaster_start_time()::text AS t',
    );

    // A renewed key pair, swapped in as the kubelet updates a Secret volume: new files,
    // then one rename.
    const tlsDir = join(h.dir, 'tls-0');
    const current = certInfo(readFileSync(join(tlsDir, TLS_FILES.cert), 'utf8'))!;
    const renewed = await issueServerCert(TEST_CA, [...current.dnsNames], new Date());
    writeFileSync(join(tlsDir, 'next.crt'), renewed.cert);
    writeFileSync(join(tlsDir, 'next.key'), renewed.key, { mode: 0o600 });
    for (const f of ['next.crt', 'next.key']) chownSync(join(tlsDir, f), ENGINE_UID, ENGINE_UID);
    const t0 = Date.now();
    renameSync(join(tlsDir, 'next.key'), join(tlsDir, TLS_FILES.key));
    renameSync(join(tlsDir, 'next.crt'), join(tlsDir, TLS_FILES.cert));

    const after = await eventually(
      'Postgres serving the renewed certificate',
      async () => {
        const s = servedSerial(primary.pgPort);
        return s !== before ? s : undefined;
      },
      30_000,
      250,
    );
    numbers['rotationSeconds'] = (Date.now() - t0) / 1000;
    numbers['reloadCheckSeconds'] = TLS_RELOAD_TEST_SECONDS;
    expect(after).toBe(certInfo(renewed.cert)!.serial);
    // Patroni reloaded its REST API's certificate on the same SIGHUP.
    await eventually(
      'the REST API serving the renewed certificate',
      async () => ((await restSerial(primary)) !== restBefore ? true : undefined),
      30_000,
      250,
    );
    // The open connection kept its backend (no reconnect) and still works over TLS.
    const still = (await app.query('SELECT pg_backend_pid() AS pid')).rows[0] as { pid: number };
    expect(still.pid).toBe(pid.pid);
    await app.end();
    // Postgres was reloaded, not restarted; the replica still streams.
    expect(
      await sql<{ t: string }>(primary.pgPort, 'SELECT pg_postmaster_start_time()::text AS t'),
    ).toEqual(postmasterStart);
    const streaming = await sql<{ n: string }>(
      primary.pgPort,
      "SELECT count(*) AS n FROM pg_stat_replication WHERE state = 'streaming'",
    );
    expect(streaming[0]?.n).toBe('1');
  });

  // Last in this group: the primary ends up serving another CA's certificate.
  it("a CA move reaches the SDK's verify-full pool without a restart: its next connections trust the mounted bundle of the moment (issue 36)", async () => {
    const vol = caVolume(TEST_CA.cert);
    try {
      // What the SDK's pools were given when the app started, before the move.
      const ssl = { ...pgSsl({ mode: 'verify-full', caFile: vol.file }), servername: 'localhost' };
      const connects = async () => {
        const c = await appClient(h, primary, ssl);
        await c.end();
        return true;
      };
      expect(await connects()).toBe(true);

      // Step 1: the new CA joins the app's bundle; the operator holds the step until every
      // pod sees it, here until the SDK's copy does (its poll).
      const ca2 = await issueCa('engine-test CA 2', new Date());
      vol.swap(joinBundle([TEST_CA.cert, ca2.cert]));
      await eventually(
        'the SDK to see the bundle',
        async () => (liveCa(vol.file)[0]?.includes(ca2.cert.trim()) ? true : undefined),
        60_000,
        250,
      );
      // Step 2: the primary serves a certificate from the new CA.
      const before = servedSerial(primary.pgPort);
      const tlsDir = join(h.dir, 'tls-0');
      const current = certInfo(readFileSync(join(tlsDir, TLS_FILES.cert), 'utf8'))!;
      const moved = await issueServerCert(ca2, [...current.dnsNames], new Date());
      writeFileSync(join(tlsDir, 'next.crt'), moved.cert);
      writeFileSync(join(tlsDir, 'next.key'), moved.key, { mode: 0o600 });
      for (const f of ['next.crt', 'next.key']) chownSync(join(tlsDir, f), ENGINE_UID, ENGINE_UID);
      renameSync(join(tlsDir, 'next.key'), join(tlsDir, TLS_FILES.key));
      renameSync(join(tlsDir, 'next.crt'), join(tlsDir, TLS_FILES.cert));
      await eventually(
        'Postgres serving the new CA certificate',
        async () => (servedSerial(primary.pgPort) !== before ? true : undefined),
        30_000,
        250,
      );
      // Negative control: a client that read the old ca.crt once is refused now.
      expect(await refusal(h, primary, { ca: TEST_CA.cert, servername: 'localhost' })).toMatch(
        /certificate/i,
      );
      // The pool's next connection, with the options it was given before the move.
      expect(await connects()).toBe(true);

      // Step 3: the old CA leaves the bundle.
      vol.swap(ca2.cert);
      await eventually(
        'the SDK to drop the old CA',
        async () => (liveCa(vol.file)[0]?.includes(TEST_CA.cert.trim()) ? undefined : true),
        60_000,
        250,
      );
      expect(await connects()).toBe(true);
    } finally {
      forgetCa(vol.file);
      vol.remove();
    }
  });
});

describe('Postgres with tls: false (the opt-out)', () => {
  let h: Harness;
  let m: Member;

  beforeAll(async () => {
    h = await startDatabase('pg-plain', { replicasPerShard: 0, tls: false });
    m = await eventually('a primary', async () => h.primaryOf(0), 120_000, 500);
  });
  afterAll(async ({}, suite) => h?.stop(suite));

  it('accepts plain TCP and offers no TLS', async () => {
    const c = await appClient(h, m, false);
    expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await c.end();
    expect(await refusal(h, m, { ca: TEST_CA.cert, servername: 'localhost' })).toMatch(
      /does not support SSL/,
    );
  });
});
