// The way in: an Ingress (class-specific Cache-Control on the static route) or, when a
// Gateway is named, a Gateway API HTTPRoute with a standard ResponseHeaderModifier filter.
import { ApiObject } from 'cdk8s';
import type { Chart } from 'cdk8s';
import { k8s } from '../shared/k8s.ts';
import type { AppModel } from '../../api/model.ts';
import { synth } from '../shared/chart.ts';
import type { K8sObject } from '../shared/chart.ts';
import { metadataOf, nameOf } from '../shared/meta.ts';
import { WEB_SERVICE_PORT } from '../web/build.ts';

/** Ingress classes whose controllers we know how to make add a response header. */
export type HeaderSupport = 'traefik' | 'haproxy' | 'none';

type IngressSpec = NonNullable<AppModel['ingress']>;

export function headerSupportOf(className: string | undefined): HeaderSupport {
  if (className?.includes('traefik')) return 'traefik';
  if (className?.includes('haproxy')) return 'haproxy';
  return 'none';
}

export const cacheControlOf = (maxAgeSeconds: number): string =>
  `public, max-age=${maxAgeSeconds}, immutable`;

export const CACHE_CONTROL_SUPPORT_ANNOTATION = 'scalable.dev/cache-control';

export function buildIngress(app: AppModel): K8sObject[] {
  const ingress = app.ingress;
  if (!ingress) return [];
  return synth((chart) => {
    if (ingress.gateway) httpRoute(chart, app, ingress, ingress.gateway);
    else ingresses(chart, app, ingress);
  });
}

function httpRoute(
  chart: Chart,
  app: AppModel,
  ingress: IngressSpec,
  gateway: NonNullable<IngressSpec['gateway']>,
) {
  const backendRefs = [{ name: nameOf(app, 'web'), port: WEB_SERVICE_PORT }];
  new ApiObject(chart, 'route', {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: metadataOf(app, 'ingress', nameOf(app, 'web'), 'ingress', {
      annotations: { ...ingress.annotations },
    }),
    spec: {
      parentRefs: [
        {
          group: 'gateway.networking.k8s.io',
          kind: 'Gateway',
          name: gateway.name,
          ...(gateway.namespace ? { namespace: gateway.namespace } : {}),
          ...(gateway.sectionName ? { sectionName: gateway.sectionName } : {}),
        },
      ],
      ...(ingress.host ? { hostnames: [ingress.host] } : {}),
      rules: [
        {
          matches: [{ path: { type: 'PathPrefix', value: ingress.staticAssets.pathPrefix } }],
          filters: [
            {
              type: 'ResponseHeaderModifier',
              responseHeaderModifier: {
                set: [
                  {
                    name: 'Cache-Control',
                    value: cacheControlOf(ingress.staticAssets.maxAgeSeconds),
                  },
                ],
              },
            },
          ],
          backendRefs,
        },
        { matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs },
      ],
    },
  });
}

/** Two Ingresses: annotations apply to a whole Ingress, and only static responses get the
 *  long-lived Cache-Control. */
function ingresses(chart: Chart, app: AppModel, ingress: IngressSpec) {
  const support = headerSupportOf(ingress.className);
  const cacheControl = cacheControlOf(ingress.staticAssets.maxAgeSeconds);
  const staticName = nameOf(app, 'static');
  const staticAnnotations: Record<string, string> = {
    ...ingress.annotations,
    [CACHE_CONTROL_SUPPORT_ANNOTATION]:
      support === 'none' ? 'unsupported-class: the app sets Cache-Control' : support,
  };
  if (support === 'traefik') {
    new ApiObject(chart, 'middleware', {
      apiVersion: 'traefik.io/v1alpha1',
      kind: 'Middleware',
      metadata: metadataOf(app, 'ingress', staticName),
      spec: { headers: { customResponseHeaders: { 'Cache-Control': cacheControl } } },
    });
    staticAnnotations['traefik.ingress.kubernetes.io/router.middlewares'] =
      `${app.namespace}-${staticName}@kubernetescrd`;
  } else if (support === 'haproxy') {
    staticAnnotations['haproxy.org/response-set-header'] = `Cache-Control "${cacheControl}"`;
  }
  kubeIngress(chart, app, ingress, nameOf(app, 'web'), '/', { ...ingress.annotations });
  kubeIngress(chart, app, ingress, staticName, ingress.staticAssets.pathPrefix, staticAnnotations);
}

function kubeIngress(
  chart: Chart,
  app: AppModel,
  ingress: IngressSpec,
  name: string,
  path: string,
  annotations: Record<string, string>,
) {
  new k8s.KubeIngress(chart, name, {
    metadata: metadataOf(app, 'ingress', name, 'ingress', { annotations }),
    spec: {
      ...(ingress.className ? { ingressClassName: ingress.className } : {}),
      ...(ingress.tls && ingress.host
        ? { tls: [{ hosts: [ingress.host], secretName: ingress.tls.secretName }] }
        : {}),
      rules: [
        {
          ...(ingress.host ? { host: ingress.host } : {}),
          http: {
            paths: [
              {
                path,
                pathType: 'Prefix',
                backend: {
                  service: { name: nameOf(app, 'web'), port: { number: WEB_SERVICE_PORT } },
                },
              },
            ],
          },
        },
      ],
    },
  });
}
