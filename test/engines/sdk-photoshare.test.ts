// The sample app, examples/photoshare, run as its image runs it (node src/web.ts and
// node src/worker.ts on Node 22) against the engine harnesses: Patroni (one shard, a
// primary and a replica) behind Service stand-ins, the cache and session Redis as
// rendered, and a queue Redis. Requests go through its HTTP routes; the thumbnail is made
// by the worker; a login survives a restart of the web process; a user reads their own
// writes while the replica lags.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseShardMap } from '../../sdk/src/index.ts';
import type { ShardMap } from '../../sdk/src/index.ts';
import { appSecretName } from '../../operator/tiers/database/names.ts';
import { solidPng } from '../../examples/photoshare/src/thumbnail.ts';
import { PASSWORDS, eventually, freePort, sql, startDatabase } from './patroni-harness.ts';
import type { Harness as PgHarness } from './patroni-harness.ts';
import {
  Harness as RedisHarness,
  PASSWORDS as REDIS_PASSWORDS,
  USERS_SECRET,
  configMapData,
} from './redis-harness.ts';
import { holdReplay, patientSql, serviceProxies, writeConfigMapVolume } from './sdk-db-harness.ts';
import type { ServiceProxies } from './sdk-db-harness.ts';
import { podEnv, renderApp, runNode } from './sdk-harness.ts';
import type { Child } from './sdk-harness.ts';

const WEB = fileURLToPath(new URL('../../examples/photoshare/src/web.ts', import.meta.url));
const WORKER = fileURLToPath(new URL('../../examples/photoshare/src/worker.ts', import.meta.url));

let pgh: PgHarness;
const rh = new RedisHarness();
let proxies: ServiceProxies;
let mapDir: string;
let webPort: number;
let env: Record<string, string>;
let rendered: ShardMap;
const children: Child[] = [];

function start(file: string, extra: Record<string, string>): Child {
  const c = runNode(file, { ...env, ...extra });
  children.push(c);
  return c;
}

// A replica connect that times out sends the read to the primary, which has every write: on a
// loaded machine (a TLS handshake past the 1 s default) read-your-writes would then pass with
// the feature broken. A patient replica connect keeps the reads on the held replica.
const startWeb = () =>
  start(WEB, { PORT: String(webPort), DATABASE_REPLICA_CONNECT_TIMEOUT_MS: '60000' });

async function http(
  method: string,
  path: string,
  body?: unknown,
  cookie?: string,
): Promise<{ status: number; json: unknown; cookie?: string; bytes: Buffer }> {
  const res = await fetch(`http://127.0.0.1:${webPort}${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(cookie ? { cookie } : {}),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  const setCookie = res.headers.get('set-cookie')?.split(';')[0];
  const json = res.headers.get('content-type')?.includes('json')
    ? JSON.parse(bytes.toString())
    : undefined;
  return { status: res.status, json, bytes, ...(setCookie ? { cookie: setCookie } : {}) };
}

beforeAll(async () => {
  pgh = await startDatabase('sdk-photo', { shards: 1, replicasPerShard: 1, shardKey: 'user_id' }, [
    '127.0.1.40',
    '127.0.1.41',
  ]);
  await eventually(
    'a primary with a streaming replica',
    async () => {
      const p = pgh.primaryOf(0);
      const rows =
        p &&
        (await sql<{ n: string }>(
          p.pgPort,
          "SELECT count(*) AS n FROM pg_stat_replication WHERE state = 'streaming'",
        ));
      return rows?.[0]?.n === '1' ? true : undefined;
    },
    150_000,
    500,
  );
  const cm = JSON.parse(
    pgh.kubectl(['-n', pgh.ns, 'get', 'configmap', 'shop-shard-map', '-o', 'json']),
  ) as { data: Record<string, string> };
  rendered = parseShardMap(cm.data['shard-map.json'] ?? '');
  const pgPort = await freePort();
  proxies = serviceProxies(pgh);
  await proxies.add('shop-db-0', '127.0.1.40', pgPort);
  await proxies.add('shop-db-0-ro', '127.0.1.41', pgPort);
  mapDir = mkdtempSync(join(tmpdir(), 'photoshare-map-'));
  writeConfigMapVolume(mapDir, {
    'shard-map.json': JSON.stringify({
      ...rendered,
      shards: [
        { ...rendered.shards[0], primary: '127.0.1.40', replicas: '127.0.1.41', port: pgPort },
      ],
    }),
  });

  await rh.init();
  const { objects } = renderApp(
    { cache: { memory: '32Mi' }, sessions: {}, database: { shardKey: 'user_id' } },
    'shop',
    pgh.ns,
  );
  const cache = await rh.start(
    'cache',
    'start-redis.sh',
    configMapData(objects, 'shop-cache-config'),
  );
  const sessions = await rh.start(
    'sessions',
    'start-redis.sh',
    configMapData(objects, 'shop-sessions-config'),
  );
  // No queue tier yet (issue 12): its store is specified as the session store's config.
  const queue = await rh.start(
    'queue',
    'start-redis.sh',
    configMapData(objects, 'shop-sessions-config'),
  );
  env = {
    ...podEnv(objects, {
      secrets: {
        'shop-cache-users': USERS_SECRET,
        'shop-sessions-users': USERS_SECRET,
        [appSecretName(pgh.app)]: PASSWORDS.app,
      },
      values: {
        [`rediss://shop-cache.${pgh.ns}.svc:6379/0`]: `rediss://127.0.0.1:${cache.port}/0`,
        [`rediss://shop-sessions.${pgh.ns}.svc:6379/0`]: `rediss://127.0.0.1:${sessions.port}/0`,
        '/etc/scalable/shard-map/shard-map.json': join(mapDir, 'shard-map.json'),
        '/etc/scalable/ca/database-ca/ca.crt': pgh.caFile,
      },
      caFile: rh.caFile,
    }),
    SESSION_SECRET: 'photoshare-test-secret',
    QUEUE_URL: `rediss://127.0.0.1:${queue.port}/0`,
    QUEUE_SSLROOTCERT: rh.caFile,
    QUEUE_USERNAME: 'app',
    QUEUE_PASSWORD: REDIS_PASSWORDS.app,
  };
  webPort = await freePort();
});

afterAll(async ({}, suite) => {
  for (const c of children) c.proc.kill('SIGKILL');
  await proxies?.close();
  await rh.cleanup();
  await pgh?.stop(suite);
  if (mapDir) rmSync(mapDir, { recursive: true, force: true });
});

describe('photoshare on the engine harnesses', () => {
  it('signs up, posts a photo, gets its thumbnail from the worker, and stays logged in across a web restart', async () => {
    let web = startWeb();
    await eventually('the web to answer', async () => {
      if (web.proc.exitCode !== null) throw new Error(`web exited:\n${web.log()}`);
      return (await http('GET', '/healthz').catch(() => undefined))?.status === 200
        ? true
        : undefined;
    });
    start(WORKER, {
      QUEUE_STREAM: 'photoshare.thumbnails',
      QUEUE_GROUP: 'thumbnails',
      QUEUE_CONSUMER: 'photoshare-worker-0',
      QUEUE_DEAD_LETTER_STREAM: 'photoshare.thumbnails.dead',
      QUEUE_MAX_DELIVERIES: '3',
    });

    // Replication lag made certain, not left to the machine's speed: the replica replays
    // nothing written from here until release. A user who signs up must still find themself.
    const hold = await holdReplay(pgh, 0, rendered.database);
    let userId: string;
    let cookie: string;
    let photoId: string;
    try {
      const signup = await http('POST', '/signup', { name: 'ada', password: 'pw-1' });
      expect(signup.status).toBe(201);
      userId = (signup.json as { userId: string }).userId;
      cookie = signup.cookie!;
      expect(cookie).toMatch(/^connect\.sid=/);
      expect(await http('GET', '/me', undefined, cookie)).toMatchObject({
        status: 200,
        json: { userId, name: 'ada' },
      });
      expect((await http('GET', '/me')).status).toBe(401);

      const post = await http(
        'POST',
        '/photos',
        { caption: 'sunset', png: solidPng(320, 200, [250, 120, 30, 255]).toString('base64') },
        cookie,
      );
      expect(post.status).toBe(201);
      photoId = (post.json as { photoId: string }).photoId;
      // The author sees the new photo at once (refreshed through their session into the cache).
      const first = (await http('GET', `/users/${userId}/photos`)).json as { photoId: string }[];
      expect(first.map((p) => p.photoId)).toEqual([photoId]);
      // The control: the replica the reads would have gone to has neither the user nor the photo.
      const onReplica = await patientSql<{ users: number; photos: number }>(
        hold.replica.pgPort,
        `SELECT (SELECT count(*) FROM users WHERE user_id = $1)::int AS users,
                (SELECT count(*) FROM photos WHERE user_id = $1)::int AS photos`,
        [userId],
        rendered.database,
      );
      expect(onReplica).toEqual([{ users: 0, photos: 0 }]);
    } finally {
      await hold.release();
    }

    const thumb = await eventually('the worker to make the thumbnail', async () => {
      const r = await http('GET', `/users/${userId}/photos/${photoId}/thumbnail`);
      return r.status === 200 ? r.bytes : undefined;
    });
    const png = PNG.sync.read(thumb);
    expect([png.width, png.height]).toEqual([64, 40]);
    expect([...png.data.subarray(0, 4)]).toEqual([250, 120, 30, 255]);
    // The worker stores the thumbnail, then refreshes the cached timeline: the second step
    // lands a moment after the first is visible (the worker's own cache round trip).
    await eventually('the cached timeline to show the thumbnail', async () => {
      const timeline = (await http('GET', `/users/${userId}/photos`)).json as {
        thumbnail: boolean;
      }[];
      return timeline[0]?.thumbnail === true ? true : undefined;
    });

    // Restart the web process: the session lives in Redis, not in the process.
    web.proc.kill('SIGTERM');
    await web.exited;
    web = startWeb();
    await eventually('the restarted web to answer', async () =>
      (await http('GET', '/healthz').catch(() => undefined))?.status === 200 ? true : undefined,
    );
    expect((await http('GET', '/me', undefined, cookie)).json).toEqual({ userId, name: 'ada' });
    expect((await http('POST', '/logout', undefined, cookie)).status).toBe(204);
    expect((await http('GET', '/me', undefined, cookie)).status).toBe(401);
  });
});
