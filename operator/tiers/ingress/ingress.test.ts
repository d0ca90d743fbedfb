import { describe, expect, it } from 'vitest';
import { buildIngress, cacheControlOf, headerSupportOf } from './build.ts';
import { find, modelOf, spec } from '../shared/test-helpers.ts';

describe('buildIngress', () => {
  it('renders nothing without an ingress section', () => {
    expect(buildIngress(modelOf({}))).toEqual([]);
  });

  it('renders an app Ingress and a static-asset Ingress with host and TLS', () => {
    const objects = buildIngress(
      modelOf({
        ingress: {
          host: 'shop.example.com',
          className: 'traefik',
          tls: { secretName: 'shop-tls' },
        },
      }),
    );
    const web = spec(find(objects, 'Ingress', 'shop-web'));
    expect(web.ingressClassName).toBe('traefik');
    expect(web.tls).toEqual([{ hosts: ['shop.example.com'], secretName: 'shop-tls' }]);
    expect(web.rules[0].http.paths[0]).toMatchObject({
      path: '/',
      pathType: 'Prefix',
      backend: { service: { name: 'shop-web', port: { number: 80 } } },
    });
    expect(spec(find(objects, 'Ingress', 'shop-static')).rules[0].http.paths[0].path).toBe(
      '/static',
    );
  });

  it('adds Cache-Control on Traefik through a Middleware', () => {
    const objects = buildIngress(
      modelOf({ ingress: { className: 'traefik', staticAssets: { maxAgeSeconds: 600 } } }),
    );
    expect(spec(find(objects, 'Middleware', 'shop-static')).headers.customResponseHeaders).toEqual({
      'Cache-Control': 'public, max-age=600, immutable',
    });
    expect(find(objects, 'Ingress', 'shop-static').metadata.annotations).toMatchObject({
      'traefik.ingress.kubernetes.io/router.middlewares': 'prod-shop-static@kubernetescrd',
    });
    expect(find(objects, 'Ingress', 'shop-web').metadata.annotations ?? {}).not.toHaveProperty(
      'traefik.ingress.kubernetes.io/router.middlewares',
    );
  });

  it('adds Cache-Control on HAProxy through its annotation', () => {
    const objects = buildIngress(modelOf({ ingress: { className: 'haproxy' } }));
    expect(find(objects, 'Ingress', 'shop-static').metadata.annotations).toMatchObject({
      'haproxy.org/response-set-header': 'Cache-Control "public, max-age=31536000, immutable"',
    });
  });

  it('says so when the class is not covered', () => {
    expect(headerSupportOf(undefined)).toBe('none');
    const objects = buildIngress(modelOf({ ingress: { className: 'nginx' } }));
    expect(
      find(objects, 'Ingress', 'shop-static').metadata.annotations?.['scalable.dev/cache-control'],
    ).toMatch(/^unsupported-class/);
  });

  it('attaches an HTTPRoute to a Gateway, with a standard header filter on the static path', () => {
    const objects = buildIngress(
      modelOf({
        ingress: { host: 'shop.example.com', gateway: { name: 'public', namespace: 'infra' } },
      }),
    );
    expect(objects.map((o) => o.kind)).toEqual(['HTTPRoute']);
    const route = spec(objects[0]!);
    expect(route.parentRefs).toEqual([
      { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'public', namespace: 'infra' },
    ]);
    expect(route.hostnames).toEqual(['shop.example.com']);
    expect(route.rules[0].filters[0]).toEqual({
      type: 'ResponseHeaderModifier',
      responseHeaderModifier: { set: [{ name: 'Cache-Control', value: cacheControlOf(31536000) }] },
    });
    expect(route.rules[1].matches[0].path).toEqual({ type: 'PathPrefix', value: '/' });
  });
});
