// The NetworkPolicies on kind (enforced by kube-router's firewall): the app's own pods reach
// its Postgres, session store and web port; a pod of another app, or of no app in another
// namespace, reaches none of them. On the shared sample app (support/app.ts).
import { describe, expect, it } from 'vitest';
import { SAMPLE_IMAGE as image, useSharedApp } from './support/app.ts';
import { nodeScript, sleeperPod } from './support/kube.ts';

const OTHER_NS = 'e2e-outsider';
const { namespace: NS, name: APP, client: CLIENT } = useSharedApp({ otherNamespaces: [OTHER_NS] });

describe('the NetworkPolicies on kind', () => {
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
});
