// The way in: every Ingress/HTTPRoute the tier wants exists; the app's URL comes from the
// host (https when TLS is on) or, without a host, from the load balancer the Ingress got.
import type { AppModel } from '../../api/model.ts';
import { condition } from '../shared/report.ts';
import type { Observed, TierReport } from '../shared/report.ts';
import type { ObjectRef } from '../tier.ts';

export const INGRESS_READY = 'IngressReady';

type Json = Record<string, unknown>;

export function urlOf(app: AppModel, observed: Observed): string | undefined {
  const ingress = app.ingress;
  if (!ingress) return undefined;
  if (ingress.host)
    return `${ingress.tls && !ingress.gateway ? 'https' : 'http'}://${ingress.host}`;
  for (const o of observed.objects) {
    if (o.kind !== 'Ingress') continue;
    const lb = ((o.status?.['loadBalancer'] as Json | undefined)?.['ingress'] ?? []) as Json[];
    const first = lb[0];
    const addr = first?.['hostname'] ?? first?.['ip'];
    if (typeof addr === 'string') return `http://${addr}`;
  }
  return undefined;
}

export function ingressReport(
  app: AppModel,
  observed: Observed,
  wanted: readonly ObjectRef[],
): TierReport {
  const missing = wanted.filter(
    (w) => !observed.objects.some((o) => o.kind === w.kind && o.metadata.name === w.name),
  );
  const url = urlOf(app, observed);
  const cond =
    missing.length === 0
      ? condition(INGRESS_READY, 'True', 'Configured', url ? `serving ${url}` : 'routes configured')
      : condition(
          INGRESS_READY,
          'False',
          'NotFound',
          `missing ${missing.map((m) => `${m.kind} ${m.name}`).join(', ')}`,
        );
  return { condition: cond, ...(url ? { fields: { url } } : {}) };
}
