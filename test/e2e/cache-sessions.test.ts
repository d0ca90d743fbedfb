// The Redis tiers on kind: the cache (a master, one replica, three Sentinels, TLS) reached with
// only the web env, its eviction policy and its failover; the persistent session store across a
// pod deletion. On the shared sample app (support/app.ts), which has the cache.
import { describe, expect, it } from 'vitest';
import { quietCluster, seconds, useSharedApp } from './support/app.ts';
import {
  eventually,
  getJson,
  kubectl,
  nodeScript,
  podReady,
  pods,
  type Pod,
} from './support/kube.ts';
import { redisScript } from './support/redis.ts';
import { record } from './support/results.ts';

// The cache: 64Mi, allkeys-lfu, one replica (support/app.ts SHARED_TIERS).
const { namespace: NS, name: APP, client: CLIENT } = useSharedApp();

describe('the cache and the session store on kind', () => {
  it('cache: a pod with only the web env reaches the cache with its password; maxmemory-policy as asked', async () => {
    const out = await nodeScript(
      NS,
      CLIENT,
      redisScript(`
        const r = cache();
        await r.set('e2e:k', 'v', 'EX', 60);
        const v = await r.get('e2e:k');
        // INFO, not CONFIG GET: the app's ACL user may not run CONFIG (issue 36).
        const memory = (await r.info('memory')).split(String.fromCharCode(10));
        const line = memory.find((l) => l.startsWith('maxmemory_policy:')) ?? '';
        const policy = ['maxmemory-policy', line.slice('maxmemory_policy:'.length).trim()];
        // Sentinel answers it (its app user), the master then gets no credentials: NOAUTH.
        const anon = new Redis({ sentinels, name: process.env.REDIS_MASTER_NAME, sentinelUsername: username, sentinelPassword: password, ...tls, connectTimeout: 3000, maxRetriesPerRequest: 1 });
        const denied = await anon.get('e2e:k').then(() => 'allowed', (e) => String(e.message));
        // A plain-TCP client: the Sentinel's port speaks TLS only, so PING gets no answer.
        const plain = new Redis({ host: sentinels[0].host, port: sentinels[0].port, password, connectTimeout: 3000, maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
        plain.on('error', () => {});
        const plainAnswer = await Promise.race([
          plain.connect().then(() => plain.ping()).then((p) => String(p), (e) => 'refused: ' + e.message),
          new Promise((res) => setTimeout(() => res('no answer'), 5000)),
        ]);
        plain.disconnect(); anon.disconnect(); r.disconnect();
        console.log(JSON.stringify({ v, policy, denied, urls: [process.env.SESSION_REDIS_URL, process.env.QUEUE_URL], plainAnswer }));`),
    );
    const got = JSON.parse(out) as {
      v: string;
      policy: string[];
      denied: string;
      urls: string[];
      plainAnswer: string;
    };
    expect(got.v).toBe('v');
    expect(got.policy).toEqual(['maxmemory-policy', 'allkeys-lfu']);
    expect(got.denied, 'a client without the password').toMatch(/NOAUTH|WRONGPASS|Authentication/i);
    // Encryption in transit: every Redis URL the app gets says TLS, and plain TCP gets no PONG.
    for (const url of got.urls) expect(url).toMatch(/^rediss:\/\//);
    expect(got.plainAnswer).not.toBe('PONG');
  });

  it('sessions: a session written before the sessions pod is deleted is read after it comes back (PVC)', async () => {
    const value = `session-${Date.now()}`;
    await nodeScript(
      NS,
      CLIENT,
      redisScript(
        `const s = sessions(); await s.set('e2e:session', ${JSON.stringify(value)}); s.disconnect();`,
      ),
    );
    const [pod] = await pods(NS, `scalable.dev/app=${APP},scalable.dev/tier=sessions`);
    if (!pod) throw new Error('no sessions pod');
    const uid = pod.metadata.uid;
    await kubectl(['delete', 'pod', pod.metadata.name, '-n', NS]);
    await eventually(
      'the sessions pod replaced and Ready',
      async () => {
        const p = await getJson<Pod>(['get', 'pod', pod.metadata.name, '-n', NS]);
        return p.metadata.uid !== uid && podReady(p) ? true : undefined;
      },
      300_000,
      1000,
    );
    const got = await eventually('the session read back', async () =>
      (
        await nodeScript(
          NS,
          CLIENT,
          redisScript(
            `const s = sessions(); console.log(JSON.stringify(await s.get('e2e:session'))); s.disconnect();`,
          ),
        )
      ).trim(),
    );
    expect(JSON.parse(got)).toBe(value);
  });

  it('cache: deleting the master pod -> Sentinel promotes the replica and the client writes again', async () => {
    // Timed: with no other e2e file's app busy on the cluster.
    await quietCluster([NS]);
    const master = JSON.parse(
      await nodeScript(
        NS,
        CLIENT,
        redisScript(`
        const s = sentinel(0);
        console.log(JSON.stringify(await s.call('SENTINEL', 'get-master-addr-by-name', process.env.REDIS_MASTER_NAME))); s.disconnect();`),
      ),
    ) as [string, string];
    const podName = master[0].split('.')[0] ?? '';
    expect(podName).toMatch(new RegExp(`^${APP}-cache-\\d$`));
    const deletedAt = Date.now();
    await kubectl(['delete', 'pod', podName, '-n', NS, '--wait=false']);
    const out = await nodeScript(
      NS,
      CLIENT,
      redisScript(`
      const old = ${JSON.stringify(master[0])};
      const deadline = Date.now() + 180000;
      let result;
      while (Date.now() < deadline) {
        const r = cache();
        r.on('error', () => {});
        try {
          await r.set('e2e:after-failover', '1');
          const info = await r.info('replication');
          const s = sentinel(1);
          const [host] = await s.call('SENTINEL', 'get-master-addr-by-name', process.env.REDIS_MASTER_NAME);
          s.disconnect();
          if (host !== old && /role:master/.test(info)) { result = { host }; r.disconnect(); break; }
        } catch {}
        r.disconnect();
        await new Promise((res) => setTimeout(res, 250));
      }
      console.log(JSON.stringify(result ?? null));`),
    );
    const took = Date.now() - deletedAt;
    const promoted = JSON.parse(out) as { host: string } | null;
    expect(
      promoted,
      `a write accepted by a master other than ${master[0]} within 180 s`,
    ).not.toBeNull();
    record({
      name: 'failover: Redis cache master deleted -> client writes to the new master',
      value: seconds(took),
      note: `${podName} -> ${promoted?.host.split('.')[0] ?? '?'}`,
    });
  });
});
