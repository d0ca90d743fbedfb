// One ScalableApp with every stateful tier, running as real pods on kind: the web tier behind
// its Service, Postgres (2 shards x primary + 1 synchronous replica, Patroni), a Redis cache
// with Sentinel, a persistent session store, and the NetworkPolicies around them. Failovers
// are timed into the results file, never asserted on.
import { join } from 'node:path';
import { Watch, KubeConfig } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { appVersion, IMAGE_PREFIX } from './support/images.ts';
import { helm } from './support/kube.ts';
import {
  apply,
  cloneWebPod,
  createNamespace,
  eventually,
  getJson,
  kubeconfig,
  kubectl,
  nodeScript,
  nodeZones,
  podReady,
  pods,
  sleeperPod,
  waitAppReady,
  appConditions,
  readyAsServed,
  type List,
  type Meta,
  type Pod,
} from './support/kube.ts';
import { OPERATOR_NAMESPACE, RELEASE } from './support/cluster.ts';
import { record } from './support/results.ts';
import { run } from '../../devcluster/exec.ts';

const root = join(import.meta.dirname, '..', '..');
const NS = 'e2e-shop';
const APP = 'shop';
const OTHER_NS = 'e2e-outsider';
const image = `${IMAGE_PREFIX}/photoshare:${appVersion(root)}`;
const CLIENT = 'shop-client';

function shopApp(extraWebEnv: { name: string; value: string }[] = []) {
  return {
    apiVersion: 'scalable.dev/v1alpha1',
    kind: 'ScalableApp',
    metadata: { name: APP, namespace: NS },
    spec: {
      web: {
        image,
        env: [
          {
            name: 'SESSION_SECRET',
            valueFrom: { secretKeyRef: { name: 'shop-session', key: 'secret' } },
          },
          ...extraWebEnv,
        ],
        probes: { readinessPath: '/healthz', livenessPath: '/healthz' },
        autoscaling: { minReplicas: 2, maxReplicas: 4 },
      },
      cache: { memory: '64Mi', evictionPolicy: 'allkeys-lfu', replicas: 1 },
      sessions: { ttlSeconds: 86400 },
      database: { shards: 2, replicasPerShard: 1, synchronous: true, shardKey: 'user_id' },
      queue: {
        consumers: [
          {
            name: 'thumbnails',
            image,
            stream: 'shop.thumbnails',
            maxReplicas: 2,
            // Short, so the case sees KEDA wake the worker and put it back to sleep.
            pollingIntervalSeconds: 2,
            cooldownSeconds: 20,
          },
        ],
      },
    },
  };
}

const seconds = (ms: number) => ms / 1000;

describe('a ScalableApp with every tier on kind', () => {
  beforeAll(async () => {
    await createNamespace(NS);
    await createNamespace(OTHER_NS);
    await kubectl([
      'create',
      'secret',
      'generic',
      'shop-session',
      '-n',
      NS,
      '--from-literal=secret=e2e-session-secret-0123456789abcdef',
    ]);
    const start = Date.now();
    await apply(shopApp());
    await waitAppReady(NS, APP);
    record({ name: 'case: app Ready after apply', value: seconds(Date.now() - start) });
    // One of the app's pods (same env as a web pod), not behind the web Service.
    await cloneWebPod(NS, APP, CLIENT, { 'scalable.dev/app': APP });
  });

  it('web: pods Running in >= 2 zones, the sample app answers through the Service, an HPA exists', async () => {
    const zones = await nodeZones();
    const web = (await pods(NS, `scalable.dev/app=${APP},scalable.dev/tier=web`)).filter(podReady);
    const webZones = new Set(web.map((p) => zones.get(p.spec.nodeName ?? '') ?? '?'));
    expect(web.length, 'ready web pods').toBeGreaterThanOrEqual(2);
    expect(
      [...webZones].filter((z) => z.startsWith('zone-')).length,
      `zones of ${web.length} web pods: ${[...webZones].join(', ')}`,
    ).toBeGreaterThanOrEqual(2);

    const reply = await nodeScript(
      NS,
      CLIENT,
      `const r = await fetch('http://${APP}-web.${NS}.svc/healthz');
       console.log(JSON.stringify({ status: r.status, body: await r.json() }));`,
    );
    expect(JSON.parse(reply)).toEqual({ status: 200, body: { ok: true } });

    const hpa = await getJson<{
      spec: { scaleTargetRef: { name: string }; minReplicas: number; maxReplicas: number };
    }>(['get', 'hpa', `${APP}-web`, '-n', NS]);
    expect(hpa.spec).toMatchObject({
      scaleTargetRef: { name: `${APP}-web` },
      minReplicas: 2,
      maxReplicas: 4,
    });
  });

  it('web: a spec change rolls every pod and the Service never has zero ready endpoints', async () => {
    const before = new Set(
      (await pods(NS, `scalable.dev/app=${APP},scalable.dev/tier=web`)).map((p) => p.metadata.name),
    );
    const readyBySlice = new Map<string, number>();
    let minReady = Number.POSITIVE_INFINITY;
    let events = 0;
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig());
    const watch = await new Watch(kc).watch(
      `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices`,
      { labelSelector: `kubernetes.io/service-name=${APP}-web` },
      (
        type: string,
        slice: { metadata: { name: string }; endpoints?: { conditions?: { ready?: boolean } }[] },
      ) => {
        events++;
        if (type === 'DELETED') readyBySlice.delete(slice.metadata.name);
        else
          readyBySlice.set(
            slice.metadata.name,
            (slice.endpoints ?? []).filter((e) => e.conditions?.ready === true).length,
          );
        const total = [...readyBySlice.values()].reduce((a, b) => a + b, 0);
        minReady = Math.min(minReady, total);
      },
      () => undefined,
    );
    try {
      await eventually('the EndpointSlice watch to list the current slices', async () =>
        events > 0 ? true : undefined,
      );
      const start = Date.now();
      await apply(shopApp([{ name: 'E2E_ROLLOUT', value: String(Date.now()) }]));
      await eventually(
        'every web pod replaced by one of the new template, all ready',
        async () => {
          const now = await pods(NS, `scalable.dev/app=${APP},scalable.dev/tier=web`);
          const live = now.filter((p) => !p.metadata.deletionTimestamp);
          const fresh = live.filter((p) => !before.has(p.metadata.name));
          if (live.length >= 2 && fresh.length === live.length && live.every(podReady)) return true;
          throw new Error(
            `${live.length} web pods, ${fresh.length} new, ${live.filter(podReady).length} ready`,
          );
        },
        600_000,
        1000,
      );
      record({ name: 'case: web rollout (2 pods)', value: seconds(Date.now() - start) });
    } finally {
      watch.abort();
    }
    expect(events, 'EndpointSlice events seen').toBeGreaterThan(1);
    expect(
      minReady,
      'fewest ready web endpoints at any moment of the rollout',
    ).toBeGreaterThanOrEqual(1);
  });

  const primaryOf = async (shard: number): Promise<Pod[]> =>
    (await pods(NS, `scalable.dev/cluster=${APP}-db-${shard},scalable.dev/role=master`)).filter(
      (p) => !p.metadata.deletionTimestamp,
    );

  // TLS as the web pods get it (DATABASE_SSLMODE=verify-full, the CA at DATABASE_SSLROOTCERT):
  // node-postgres verifies the certificate against the host name it dials.
  const pgConfig = (host: string) =>
    `{ host: ${JSON.stringify(host)}, port: 5432, user: process.env.DATABASE_USER,
       password: process.env.DATABASE_PASSWORD, database: process.env.DATABASE_NAME,
       ssl: process.env.DATABASE_SSLROOTCERT
         ? { ca: process.getBuiltinModule('node:fs').readFileSync(process.env.DATABASE_SSLROOTCERT, 'utf8') }
         : undefined,
       connectionTimeoutMillis: 3000, query_timeout: 5000 }`;

  const sql = async (host: string, query: string, pod = CLIENT): Promise<unknown[]> =>
    JSON.parse(
      await nodeScript(
        NS,
        pod,
        `import pg from 'pg';
         const c = new pg.Client(${pgConfig(host)});
         await c.connect();
         const r = await c.query(${JSON.stringify(query)});
         await c.end();
         // Several statements give one result each: the last one's rows.
         console.log(JSON.stringify((Array.isArray(r) ? r.at(-1) : r).rows));`,
      ),
    ) as unknown[];

  interface WriterResult {
    acked: number;
    /** The longest time between two acknowledgements (epoch ms: nodes share the host's clock). */
    gap: { ms: number; from: number; to: number };
    failures: number;
  }
  /**
   * `count` single-row inserts into `table` through `host`, from `pod`, each retried on a
   * fresh connection until acknowledged (ON CONFLICT: a commit whose acknowledgement was lost
   * is not an error on retry).
   */
  const writeRows = async (
    host: string,
    table: string,
    count: number,
    pod = CLIENT,
  ): Promise<WriterResult> =>
    JSON.parse(
      await nodeScript(
        NS,
        pod,
        `import pg from 'pg';
         const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
         let client, last = Date.now(), gap = { ms: 0, from: 0, to: 0 }, failures = 0, acked = 0;
         for (let i = 1; i <= ${count}; ) {
           try {
             if (!client) { client = new pg.Client(${pgConfig(host)}); client.on('error', () => {}); await client.connect(); }
             await client.query('INSERT INTO ${table} (id) VALUES ($1) ON CONFLICT (id) DO NOTHING', [i]);
             const now = Date.now();
             if (now - last > gap.ms) gap = { ms: now - last, from: last, to: now };
             last = now; acked++; i++;
             await sleep(20);
           } catch {
             failures++;
             try { await client?.end(); } catch {}
             client = undefined;
             await sleep(250);
           }
         }
         await client?.end();
         console.log(JSON.stringify({ acked, gap, failures }));`,
      ),
    ) as WriterResult;

  it('database: Patroni elects one primary per shard; -rw reaches it, -ro a replica; a row written via -rw is read via -ro', async () => {
    // After the web rollout: every tier ready again (a cold run once caught a replica restarting).
    await waitAppReady(NS, APP);
    for (const shard of [0, 1]) {
      const primaries = await eventually(`one primary in shard ${shard}`, async () => {
        const p = await primaryOf(shard);
        return p.length === 1 ? p : undefined;
      });
      expect(primaries).toHaveLength(1);
      const rw = `${APP}-db-${shard}.${NS}.svc`;
      const ro = `${APP}-db-${shard}-ro.${NS}.svc`;
      expect(await sql(rw, 'SELECT pg_is_in_recovery() AS standby')).toEqual([{ standby: false }]);
      expect(await sql(ro, 'SELECT pg_is_in_recovery() AS standby')).toEqual([{ standby: true }]);
      const marker = `shard-${shard}-${Date.now()}`;
      await sql(
        rw,
        `CREATE TABLE IF NOT EXISTS e2e_rw (v text); INSERT INTO e2e_rw VALUES ('${marker}')`,
      );
      await eventually(`the row written through ${rw} on ${ro}`, async () => {
        const rows = await sql(ro, `SELECT count(*)::int AS n FROM e2e_rw WHERE v = '${marker}'`);
        return JSON.stringify(rows) === '[{"n":1}]' ? true : undefined;
      });
    }
  });

  it('database: the shard map matches the running shards', async () => {
    const cm = await getJson<{ data: Record<string, string> }>([
      'get',
      'configmap',
      `${APP}-shard-map`,
      '-n',
      NS,
    ]);
    const map = JSON.parse(cm.data['shard-map.json'] ?? '{}') as {
      shards: { index: number; primary: string; replicas: string }[];
      ranges: { from: number; to: number; shard: number }[];
      buckets: number;
    };
    const sts = await getJson<
      List<{ metadata: { name: string }; status: { readyReplicas?: number } }>
    >([
      'get',
      'statefulsets',
      '-n',
      NS,
      '-l',
      `scalable.dev/app=${APP},scalable.dev/tier=database`,
    ]);
    const running = sts.items.map((s) => s.metadata.name).sort();
    expect(map.shards.map((s) => `${APP}-db-${s.index}`).sort()).toEqual(running);
    for (const s of map.shards) {
      expect(s.primary).toBe(`${APP}-db-${s.index}.${NS}.svc`);
      expect(s.replicas).toBe(`${APP}-db-${s.index}-ro.${NS}.svc`);
    }
    // Every bucket maps to a running shard, with no gap or overlap.
    const covered = map.ranges.reduce((n, r) => n + (r.to - r.from), 0);
    expect(covered).toBe(map.buckets);
    for (const r of map.ranges) expect(running).toContain(`${APP}-db-${r.shard}`);
    for (const s of sts.items)
      expect(s.status.readyReplicas, `${s.metadata.name} ready pods`).toBe(2);
  });

  it('database: deleting a primary pod -> the replica is promoted, writes resume, 1,000 acknowledged writes all kept', async () => {
    const host = `${APP}-db-0.${NS}.svc`;
    const [old] = await primaryOf(0);
    if (!old) throw new Error('no primary in shard 0');
    await sql(
      host,
      'DROP TABLE IF EXISTS e2e_writes; CREATE TABLE e2e_writes (id int PRIMARY KEY)',
    );
    // The writer: 1,000 inserts, each retried until acknowledged.
    const writer = writeRows(host, 'e2e_writes', 1000);
    await eventually(
      '200 writes before the primary is deleted',
      async () => {
        const [row] = (await sql(host, 'SELECT count(*)::int AS n FROM e2e_writes')) as {
          n: number;
        }[];
        return (row?.n ?? 0) >= 200 ? true : undefined;
      },
      120_000,
      500,
    );
    const deletedAt = Date.now();
    await kubectl(['delete', 'pod', old.metadata.name, '-n', NS, '--wait=false']);
    const promoted = await eventually(
      `a new primary in shard 0 (not ${old.metadata.name})`,
      async () => {
        const [p] = await primaryOf(0);
        return p && p.metadata.name !== old.metadata.name ? p : undefined;
      },
      180_000,
      250,
    );
    record({
      name: 'failover: Postgres primary deleted -> replica promoted',
      value: seconds(Date.now() - deletedAt),
      note: `${old.metadata.name} -> ${promoted.metadata.name}`,
    });
    const result = await writer;
    record({
      name: 'failover: Postgres longest pause between acknowledged writes',
      value: seconds(result.gap.ms),
      note: `${result.failures} failed attempts retried`,
    });
    expect(result.acked).toBe(1000);
    const [count] = (await sql(
      host,
      'SELECT count(*)::int AS n, min(id) AS lo, max(id) AS hi FROM e2e_writes',
    )) as {
      n: number;
      lo: number;
      hi: number;
    }[];
    expect(count, 'rows on the new primary').toEqual({ n: 1000, lo: 1, hi: 1000 });
    // The old primary comes back as a replica of the new one.
    await eventually(
      'shard 0 back to a primary and a streaming replica',
      async () => {
        const all = (await pods(NS, `scalable.dev/cluster=${APP}-db-0`)).filter(podReady);
        const roles = all.map((p) => p.metadata.labels?.['scalable.dev/role']).sort();
        return JSON.stringify(roles) === '["master","replica"]' ? true : undefined;
      },
      300_000,
      2000,
    );
    expect(
      await sql(`${APP}-db-0-ro.${NS}.svc`, 'SELECT count(*)::int AS n FROM e2e_writes'),
    ).toEqual([{ n: 1000 }]);
  });

  const redisScript = (body: string) =>
    `import { readFileSync } from 'node:fs';
     import { Redis } from 'ioredis';
     const password = process.env.REDIS_PASSWORD;
     const sentinels = process.env.REDIS_SENTINELS.split(',').map((s) => { const i = s.lastIndexOf(':'); return { host: s.slice(0, i), port: Number(s.slice(i + 1)) }; });
     // TLS as the web pods' env says: Sentinels and the master verified against the tier's CA.
     const ca = readFileSync(process.env.REDIS_SSLROOTCERT);
     const tls = { tls: { ca }, sentinelTLS: { ca }, enableTLSForSentinelMode: true };
     const cache = () => new Redis({ sentinels, name: process.env.REDIS_MASTER_NAME, password, sentinelPassword: password, ...tls, connectTimeout: 3000, maxRetriesPerRequest: 1, lazyConnect: false });
     const sentinel = (i) => new Redis({ host: sentinels[i].host, port: sentinels[i].port, password, tls: { ca }, connectTimeout: 3000 });
     const sessions = () => { const u = new URL(process.env.SESSION_REDIS_URL); return new Redis({ host: u.hostname, port: Number(u.port || 6379), password: process.env.SESSION_REDIS_PASSWORD, tls: { ca: readFileSync(process.env.SESSION_REDIS_SSLROOTCERT), servername: u.hostname }, connectTimeout: 3000, maxRetriesPerRequest: 1 }); };
     ${body}`;

  it('cache: a pod with only the web env reaches the cache with its password; maxmemory-policy as asked', async () => {
    const out = await nodeScript(
      NS,
      CLIENT,
      redisScript(`
        const r = cache();
        await r.set('e2e:k', 'v', 'EX', 60);
        const v = await r.get('e2e:k');
        const policy = await r.config('GET', 'maxmemory-policy');
        const anon = new Redis({ sentinels, name: process.env.REDIS_MASTER_NAME, sentinelPassword: password, ...tls, connectTimeout: 3000, maxRetriesPerRequest: 1 });
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

  it('queue: a message wakes a worker from zero with the real KEDA; the worker acknowledges it; back to zero after the cooldown', async () => {
    const worker = `${APP}-worker-thumbnails`;
    const deployment = async () =>
      getJson<{ spec: { replicas?: number }; status: { readyReplicas?: number } }>([
        'get',
        'deployment',
        worker,
        '-n',
        NS,
      ]);
    const scaled = await getJson<{
      status?: { conditions?: { type: string; status: string }[] };
    }>(['get', 'scaledobject', worker, '-n', NS]);
    expect(scaled.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    const queueReady = (await appConditions(NS, APP)).find((c) => c.type === 'QueueReady');
    expect(queueReady?.status).toBe('True');
    // Nothing in the stream: KEDA holds the workers at zero.
    await eventually(
      `${worker} at 0 replicas`,
      async () => ((await deployment()).spec.replicas === 0 ? true : undefined),
      180_000,
      2000,
    );
    const workerPods = `scalable.dev/app=${APP},app.kubernetes.io/component=worker-thumbnails`;
    await eventually(
      'no worker pods left',
      async () => ((await pods(NS, workerPods)).length === 0 ? true : undefined),
      120_000,
      2000,
    );

    // One message through the SDK, from a pod with only the web env.
    const start = Date.now();
    const id = await nodeScript(
      NS,
      CLIENT,
      `import { connect } from '@scalable-dev/sdk';
       const sdk = await connect();
       console.log(await sdk.queue.enqueue('shop.thumbnails', { userId: 'e2e-queue', photoId: 'missing' }));
       await sdk.close();`,
    );
    expect(id.trim()).toMatch(/^\d+-\d+$/);
    await eventually(
      `a ready ${worker} pod`,
      async () => (((await deployment()).status.readyReplicas ?? 0) >= 1 ? true : undefined),
      300_000,
      1000,
    );
    const woke = Date.now();
    record({
      name: 'case: queue message -> worker pod ready (from zero, KEDA)',
      value: seconds(woke - start),
    });

    // The group read and acknowledged it (the worker finds no such photo and is done with it).
    const groupState = () =>
      nodeScript(
        NS,
        CLIENT,
        `import { readFileSync } from 'node:fs';
         import { Redis } from 'ioredis';
         const u = new URL(process.env.QUEUE_URL);
         const r = new Redis(process.env.QUEUE_URL, { password: process.env.QUEUE_PASSWORD, tls: { ca: readFileSync(process.env.QUEUE_SSLROOTCERT), servername: u.hostname }, maxRetriesPerRequest: 1 });
         const groups = await r.xinfo('GROUPS', 'shop.thumbnails');
         const g = groups.map((flat) => Object.fromEntries(flat.reduce((a, v, i) => (i % 2 ? a : [...a, [v, flat[i + 1]]]), [])));
         console.log(JSON.stringify(g.map((x) => ({ name: x.name, pending: x.pending, lag: x.lag }))));
         r.disconnect();`,
      ).then((out) => JSON.parse(out) as { name: string; pending: number; lag: number }[]);
    const done = await eventually(
      'the thumbnails group to acknowledge the message',
      async () => {
        const groups = await groupState();
        const g = groups.find((x) => x.name === 'thumbnails');
        return g && g.pending === 0 && g.lag === 0 ? g : undefined;
      },
      120_000,
      1000,
    );
    expect(done).toEqual({ name: 'thumbnails', pending: 0, lag: 0 });
    record({ name: 'case: queue message -> acknowledged', value: seconds(Date.now() - start) });

    // Empty again: after the cooldown KEDA scales the workers back to zero.
    await eventually(
      `${worker} back at 0 replicas`,
      async () => ((await deployment()).spec.replicas === 0 ? true : undefined),
      180_000,
      2000,
    );
    record({
      name: 'case: queue idle -> workers at zero (cooldown 20 s)',
      value: seconds(Date.now() - woke),
    });
  });

  it("NetworkPolicies: pods of another app or of no app cannot reach Postgres, Redis or the web port; the app's own can", async () => {
    await sleeperPod(OTHER_NS, 'no-app', image);
    await sleeperPod(NS, 'other-app', image, { 'scalable.dev/app': 'another' });
    const targets = [
      `${APP}-db-0.${NS}.svc:5432`,
      `${APP}-sessions.${NS}.svc:6379`,
      `${APP}-web.${NS}.svc:80`,
    ];
    const probe = (ns: string, pod: string) =>
      nodeScript(
        ns,
        pod,
        `import net from 'node:net';
         const targets = ${JSON.stringify(targets)};
         const one = (t) => new Promise((res) => {
           const i = t.lastIndexOf(':');
           const s = net.connect({ host: t.slice(0, i), port: Number(t.slice(i + 1)) });
           const done = (r) => { s.destroy(); res(r); };
           s.setTimeout(4000, () => done('timeout'));
           s.on('connect', () => done('open'));
           s.on('error', (e) => done(e.code ?? 'error'));
         });
         const out = {};
         for (const t of targets) out[t] = await one(t);
         console.log(JSON.stringify(out));`,
      ).then((o) => JSON.parse(o) as Record<string, string>);
    const own = await probe(NS, CLIENT);
    for (const t of targets) expect(own[t], `${t} from the app's own pod`).toBe('open');
    for (const [ns, pod] of [
      [OTHER_NS, 'no-app'],
      [NS, 'other-app'],
    ] as const) {
      const seen = await probe(ns, pod);
      for (const t of targets) expect(seen[t], `${t} from ${ns}/${pod}`).not.toBe('open');
    }
  });

  const operatorPods = async (): Promise<Pod[]> =>
    (await pods(OPERATOR_NAMESPACE, 'app.kubernetes.io/name=scalable-operator')).filter(
      (p) => !p.metadata.deletionTimestamp,
    );

  /** The operator pod holding the leader Lease, if any. */
  const leader = async (): Promise<string | undefined> => {
    const leases = await getJson<List<{ spec: { holderIdentity?: string } }>>([
      'get',
      'leases',
      '-n',
      OPERATOR_NAMESPACE,
    ]);
    const names = (await operatorPods()).map((p) => p.metadata.name);
    const holders = leases.items.map((l) => l.spec.holderIdentity ?? '');
    return names.find((n) => holders.some((h) => h.includes(n)));
  };

  it('operator: killing the leader pod -> the other replica takes over and a spec change is still applied', async () => {
    const old = await eventually('an operator leader', leader, 120_000, 1000);
    const deletedAt = Date.now();
    await kubectl(['delete', 'pod', old, '-n', OPERATOR_NAMESPACE, '--wait=false']);
    const next = await eventually(
      `a leader other than ${old}`,
      async () => {
        const l = await leader();
        return l && l !== old ? l : undefined;
      },
      180_000,
      500,
    );
    record({
      name: 'failover: operator leader deleted -> other replica leads',
      value: seconds(Date.now() - deletedAt),
      note: `${old} -> ${next}`,
    });
    const app = shopApp([{ name: 'E2E_ROLLOUT', value: 'after-leader-change' }]);
    app.spec.web.autoscaling.maxReplicas = 5;
    await apply(app);
    await eventually(
      'the HPA raised to 5 by the new leader',
      async () => {
        const hpa = await getJson<{ spec: { maxReplicas: number } }>([
          'get',
          'hpa',
          `${APP}-web`,
          '-n',
          NS,
        ]);
        return hpa.spec.maxReplicas === 5 ? true : undefined;
      },
      180_000,
      1000,
    );
    await waitAppReady(NS, APP);
  });

  it('operator: helm upgrade keeps the app Ready throughout', async () => {
    await waitAppReady(NS, APP);
    const seen: string[] = [];
    let stop = false;
    const watcher = (async () => {
      while (!stop) {
        const conds = await appConditions(NS, APP).catch(() => []);
        const c = conds.find((x) => x.type === 'Ready');
        seen.push(
          readyAsServed(conds)
            ? 'True'
            : `${c?.status ?? 'unknown'} (${c?.reason ?? ''}: ${c?.message ?? ''})`,
        );
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();
    const start = Date.now();
    try {
      await helm([
        'upgrade',
        RELEASE,
        join(root, 'charts', 'scalable-operator'),
        '--namespace',
        OPERATOR_NAMESPACE,
        '--reuse-values',
        '--set',
        'logLevel=debug',
        '--wait',
        '--timeout',
        '5m',
      ]);
      // The new operator pods reconcile the app again once they lead.
      await eventually('a leader among the upgraded pods', leader, 180_000, 1000);
      await new Promise((r) => setTimeout(r, 15_000));
    } finally {
      stop = true;
      await watcher;
    }
    record({ name: 'case: helm upgrade (operator rolled)', value: seconds(Date.now() - start) });
    expect(seen.length).toBeGreaterThan(5);
    expect(
      seen.filter((s) => s !== 'True'),
      `Ready statuses seen during the upgrade: ${seen.join(', ')}`,
    ).toEqual([]);
  });

  it('database: the node under a primary frozen (docker pause) -> the operator releases its lock and fences its pod, the replica takes the writes, none acknowledged is lost', async () => {
    await waitAppReady(NS, APP);
    const nodeOf = async (ns: string, pod: string) =>
      (await getJson<Pod>(['get', 'pod', pod, '-n', ns])).spec.nodeName ?? '';
    // The operator leader and the writer stay on a node that keeps running.
    const opLeader = await eventually('an operator leader', leader, 120_000, 1000);
    const safeNode = await nodeOf(OPERATOR_NAMESPACE, opLeader);
    const pick = async () => {
      for (const shard of [0, 1]) {
        const [p] = await primaryOf(shard);
        if (p && p.spec.nodeName !== safeNode) return { shard, pod: p };
      }
      return undefined;
    };
    let target = await pick();
    if (!target) {
      // Both primaries share the leader's node: move shard 0's to its replica (elsewhere, as
      // the pods spread over zones) through Patroni's DCS, as a rollout's switchover does.
      const [p] = await primaryOf(0);
      const replica = (await pods(NS, `scalable.dev/cluster=${APP}-db-0`)).find(
        (x) => x.metadata.name !== p?.metadata.name,
      );
      if (!p || !replica) throw new Error('shard 0 has no primary and replica');
      await apply({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name: `${APP}-db-0-failover`,
          namespace: NS,
          labels: { 'scalable.dev/database': APP, 'scalable.dev/cluster': `${APP}-db-0` },
          annotations: { leader: p.metadata.name, member: replica.metadata.name },
        },
      });
      target = await eventually('shard 0 primary moved off the leader node', pick, 120_000, 1000);
      await waitAppReady(NS, APP);
    }
    const { shard, pod: old } = target;
    const frozenNode = old.spec.nodeName ?? '';
    const host = `${APP}-db-${shard}.${NS}.svc`;
    const WRITER = 'shop-writer';
    await cloneWebPod(NS, APP, WRITER, { 'scalable.dev/app': APP }, { nodeName: safeNode });
    await sql(
      host,
      'DROP TABLE IF EXISTS e2e_freeze; CREATE TABLE e2e_freeze (id int PRIMARY KEY)',
      WRITER,
    );
    // 800 inserts through the primary Service from a node that keeps running; the longest gap
    // between acknowledgements is the outage.
    const writer = writeRows(host, 'e2e_freeze', 800, WRITER);
    await eventually(
      '200 writes before the node is frozen',
      async () => {
        const [row] = (await sql(host, 'SELECT count(*)::int AS n FROM e2e_freeze', WRITER)) as {
          n: number;
        }[];
        return (row?.n ?? 0) >= 200 ? true : undefined;
      },
      120_000,
      500,
    );
    const frozenAt = Date.now();
    await run('docker', ['pause', frozenNode]);
    let result: WriterResult;
    try {
      const promoted = await eventually(
        'the replica labelled primary',
        async () => {
          const p = (await primaryOf(shard)).find((x) => x.metadata.name !== old.metadata.name);
          return p;
        },
        120_000,
        250,
      );
      record({
        name: 'failover: node frozen under the primary -> replica labelled primary',
        value: seconds(Date.now() - frozenAt),
        note: `${old.metadata.name} on ${frozenNode} -> ${promoted.metadata.name}`,
      });
      result = await writer;
    } finally {
      await run('docker', ['unpause', frozenNode]);
    }
    record({
      name: 'failover: node frozen under the primary -> first acknowledged write via the Service',
      value: seconds(result.gap.to - frozenAt),
      note: `longest pause ${seconds(result.gap.ms)} s, ${result.failures} failed attempts retried`,
    });
    expect(result.acked).toBe(800);
    // The operator did it (Patroni's own lease runs 20 s), and told the app's events.
    const reasons = (
      await getJson<List<{ reason: string }>>([
        'get',
        'events',
        '-n',
        NS,
        '--field-selector',
        `involvedObject.name=${APP}`,
      ])
    ).items.map((e) => e.reason);
    expect(reasons).toContain('PrimaryLockReleased');
    expect(reasons).toContain('PrimaryFenced');
    // Every acknowledged row is on the new primary; the old one comes back as its replica.
    const [count] = (await sql(
      host,
      'SELECT count(*)::int AS n, min(id) AS lo, max(id) AS hi FROM e2e_freeze',
    )) as { n: number; lo: number; hi: number }[];
    expect(count, 'rows on the new primary').toEqual({ n: 800, lo: 1, hi: 800 });
    await eventually(
      `shard ${shard} back to a primary and a streaming replica`,
      async () => {
        const all = (await pods(NS, `scalable.dev/cluster=${APP}-db-${shard}`)).filter(podReady);
        const roles = all.map((p) => p.metadata.labels?.['scalable.dev/role']).sort();
        return JSON.stringify(roles) === '["master","replica"]' ? true : undefined;
      },
      300_000,
      2000,
    );
    await kubectl(['delete', 'pod', WRITER, '-n', NS, '--wait=false']);
    await waitAppReady(NS, APP);
  });

  it('operator: deleting the ScalableApp removes its objects and keeps the database volumes (Retain)', async () => {
    const pvcsBefore = (await getJson<List<{ metadata: Meta }>>(['get', 'pvc', '-n', NS])).items
      .map((p) => p.metadata.name)
      .filter((n) => n.startsWith(`data-${APP}-db-`));
    expect(pvcsBefore.length, 'database PVCs (2 shards x 2 pods)').toBe(4);
    await kubectl(['delete', 'scalableapp', APP, '-n', NS, '--timeout=300s']);
    await eventually(
      'no workloads, Services or ConfigMaps of the app left',
      async () => {
        const left = (
          await kubectl([
            'get',
            'deployments,statefulsets,services,configmaps,hpa,networkpolicies',
            '-n',
            NS,
            '-l',
            `scalable.dev/app=${APP}`,
            '-o',
            'name',
          ])
        ).trim();
        if (left === '') return true;
        throw new Error(`still there: ${left.split('\n').join(', ')}`);
      },
      300_000,
      2000,
    );
    const pvcsAfter = await getJson<List<{ metadata: Meta; status: { phase?: string } }>>([
      'get',
      'pvc',
      '-n',
      NS,
    ]);
    for (const name of pvcsBefore) {
      const pvc = pvcsAfter.items.find((p) => p.metadata.name === name);
      expect(pvc?.status.phase, `PVC ${name} after the app is deleted`).toBe('Bound');
    }
  });
});
