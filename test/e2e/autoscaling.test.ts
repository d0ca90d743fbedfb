// The web tier's HPA on kind, under real load: metrics-server (installed by the suite) gives it
// CPU figures, a load from the client pod through the web Service raises the replicas above
// the minimum, and once the load stops they return to it; every request is answered while
// pods come and go. On the shared app with a spec change (min 1, a low CPU request so one
// client pod's load is enough, a short scale-down window), which useSharedApp undoes for the
// next file.
import { describe, expect, it } from 'vitest';
import { seconds, useSharedApp } from './support/app.ts';
import { apply, eventually, getJson, pods } from './support/kube.ts';
import { startLoad } from './support/load.ts';
import { record } from './support/results.ts';
import { startTraffic } from './support/traffic.ts';

const app = useSharedApp();
const { namespace: NS, name: APP, client: CLIENT } = app;
const WEB = `${APP}-web`;
const MAX = 3;
const TARGET = 50;
const WINDOW = 15;
/** Concurrent request loops in the client pod: far above what 50m of CPU at 50% serves. */
const CONCURRENCY = 8;

interface Hpa {
  spec: {
    minReplicas: number;
    maxReplicas: number;
    behavior?: { scaleDown?: { stabilizationWindowSeconds?: number } };
  };
  status: {
    currentReplicas?: number;
    desiredReplicas?: number;
    currentMetrics?: {
      type: string;
      resource?: { name: string; current: { averageUtilization?: number } };
    }[];
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}
interface Deployment {
  spec: { replicas?: number };
  status: { replicas?: number; readyReplicas?: number; updatedReplicas?: number };
}

const hpa = () => getJson<Hpa>(['get', 'hpa', WEB, '-n', NS]);
const deployment = () => getJson<Deployment>(['get', 'deployment', WEB, '-n', NS]);
const webPods = () => pods(NS, `scalable.dev/app=${APP},scalable.dev/tier=web`);
const cpuOf = (h: Hpa): number | undefined =>
  h.status.currentMetrics?.find((m) => m.type === 'Resource' && m.resource?.name === 'cpu')
    ?.resource?.current.averageUtilization;
const condition = (h: Hpa, type: string) => h.status.conditions?.find((c) => c.type === type);
const describeHpa = (h: Hpa) =>
  `replicas ${h.status.currentReplicas}->${h.status.desiredReplicas}, cpu ${cpuOf(h)}%, ` +
  (h.status.conditions ?? []).map((c) => `${c.type}=${c.status} (${c.reason})`).join(', ');

/** The HPA and its Deployment settled at `replicas`, the HPA reading CPU figures. */
async function settledAt(replicas: number, what: string, timeoutMs: number): Promise<Hpa> {
  return eventually(
    what,
    async () => {
      const [h, d, p] = await Promise.all([hpa(), deployment(), webPods()]);
      const settled =
        condition(h, 'ScalingActive')?.status === 'True' &&
        cpuOf(h) !== undefined &&
        h.status.currentReplicas === replicas &&
        h.status.desiredReplicas === replicas &&
        d.spec.replicas === replicas &&
        d.status.readyReplicas === replicas &&
        d.status.updatedReplicas === replicas &&
        p.length === replicas;
      if (settled) return h;
      throw new Error(`${describeHpa(h)}; deployment ${d.spec.replicas}, pods ${p.length}`);
    },
    timeoutMs,
    2000,
  );
}

describe('the web tier scales out under load on kind', () => {
  it('web HPA: CPU figures from metrics-server; under load 1 -> more pods, back to 1 after the load, every request answered', async () => {
    await apply(
      app.spec({
        autoscaling: {
          minReplicas: 1,
          maxReplicas: MAX,
          targetCPUUtilization: TARGET,
          scaleDownStabilizationSeconds: WINDOW,
        },
        webResources: { requests: { cpu: '50m' } },
      }),
    );
    const idle = await settledAt(
      1,
      'the HPA reading CPU figures, the web tier at its minimum of 1 (new template rolled out)',
      600_000,
    );
    // The operator applied the app's window: without it, the scale-down below waits 300 s.
    expect(idle.spec).toMatchObject({
      minReplicas: 1,
      maxReplicas: MAX,
      behavior: { scaleDown: { stabilizationWindowSeconds: WINDOW } },
    });

    const url = `http://${WEB}.${NS}.svc/healthz`;
    const load = await startLoad(NS, CLIENT, url, CONCURRENCY);
    const loadStart = Date.now();
    let peak = 1;
    let busy: Hpa;
    try {
      busy = await eventually(
        'the HPA above its target and more than 1 web pod ready',
        async () => {
          const [h, d] = await Promise.all([hpa(), deployment()]);
          peak = Math.max(peak, d.status.readyReplicas ?? 0);
          if ((d.status.readyReplicas ?? 0) > 1 && (cpuOf(h) ?? 0) > TARGET) return h;
          throw new Error(`${describeHpa(h)}; ready ${d.status.readyReplicas}`);
        },
        600_000,
        2000,
      );
    } catch (err) {
      await load.stop();
      throw err;
    }
    record({
      name: 'case: web 1 -> 2+ ready pods under load',
      value: seconds(Date.now() - loadStart),
    });
    // Every request of the stop's aftermath goes to the pods that remain: watch it answer.
    // Light traffic (4 requests/s): enough to see a request fail while a pod leaves, far
    // below what keeps one pod over its target (at 40 requests/s two pods read 39% of 50m).
    const traffic = await startTraffic(NS, CLIENT, url, 250);
    const loaded = await load.stop();
    const stoppedAt = Date.now();
    let after: Awaited<ReturnType<typeof traffic.stop>>;
    try {
      await settledAt(1, 'the web tier back at 1 pod after the load', 600_000);
    } finally {
      after = await traffic.stop();
    }
    record({
      name: 'case: web back to 1 pod after the load',
      value: seconds(Date.now() - stoppedAt),
    });
    record({
      name: 'case: web load (client pod, new connection per request)',
      value: loaded.ok / loaded.seconds,
      unit: 'req/s',
      note: `${CONCURRENCY} loops, ${loaded.ok} answers, peak ${peak} ready pods, HPA at ${cpuOf(busy)}% of 50m`,
    });

    expect(busy.status.desiredReplicas).toBeGreaterThan(1);
    expect(busy.status.desiredReplicas).toBeLessThanOrEqual(MAX);
    expect(loaded.ok).toBeGreaterThan(0);
    expect(loaded.failures, 'requests failed under load while pods were added').toEqual([]);
    expect(after.ok).toBeGreaterThan(0);
    expect(after.failures, 'requests failed while pods were removed').toEqual([]);
  });
});
