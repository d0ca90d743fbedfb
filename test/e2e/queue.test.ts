// The queue tier on kind, with the real KEDA (operator and metrics adapter) on the shared
// sample app (support/app.ts): one message wakes the thumbnail worker from zero, is
// acknowledged, the worker goes back to zero after the cooldown; a backlog scales the workers
// 0 -> maxReplicas through the HPA KEDA makes (the adapter serving it the backlog), drains,
// each job's thumbnail made once, and the workers go back to zero.
import { THUMBNAIL_STREAM } from '../../examples/photoshare/src/timeline.ts';
import { describe, expect, it } from 'vitest';
import { seconds, useSharedApp } from './support/app.ts';
import {
  appConditions,
  eventually,
  getJson,
  heldScript,
  kubectl,
  nodeScript,
  pods,
} from './support/kube.ts';
import { record } from './support/results.ts';

const { namespace: NS, name: APP, client: CLIENT } = useSharedApp();
/** The stream photoshare's upload writes and the worker reads (support/app.ts). */
const STREAM = THUMBNAIL_STREAM;
const GROUP = 'thumbnails';
const WORKER = `${APP}-worker-thumbnails`;
const WORKER_PODS = `scalable.dev/app=${APP},app.kubernetes.io/component=worker-thumbnails`;
/** The suite app's consumer (support/app.ts): maxReplicas 2, targetBacklog left at 10. */
const MAX_WORKERS = 2;

const workers = () =>
  getJson<{ spec: { replicas?: number }; status: { readyReplicas?: number } }>([
    'get',
    'deployment',
    WORKER,
    '-n',
    NS,
  ]);

/** A Redis client of the queue store in a client pod's script, as the app's pods log in. */
const REDIS = `import { readFileSync } from 'node:fs';
  import { Redis } from 'ioredis';
  const u = new URL(process.env.QUEUE_URL);
  const r = new Redis(process.env.QUEUE_URL, { username: process.env.QUEUE_USERNAME, password: process.env.QUEUE_PASSWORD, tls: { ca: readFileSync(process.env.QUEUE_SSLROOTCERT), servername: u.hostname }, maxRetriesPerRequest: 1 });`;

interface QueueState {
  /** Delivered to the group, not yet acknowledged. */
  pending: number;
  /** In the stream, not yet delivered to the group. */
  lag: number;
  /** Entries the group has read (first deliveries; a claim does not count). */
  entriesRead: number;
  /** Entries of the dead-letter stream. */
  dead: number;
}

/** The thumbnails group and its dead-letter stream, as Redis has them. */
async function queueState(): Promise<QueueState> {
  const out = await nodeScript(
    NS,
    CLIENT,
    `${REDIS}
     const groups = await r.xinfo('GROUPS', ${JSON.stringify(STREAM)});
     const g = groups.map((flat) => Object.fromEntries(flat.reduce((a, v, i) => (i % 2 ? a : [...a, [v, flat[i + 1]]]), []))).find((x) => x.name === ${JSON.stringify(GROUP)});
     const dead = await r.xlen(${JSON.stringify(`${STREAM}:dead`)});
     console.log(JSON.stringify({ pending: g.pending, lag: g.lag, entriesRead: g['entries-read'], dead }));
     r.disconnect();`,
  );
  return JSON.parse(out) as QueueState;
}

/** Rows updated in the photos table on every shard (pg_stat_user_tables, the primaries). */
async function photoUpdates(): Promise<number> {
  const out = await nodeScript(
    NS,
    CLIENT,
    `import { connect } from '@scalable-dev/sdk';
     const sdk = await connect();
     const counts = await sdk.db.forEachShard(async (q) => (await q.query("SELECT coalesce(sum(n_tup_upd), 0)::int AS n FROM pg_stat_user_tables WHERE relname = 'photos'")).rows[0].n);
     console.log(counts.reduce((a, n) => a + n, 0));
     await sdk.close();`,
  );
  return Number(out.trim());
}

/** A Kubernetes quantity ("19", "19500m", "2k") as a number. */
function quantity(q: string | undefined): number {
  const m = /^(\d+(?:\.\d+)?)(m|k)?$/.exec(q ?? '');
  if (!m) throw new Error(`not a quantity: ${q}`);
  return Number(m[1]) * (m[2] === 'm' ? 0.001 : m[2] === 'k' ? 1000 : 1);
}

interface ExternalMetric {
  metric: { name: string; selector?: { matchLabels?: Record<string, string> } };
  target?: { type: string; averageValue?: string };
  current?: { averageValue?: string; value?: string };
}
interface Hpa {
  metadata: { ownerReferences?: { kind: string; name: string }[] };
  spec: {
    scaleTargetRef: { kind: string; name: string };
    minReplicas?: number;
    maxReplicas: number;
    metrics: { type: string; external?: ExternalMetric }[];
  };
  status: {
    currentReplicas?: number;
    desiredReplicas?: number;
    currentMetrics?: { type: string; external?: ExternalMetric }[] | null;
  };
}

describe('the queue on kind', () => {
  it('queue: a message wakes a worker from zero with the real KEDA; the worker acknowledges it; back to zero after the cooldown', async () => {
    const worker = WORKER;
    const deployment = workers;
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
    const workerPods = WORKER_PODS;
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
       console.log(await sdk.queue.enqueue(${JSON.stringify(STREAM)}, { userId: 'e2e-queue', photoId: 'missing' }));
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
    await eventually(
      'the thumbnails group to acknowledge the message',
      async () => {
        const q = await queueState();
        return q.pending === 0 && q.lag === 0 ? true : undefined;
      },
      120_000,
      1000,
    );
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

  it('queue: a backlog scales the workers 0 -> maxReplicas through the HPA KEDA makes (its metrics adapter serving the backlog); the backlog drains, each job processed once; back to zero', async () => {
    const JOBS = 40;
    const user = `e2e-backlog-${Date.now()}`;
    // Nothing in flight: the workers at zero, the group empty.
    await eventually(
      `${WORKER} at 0 replicas, no worker pods`,
      async () =>
        (await workers()).spec.replicas === 0 && (await pods(NS, WORKER_PODS)).length === 0
          ? true
          : undefined,
      300_000,
      2000,
    );
    const before = await queueState();
    expect(before).toMatchObject({ pending: 0, lag: 0 });
    const updatesBefore = await photoUpdates();

    // KEDA's HPA for the workers, with the backlog (the group's lag, the first trigger: KEDA
    // names a trigger's metric s<index>-...) as an external metric, averaged per worker.
    const hpaName = `keda-hpa-${WORKER}`;
    const hpa = () => getJson<Hpa>(['get', 'hpa', hpaName, '-n', NS]);
    const made = await hpa();
    expect(made.metadata.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'ScaledObject', name: WORKER }),
    ]);
    expect(made.spec).toMatchObject({
      scaleTargetRef: { kind: 'Deployment', name: WORKER },
      minReplicas: 1,
      maxReplicas: MAX_WORKERS,
    });
    const lagMetric = made.spec.metrics.find((m) => m.external?.metric.name.startsWith('s0-'))
      ?.external?.metric;
    expect(lagMetric, JSON.stringify(made.spec.metrics)).toBeDefined();
    const selector = Object.entries(lagMetric?.selector?.matchLabels ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    /** The backlog as the API server serves it: aggregated API -> adapter -> operator -> Redis. */
    const servedLag = async () => {
      const list = JSON.parse(
        await kubectl([
          'get',
          '--raw',
          `/apis/external.metrics.k8s.io/v1beta1/namespaces/${NS}/${encodeURIComponent(lagMetric?.name ?? '')}?labelSelector=${encodeURIComponent(selector)}`,
        ]),
      ) as { items: { value: string }[] };
      expect(list.items).toHaveLength(1);
      return quantity(list.items[0]?.value);
    };
    // Served at all (the APIService answers, the adapter reaches the operator): nothing yet.
    expect(await eventually('the external metric served', servedLag, 120_000, 2000)).toBe(0);

    // The photos, written as photoshare's upload writes them (each its own colour).
    await nodeScript(
      NS,
      CLIENT,
      `import { connect } from '@scalable-dev/sdk';
         import { solidPng } from '/app/examples/photoshare/src/thumbnail.ts';
         const sdk = await connect();
         const s = sdk.db.session();
         const user = ${JSON.stringify(user)};
         await s.write(user, 'INSERT INTO users (user_id, name, password_hash) VALUES ($1, $2, $3)', [user, 'e2e backlog', 'x']);
         for (let i = 0; i < ${JOBS}; i++)
           await s.write(user, 'INSERT INTO photos (user_id, photo_id, caption, image) VALUES ($1, $2, $3, $4)', [user, 'p' + i, 'backlog', solidPng(96, 64, [(i * 6) % 256, 255 - ((i * 6) % 256), 128, 255])]);
         await sdk.close();`,
    );
    // The work held until the workers have scaled: each worker's UPDATE of a photo waits for
    // this lock, so the backlog cannot drain before the HPA has acted on it, however fast the
    // machine. Released below; a failed case releases it too.
    const lock = heldScript(
      NS,
      CLIENT,
      `import { connect } from '@scalable-dev/sdk';
       const sdk = await connect();
       const user = ${JSON.stringify(user)};
       await sdk.db.tx(user, async (q) => {
         const { rowCount } = await q.query('SELECT 1 FROM photos WHERE user_id = $1 FOR UPDATE', [user]);
         console.log('locked ' + rowCount);
         process.stdin.resume();
         await new Promise((done) => process.stdin.once('end', done));
       });
       console.log('released');
       await sdk.close();`,
    );
    let released = false;
    try {
      expect(await lock.line((l) => l.startsWith('locked '))).toBe(`locked ${JOBS}`);

      // The jobs, enqueued through the SDK as photoshare's upload does, without its write
      // token (the worker then reads the photo on the primary).
      const start = Date.now();
      await nodeScript(
        NS,
        CLIENT,
        `import { connect } from '@scalable-dev/sdk';
         const sdk = await connect();
         for (let i = 0; i < ${JOBS}; i++)
           await sdk.queue.enqueue(${JSON.stringify(STREAM)}, { userId: ${JSON.stringify(user)}, photoId: 'p' + i });
         await sdk.close();`,
      );

      // KEDA wakes one worker; its HPA, fed the backlog by the adapter, adds the rest.
      await eventually(
        `${MAX_WORKERS} ready ${WORKER} pods`,
        async () => {
          const d = await workers();
          if ((d.status.readyReplicas ?? 0) >= MAX_WORKERS) return true;
          throw new Error(`replicas ${d.spec.replicas}, ready ${d.status.readyReplicas ?? 0}`);
        },
        600_000,
        1000,
      );
      record({
        name: `case: queue backlog of ${JOBS} -> ${MAX_WORKERS} workers ready (KEDA, metrics adapter)`,
        value: seconds(Date.now() - start),
      });
      const ready = (await pods(NS, WORKER_PODS)).filter(
        (p) => p.status.phase === 'Running' && !p.metadata.deletionTimestamp,
      );
      expect(ready).toHaveLength(MAX_WORKERS);

      // Each worker holds one job (concurrency 1), waiting on the lock: the backlog stands
      // still, and the adapter serves exactly what Redis holds.
      const held = await eventually(
        'each worker holding one job',
        async () => {
          const q = await queueState();
          return q.pending === MAX_WORKERS ? q : undefined;
        },
        120_000,
        1000,
      );
      expect(held.lag).toBe(JOBS - MAX_WORKERS);
      expect(held.entriesRead - before.entriesRead).toBe(MAX_WORKERS);
      expect(await servedLag()).toBe(held.lag);
      // The HPA saw it too (per worker, at its last sync) and wants every worker it may have.
      const seen = await eventually(
        `${hpaName} at ${MAX_WORKERS} replicas with the backlog per worker`,
        async () => {
          const h = await hpa();
          const lag = h.status.currentMetrics?.find(
            (m) => m.external?.metric.name === lagMetric?.name,
          )?.external?.current?.averageValue;
          const ok =
            h.status.currentReplicas === MAX_WORKERS &&
            h.status.desiredReplicas === MAX_WORKERS &&
            lag !== undefined &&
            quantity(lag) === held.lag / MAX_WORKERS;
          if (ok) return h.status;
          throw new Error(`status ${JSON.stringify(h.status)}`);
        },
        120_000,
        2000,
      );
      expect(seen.desiredReplicas).toBe(MAX_WORKERS);

      // Released: the workers drain the backlog.
      const drainStart = Date.now();
      released = true;
      expect(await lock.finish()).toContain('released');
      const drained = await eventually(
        'the backlog drained and acknowledged',
        async () => {
          const q = await queueState();
          return q.pending === 0 && q.lag === 0 ? q : undefined;
        },
        300_000,
        1000,
      );
      record({
        name: `case: queue backlog of ${JOBS} drained by ${MAX_WORKERS} workers`,
        value: seconds(Date.now() - drainStart),
      });
      // Every job read by the group once, none dead-lettered ...
      expect(drained.entriesRead - before.entriesRead).toBe(JOBS);
      expect(drained.dead).toBe(before.dead);
      // ... and done: every photo has its thumbnail, the one photoshare makes of its image.
      const photos = JSON.parse(
        await nodeScript(
          NS,
          CLIENT,
          `import { connect } from '@scalable-dev/sdk';
           import { thumbnail } from '/app/examples/photoshare/src/thumbnail.ts';
           const sdk = await connect();
           const { rows } = await sdk.db.read(${JSON.stringify(user)}, 'SELECT image, thumbnail FROM photos WHERE user_id = $1', [${JSON.stringify(user)}], { primary: true });
           console.log(JSON.stringify({ photos: rows.length, thumbnailed: rows.filter((r) => r.thumbnail && Buffer.compare(r.thumbnail, thumbnail(r.image)) === 0).length }));
           await sdk.close();`,
        ),
      ) as { photos: number; thumbnailed: number };
      expect(photos).toEqual({ photos: JOBS, thumbnailed: JOBS });

      // Idle: after the cooldown KEDA scales the workers back to zero.
      await eventually(
        `${WORKER} back at 0 replicas, its pods gone`,
        async () =>
          (await workers()).spec.replicas === 0 && (await pods(NS, WORKER_PODS)).length === 0
            ? true
            : undefined,
        300_000,
        2000,
      );
      record({
        name: 'case: queue backlog drained -> workers at zero (cooldown 20 s)',
        value: seconds(Date.now() - drainStart),
      });
      // Processed once: the workers' connections are closed (their statistics flushed), and
      // the photos table saw one UPDATE per job, no more (a job handled twice updates twice).
      const updates = await eventually(
        `${JOBS} photo updates counted`,
        async () => {
          const n = (await photoUpdates()) - updatesBefore;
          return n >= JOBS ? n : undefined;
        },
        120_000,
        2000,
      );
      expect(updates).toBe(JOBS);
    } finally {
      if (!released) await lock.finish().catch(() => undefined);
      await nodeScript(
        NS,
        CLIENT,
        `import { connect } from '@scalable-dev/sdk';
         const sdk = await connect();
         const user = ${JSON.stringify(user)};
         await sdk.db.write(user, 'DELETE FROM photos WHERE user_id = $1', [user]);
         await sdk.db.write(user, 'DELETE FROM users WHERE user_id = $1', [user]);
         await sdk.close();`,
      ).catch((e: unknown) => console.log(`[e2e] removing ${user}'s photos failed: ${String(e)}`));
    }
  });
});
