// The web tier on kind: the sample app's pods spread over zones behind their Service and HPA,
// and a spec change that replaces every pod without the Service ever losing its last ready
// endpoint, while a client sending requests through the Service gets every answer. On the
// shared sample app (support/app.ts).
import { describe, expect, it } from 'vitest';
import { seconds, useSharedApp } from './support/app.ts';
import {
  apply,
  eventually,
  getJson,
  nodeScript,
  nodeZones,
  podReady,
  pods,
} from './support/kube.ts';
import { record } from './support/results.ts';
import { startTraffic, type TrafficResult } from './support/traffic.ts';
import { watchEndpoints } from './support/endpoints.ts';

const app = useSharedApp();
const { namespace: NS, name: APP, client: CLIENT } = app;
/** The rollout client's pause between requests: ~40 new connections a second at most. */
const TRAFFIC_EVERY_MS = 25;

describe('the web tier on kind', () => {
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

  it('web: a spec change rolls every pod; the Service never has zero ready endpoints and a client through it gets every answer', async () => {
    const before = new Set(
      (await pods(NS, `scalable.dev/app=${APP},scalable.dev/tier=web`)).map((p) => p.metadata.name),
    );
    const endpoints = await watchEndpoints(NS, `${APP}-web`);
    let traffic: TrafficResult;
    let start = 0;
    let rolledAt = 0;
    let eventsAtChange = 0;
    let fresh: string[] = [];
    try {
      // A client sending requests through the Service for the whole rollout, each on a new
      // connection, every TRAFFIC_EVERY_MS: a pod that stops listening while the nodes'
      // Service rules still send it connections is refused.
      const client = await startTraffic(
        NS,
        CLIENT,
        `http://${APP}-web.${NS}.svc/healthz`,
        TRAFFIC_EVERY_MS,
      );
      try {
        endpoints.resetMin();
        eventsAtChange = endpoints.events();
        start = Date.now();
        await apply(app.spec({ webEnv: [{ name: 'E2E_ROLLOUT', value: String(Date.now()) }] }));
        fresh = await eventually(
          'every web pod replaced by one of the new template, all ready, the old ones gone',
          async () => {
            const now = await pods(NS, `scalable.dev/app=${APP},scalable.dev/tier=web`);
            const live = now.filter((p) => !p.metadata.deletionTimestamp);
            const made = live.filter((p) => !before.has(p.metadata.name));
            if (live.length >= 2 && made.length === now.length && live.every(podReady))
              return made.map((p) => p.metadata.name).sort();
            throw new Error(
              `${now.length} web pods, ${live.length} live, ${made.length} new, ${live.filter(podReady).length} ready`,
            );
          },
          600_000,
          1000,
        );
        rolledAt = Date.now();
        record({ name: 'case: web rollout (2 pods)', value: seconds(rolledAt - start) });
        // The watch followed the rollout to its end: its ready endpoints are the new pods.
        await eventually(
          'the EndpointSlice watch to hold exactly the new pods as ready endpoints',
          async () => {
            const seen = endpoints.readyPods();
            if (seen.join() === fresh.join()) return true;
            throw new Error(`watch: ${seen.join(', ')}; new pods: ${fresh.join(', ')}`);
          },
        );
        // The client goes on until an answer after the rollout (or a minute of none).
        await client.answeredAfter(rolledAt);
      } finally {
        traffic = await client.stop();
      }
    } finally {
      endpoints.stop();
    }
    record({
      name: 'case: web rollout, requests through the Service',
      value: traffic.ok,
      unit: 'answered',
      note: `${traffic.failed} failed`,
    });
    expect(
      endpoints.ended(),
      'the EndpointSlice watch ended before the rollout was over',
    ).toBeUndefined();
    expect(
      endpoints.events() - eventsAtChange,
      'EndpointSlice events during the rollout',
    ).toBeGreaterThan(0);
    expect(
      endpoints.minReady(),
      'fewest ready web endpoints at any moment of the rollout',
    ).toBeGreaterThanOrEqual(1);
    // Every request answered: a replaced pod goes on serving (preStop sleep) until the nodes'
    // Service rules have dropped it, so none is refused, reset or left unanswered.
    expect(
      { failed: traffic.failed, first: traffic.failures },
      `requests through the Service during the rollout (${traffic.ok} answered)`,
    ).toEqual({ failed: 0, first: [] });
    // The client ran through the whole rollout (pods share the host's clock on kind).
    expect(traffic.firstOk, 'first answer before the spec change').toBeLessThan(start);
    expect(traffic.lastOk, 'last answer after the rollout').toBeGreaterThan(rolledAt);
  });
});
