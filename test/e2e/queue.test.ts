// The queue tier on kind: the thumbnail worker held at zero by the real KEDA, woken by one
// message enqueued through the SDK, the message acknowledged, back to zero after the cooldown.
// On the shared sample app (support/app.ts).
import { describe, expect, it } from 'vitest';
import { seconds, useSharedApp } from './support/app.ts';
import { appConditions, eventually, getJson, nodeScript, pods } from './support/kube.ts';
import { record } from './support/results.ts';

const { namespace: NS, name: APP, client: CLIENT } = useSharedApp();
const STREAM = `${APP}.thumbnails`;

describe('the queue on kind', () => {
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
    const groupState = () =>
      nodeScript(
        NS,
        CLIENT,
        `import { readFileSync } from 'node:fs';
         import { Redis } from 'ioredis';
         const u = new URL(process.env.QUEUE_URL);
         const r = new Redis(process.env.QUEUE_URL, { username: process.env.QUEUE_USERNAME, password: process.env.QUEUE_PASSWORD, tls: { ca: readFileSync(process.env.QUEUE_SSLROOTCERT), servername: u.hostname }, maxRetriesPerRequest: 1 });
         const groups = await r.xinfo('GROUPS', ${JSON.stringify(STREAM)});
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
});
