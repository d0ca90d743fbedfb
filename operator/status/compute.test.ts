import { describe, expect, it } from 'vitest';
import { toModel } from '../api/model.ts';
import { validateApp } from '../api/validate.ts';
import { buildAll } from '../tiers/index.ts';
import { computeStatus, invalidSpecStatus } from './compute.ts';
import type { Observed, ObservedObject } from '../tiers/shared/report.ts';

function model(spec: Record<string, unknown>) {
  const v = validateApp({
    apiVersion: 'scalable.dev/v1alpha1',
    kind: 'ScalableApp',
    metadata: { name: 'a', namespace: 'n' },
    spec,
  });
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return toModel(v.app);
}

const withStatus = (
  o: ObservedObject,
  status: Record<string, unknown>,
  replicas?: number,
): ObservedObject => ({
  ...o,
  metadata: { ...o.metadata, generation: 1 },
  ...(replicas !== undefined ? { spec: { ...(o['spec'] as object), replicas } } : {}),
  status: { observedGeneration: 1, ...status },
});

function observedAll(app: ReturnType<typeof model>, readyReplicas: number): Observed {
  const objects = buildAll(app).map((o) =>
    o.kind === 'Deployment'
      ? withStatus(o, { replicas: 2, readyReplicas, updatedReplicas: 2 }, 2)
      : o,
  );
  return { objects, pods: [], missingApis: [] };
}

const cond = (s: ReturnType<typeof computeStatus>, type: string) =>
  s.conditions.find((c) => c.type === type);

describe('computeStatus', () => {
  const app = model({ web: { image: 'x' }, ingress: { host: 'a.example.com' } });
  const desired = buildAll(app);

  it('is Ready when every tier is, with the web counts and the URL', () => {
    const s = computeStatus(app, desired, observedAll(app, 2), { failed: [], skipped: [] });
    expect(s.ready).toBe(true);
    expect(cond(s, 'Ready')).toMatchObject({ status: 'True', reason: 'AllTiersReady' });
    expect(cond(s, 'Progressing')?.status).toBe('False');
    expect(s.fields['web']).toMatchObject({ ready: '2/2', desiredReplicas: 2 });
    expect(s.fields['url']).toBe('http://a.example.com');
  });

  it('waits for the pods', () => {
    const s = computeStatus(app, desired, observedAll(app, 1), { failed: [], skipped: [] });
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'WebNotReady' });
    expect(cond(s, 'WebReady')).toMatchObject({ status: 'False', reason: 'PodsNotReady' });
    expect(cond(s, 'Progressing')?.status).toBe('True');
  });

  it('is never Ready after a failed apply', () => {
    const failed = [{ apiVersion: 'v1', kind: 'Service', name: 'a-web', error: 'boom' }];
    const s = computeStatus(app, desired, observedAll(app, 2), { failed, skipped: [] });
    expect(s.ready).toBe(false);
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'ApplyFailed' });
    expect(cond(s, 'Degraded')).toMatchObject({ status: 'True', reason: 'ApplyFailed' });
  });

  it('is not Ready when an API a tier the spec asks for needs is missing, and names it', () => {
    const traefik = model({ web: { image: 'x' }, ingress: { className: 'traefik' } });
    const d = buildAll(traefik);
    const mw = d.find((o) => o.kind === 'Middleware')!;
    const observed = observedAll(traefik, 2);
    const s = computeStatus(
      traefik,
      d,
      { ...observed, objects: observed.objects.filter((o) => o !== mw) },
      {
        failed: [],
        skipped: [{ apiVersion: mw.apiVersion, kind: mw.kind, name: mw.metadata.name }],
      },
    );
    expect(s.ready).toBe(false);
    expect(cond(s, 'IngressReady')).toMatchObject({ status: 'False', reason: 'APIUnavailable' });
    expect(cond(s, 'IngressReady')?.message).toContain('traefik.io/v1alpha1');
    expect(cond(s, 'Degraded')).toMatchObject({ status: 'True', reason: 'APIUnavailable' });
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'APIUnavailable' });
    expect(cond(s, 'Progressing')).toMatchObject({ status: 'False', reason: 'APIUnavailable' });
  });

  it('is not Ready with ingress.gateway on a cluster without the Gateway API', () => {
    const gw = model({
      web: { image: 'x' },
      ingress: { host: 'shop.example.com', gateway: { name: 'public', namespace: 'infra' } },
    });
    const d = buildAll(gw);
    const routes = d.filter((o) => o.apiVersion.startsWith('gateway.networking.k8s.io/'));
    expect(routes.length).toBeGreaterThan(0);
    const observed = observedAll(gw, 2);
    const s = computeStatus(
      gw,
      d,
      { ...observed, objects: observed.objects.filter((o) => !routes.includes(o)) },
      {
        failed: [],
        skipped: routes.map((o) => ({
          apiVersion: o.apiVersion,
          kind: o.kind,
          name: o.metadata.name,
        })),
      },
    );
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'APIUnavailable' });
    expect(cond(s, 'Ready')?.message).toContain('IngressReady');
    expect(cond(s, 'Ready')?.message).toContain('gateway.networking.k8s.io/v1');
    expect(cond(s, 'WebReady')?.status).toBe('True');
  });

  it('reports an invalid spec with the field path', () => {
    const s = invalidSpecStatus([
      { path: 'spec.web.autoscaling', message: 'minReplicas (5) must be <= maxReplicas (2)' },
    ]);
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'InvalidSpec' });
    expect(cond(s, 'Ready')?.message).toContain('spec.web.autoscaling');
  });
});
