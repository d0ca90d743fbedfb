// The SDK's Redis clients across a CA move (docs/security.md, "A CA per app"): the
// operator first adds the new CA to the app's mounted ca.crt, then serves certificates from
// it, then drops the old CA. An app process started before the move must make its next
// connections with the bundle of that moment, without a restart: the cache and queue
// client (ioredis, redisClient) and the session store (node-redis, Sessions). The real
// Redis image serves the certificates; the kubelet's volume swap is ca-volume.ts.
import { X509Certificate } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACL_USERS } from '../../operator/engines/redis/config.ts';
import { certInfo, issueCa, joinBundle } from '../../operator/tiers/shared/tls/x509.ts';
import type { KeyPair } from '../../operator/tiers/shared/tls/x509.ts';
import { forgetCa, liveCa } from '../../sdk/src/ca-file.ts';
import { redisClient } from '../../sdk/src/redis.ts';
import { Sessions } from '../../sdk/src/sessions.ts';
import { caVolume } from './ca-volume.ts';
import type { CaVolume } from './ca-volume.ts';
import { Harness, PASSWORDS, client, configMapData, waitFor } from './redis-harness.ts';
import type { Instance } from './redis-harness.ts';
import { renderApp } from './sdk-harness.ts';

const { objects } = renderApp({ cache: { memory: '32Mi', replicas: 0 } });
const data = configMapData(objects, 'shop-cache-config');

const h = new Harness();
let redis: Instance;
let ca2: KeyPair;
let vol: CaVolume;
let admin: Redis;
const closers: Array<() => unknown> = [];

beforeAll(async () => {
  await h.init();
  // The reload loop of the pod's start script, every second instead of 30.
  redis = await h.start('ca-move', 'start-redis.sh', data, { TLS_RELOAD_SECONDS: '1' });
  ca2 = await issueCa('engine-test CA 2', new Date());
  vol = caVolume(h.ca!.cert);
  // The test's own view trusts both CAs, so it can watch the server through the move.
  admin = client(redis.port, { tls: { ca: [h.ca!.cert, ca2.cert], rejectUnauthorized: true } });
}, 180_000);

afterAll(async () => {
  for (const c of closers) await c();
  admin?.disconnect();
  if (vol) {
    forgetCa(vol.file);
    vol.remove();
  }
  await h.cleanup();
});

/** The serial of the certificate the server presents now (verified with `ca`). */
function servedSerial(port: number, ca: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca }, () => {
      const raw = s.getPeerX509Certificate()?.raw ?? Buffer.alloc(0);
      s.end();
      resolve(new X509Certificate(raw).serialNumber);
    });
    s.on('error', reject);
  });
}

/** What a handshake trusting only `ca` gets from the server now. */
function handshake(port: number, ca: string): Promise<string> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca }, () => {
      s.end();
      resolve('accepted');
    });
    s.on('error', (e: Error) => resolve(e.message));
  });
}

/** Closes every connection of the app user: the clients' next command needs a handshake. */
const killAppConnections = () => admin.call('CLIENT', 'KILL', 'USER', ACL_USERS.app.user);

describe('the SDK across a CA move: new connections trust the mounted bundle of the moment', () => {
  it('ioredis (cache, queue) and node-redis (sessions) reconnect through all three steps without a restart', async () => {
    const url = `rediss://localhost:${redis.port}`;
    const auth = { username: ACL_USERS.app.user, password: PASSWORDS.app };
    // Made before the move, as an app pod started before it makes them.
    const cache = redisClient(
      { kind: 'url', url, ...auth, tls: { caFile: vol.file } },
      { maxRetriesPerRequest: 1, retryStrategy: () => 200 },
    );
    cache.on('error', () => undefined);
    closers.push(() => cache.disconnect());
    const sessions = await Sessions.open({ url, ...auth, ca: liveCa(vol.file), ttlSeconds: 60 });
    closers.push(() => sessions.close());
    const ids = async () => ({
      cache: Number(await cache.call('CLIENT', 'ID')),
      sessions: Number(await sessions.client.sendCommand(['CLIENT', 'ID'])),
    });
    const before = await ids();

    /** After the kill: both clients answer again, each on a new connection. */
    const reconnected = async (what: string, last: { cache: number; sessions: number }) => {
      let now: { cache: number; sessions: number } | undefined;
      await waitFor(`${what}: both SDK clients answering on new connections`, 90_000, async () => {
        now = await ids();
        return now.cache !== last.cache && now.sessions !== last.sessions;
      });
      return now!;
    };

    // Step 1: the new CA joins the app's bundle (the kubelet swaps the file in).
    vol.swap(joinBundle([h.ca!.cert, ca2.cert]));
    // The operator holds each step long enough for every pod to see it; here: until the
    // SDK's copy shows it (its poll, CA_POLL_MS).
    await waitFor(
      'the SDK to see the bundle',
      60_000,
      async () => liveCa(vol.file)[0]?.includes(ca2.cert.trim()) ?? false,
    );

    // Step 2: the server's certificate from the new CA (its reload loop picks it up).
    const issued = certInfo(await h.issueServerCert(['localhost', '127.0.0.1'], ca2))!.serial;
    await waitFor(
      'Redis serving the new CA certificate',
      60_000,
      async () =>
        (await servedSerial(redis.port, [h.ca!.cert, ca2.cert]).catch(() => '')) === issued,
    );
    // Negative control: a process that read the old ca.crt once is refused now.
    expect(await handshake(redis.port, h.ca!.cert)).toMatch(/certificate/i);
    await killAppConnections();
    const afterStep2 = await reconnected('step 2', before);

    // Step 3: the old CA leaves the bundle; new connections still verify.
    vol.swap(ca2.cert);
    await waitFor(
      'the SDK to drop the old CA',
      60_000,
      async () => !liveCa(vol.file)[0]?.includes(h.ca!.cert.trim()),
    );
    await killAppConnections();
    await reconnected('step 3', afterStep2);
    expect(await cache.set('after-the-move', '1')).toBe('OK');
    expect(await sessions.client.get('after-the-move')).toBe('1');
  });
});
