// The way in (the chapter's load balancer and CDN origin): an Ingress, or a Gateway API
// HTTPRoute, with long-lived Cache-Control on the static path. `cdn` only hands the app its
// asset base URL (shared/app-wiring.ts): the CDN itself is outside the cluster.
import type { Tier } from '../tier.ts';
import { buildIngress } from './build.ts';
import { INGRESS_READY, ingressReport } from './status.ts';

export const ingressTier: Tier = {
  name: 'ingress',
  sections: ['ingress', 'cdn'],
  conditionType: INGRESS_READY,
  build: buildIngress,
  report: ingressReport,
};
