// Redis TLS as rendered (the default): the replicated cache (two Redis, three Sentinels)
// started from the ConfigMap with certificates issued by the operator's x509 module. Only
// TLS is served, on the ports the Services name; a client must verify the server against
// the CA and by name; replication and Sentinel run over TLS; a renewed certificate is
// picked up by Redis (CONFIG SET, connections kept) and by Sentinel (restart in place)
// while the app's client keeps working.
import { connect as tlsConnect } from 'node:tls';
import { createConnection } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Harness,
  PASSWORD,
  client,
  envOf,
  info,
  sentinelAppClient,
  sleep,
  tlsOptions,
  waitFor,
} from './redis-harness.ts';
import type { Instance } from './redis-harness.ts';
import { portOf, startReplicated } from './redis-replicated.ts';
import type { ReplicatedRedis } from './redis-replicated.ts';
import { renderApp } from './sdk-harness.ts';

const { objects } = renderApp({ cache: { memory: '32Mi', replicas: 1 } });
const valueOf = (env: ReturnType<typeof envOf>, name: string) => {
  const v = env.find((e) => e.name === name)?.value;
  if (v === undefined) throw new Error(`no ${name}`);
  return v;
};
const MASTER = valueOf(envOf(objects, 'StatefulSet', 'shop-cache'), 'MASTER_NAME');
/** The renewal check's period, shortened from the pods' 30 s default for the test. */
const RELOAD = { TLS_RELOAD_SECONDS: '1' };

const h = new Harness();
let store: ReplicatedRedis;
let redis: Instance[] = [];
let sentinels: Instance[] = [];
const disconnect: Array<() => void> = [];

beforeAll(async () => {
  await h.init();
  store = await startReplicated(h, objects, 'shop-cache', 1, RELOAD);
  ({ redis, sentinels } = store);
});

afterAll(async () => {
  for (const d of disconnect) d();
  await h.cleanup();
});

/** The certificate a TLS handshake on this port presents (serial), verified as `servername`. */
function servedSerial(port: number, servername = 'localhost'): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername, ...tlsOptions() }, () => {
      const serial = new X509Certificate(s.getPeerX509Certificate()?.raw ?? Buffer.alloc(0))
        .serialNumber;
      s.end();
      resolve(serial);
    });
    s.on('error', reject);
  });
}

/** A client that gives up at once: what a handshake or a plain connection gets. */
async function tryPing(port: number, extra: Record<string, unknown>): Promise<string> {
  const c = new Redis({
    host: '127.0.0.1',
    port,
    username: 'admin',
    password: PASSWORD,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 2000,
    lazyConnect: true,
    ...extra,
  });
  // ioredis reports the handshake's own error as an event; the command only sees the close.
  let why = '';
  c.on('error', (e: Error) => (why ||= e.message));
  try {
    await c.connect();
    return await c.ping();
  } catch (e) {
    return `refused: ${why || (e as Error).message}`;
  } finally {
    c.disconnect();
  }
}

/** Bytes a plain TCP client gets back for a PING: Redis's TLS port answers with nothing usable. */
function plainPing(port: number): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const s = createConnection({ host: '127.0.0.1', port }, () => s.write('PING\r\n'));
    s.on('data', (d) => (got += d.toString('latin1')));
    s.on('error', () => resolve(got));
    s.on('close', () => resolve(got));
    setTimeout(() => {
      s.destroy();
      resolve(got);
    }, 2000);
  });
}

describe('Redis and Sentinel over TLS, from the rendered ConfigMap', () => {
  it('serves TLS only: a plain TCP client gets no PONG from Redis or Sentinel', async () => {
    for (const port of [redis[0]?.port ?? 0, sentinels[0]?.port ?? 0]) {
      expect(await plainPing(port)).not.toContain('PONG');
      expect(await tryPing(port, {})).toMatch(/^refused/);
    }
  });

  it('refuses a client without the CA, and one that expects another name', async () => {
    const port = redis[0]?.port ?? 0;
    // Verified against the CA and named as connected (127.0.0.1 is in the test certificate).
    expect(await tryPing(port, { tls: tlsOptions() })).toBe('PONG');
    // No CA: the system's CAs do not know the operator's.
    expect(await tryPing(port, { tls: { rejectUnauthorized: true } })).toMatch(
      /refused: .*(self-signed|unable to verify|local issuer)/i,
    );
    // The right CA, the wrong name.
    expect(
      await tryPing(port, { tls: { ...tlsOptions(), servername: 'shop-db.prod.svc' } }),
    ).toMatch(/refused: .*(altnames|does not match|Hostname)/i);
  });

  it('replicates over TLS (the plain port is closed, so the link is TLS)', async () => {
    const m = client(redis[0]?.port ?? 0);
    const rep = client(redis[1]?.port ?? 0);
    disconnect.push(
      () => m.disconnect(),
      () => rep.disconnect(),
    );
    expect(await m.config('GET', 'port')).toEqual(['port', '0']);
    expect(await m.config('GET', 'tls-replication')).toEqual(['tls-replication', 'yes']);
    await waitFor('the replica to sync', 30_000, async () => {
      return (await info(rep, 'replication'))['master_link_status'] === 'up';
    });
    await m.set('over-tls', 'yes');
    expect(await m.call('WAIT', '1', '2000')).toBe(1);
    expect((await info(rep, 'replication'))['master_link_status']).toBe('up');
    expect(await rep.get('over-tls')).toBe('yes');
  });

  it('picks up a renewed certificate: Redis keeps its connections, Sentinel restarts in place, the app keeps working', async () => {
    const app = sentinelAppClient(
      valueOf(envOf(objects, 'Deployment', 'shop-web'), 'REDIS_SENTINELS')
        .split(',')
        .map((a) => store.toLoopback(a))
        .map((a) => ({ host: a.slice(0, a.lastIndexOf(':')), port: portOf(a) })),
      MASTER,
    );
    disconnect.push(() => app.disconnect());
    await app.set('before', '1');
    const idBefore = await app.client('ID');
    const redisPort = redis[0]?.port ?? 0;
    const sentinelPort = sentinels[0]?.port ?? 0;
    const oldSerial = await servedSerial(redisPort);
    expect(await servedSerial(sentinelPort)).toBe(oldSerial);

    // The app writes every 50 ms throughout the renewal.
    let stop = false;
    let failures = 0;
    let acked = 0;
    const writer = (async () => {
      for (let n = 0; !stop; n++) {
        try {
          await app.set(`renewal:${n}`, String(n));
          acked++;
        } catch {
          failures++;
        }
        await sleep(50);
      }
    })();

    const renewed = await h.issueServerCert();
    const newSerial = new X509Certificate(renewed).serialNumber;
    expect(newSerial).not.toBe(oldSerial);
    for (const [what, port] of [
      ['Redis master', redisPort],
      ['Redis replica', redis[1]?.port ?? 0],
      ...sentinels.map((s) => [s.name, s.port] as const),
    ] as const)
      await waitFor(`${what} to serve the renewed certificate`, 20_000, async () => {
        return (await servedSerial(port)) === newSerial;
      });
    await sleep(1000);
    stop = true;
    await writer;
    console.log(
      `renewal: ${acked} writes acknowledged, ${failures} failed while Redis reloaded and the Sentinels restarted`,
    );
    // Redis reloaded without dropping the app's connection; every write went through.
    expect(await app.client('ID')).toBe(idBefore);
    expect(failures).toBe(0);
    expect(acked).toBeGreaterThan(20);
    expect(redis[0]?.log).toContain('reloaded the renewed certificate');
    for (const s of sentinels) expect(s.log).toContain('certificate renewed, restarting Sentinel');
    // The Sentinels still agree on the master and answer over TLS with the new certificate.
    const sc = client(sentinelPort);
    disconnect.push(() => sc.disconnect());
    const [host, port] = (await sc.call('SENTINEL', 'get-master-addr-by-name', MASTER)) as string[];
    expect(`${host}:${port}`).toBe(`127.0.0.1:${redisPort}`);
    // A new client (new handshake) works too.
    expect(await tryPing(redisPort, { tls: tlsOptions() })).toBe('PONG');
  });
});
