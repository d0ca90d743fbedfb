// The web tier on kind: the sample app's pods spread over zones behind their Service and HPA,
// and a spec change that replaces every pod without the Service ever losing its last ready
// endpoint. On the shared sample app (support/app.ts).
import { KubeConfig, Watch } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { seconds, useSharedApp } from './support/app.ts';
import {
  apply,
  eventually,
  getJson,
  kubeconfig,
  nodeScript,
  nodeZones,
  podReady,
  pods,
} from './support/kube.ts';
import { record } from './support/results.ts';

const app = useSharedApp();
const { namespace: NS, name: APP, client: CLIENT } = app;

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
      await apply(app.spec({ webEnv: [{ name: 'E2E_ROLLOUT', value: String(Date.now()) }] }));
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
});
