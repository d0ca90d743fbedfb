// ScalableApps that exercise every option, rendered by the cross-cutting unit tests.
import { readFileSync } from 'node:fs';
import yaml from 'js-yaml';

const app = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'scalable.dev/v1alpha1',
  kind: 'ScalableApp',
  metadata: { name, namespace: 'apps' },
  spec: { web: { image: 'ghcr.io/acme/app:1' }, ...spec },
});

export const EXAMPLES = ['minimal', 'full'] as const;

export const exampleText = (name: string): string =>
  readFileSync(new URL(`../../manifests/examples/${name}.yaml`, import.meta.url), 'utf8');

export const VARIANTS: Record<string, unknown> = {
  gateway: app('gw', {
    ingress: {
      host: 'gw.example.com',
      gateway: { name: 'public', namespace: 'infra', sectionName: 'https' },
    },
  }),
  traefik: app('tr', {
    ingress: { host: 'tr.example.com', className: 'traefik', tls: { secretName: 'tr-tls' } },
  }),
  haproxy: app('hp', {
    ingress: { className: 'haproxy', staticAssets: { pathPrefix: '/assets', maxAgeSeconds: 600 } },
  }),
  unknownClass: app('uc', { ingress: { className: 'cilium' } }),
  noSpread: app('ns', { topology: { spreadAcrossZones: false } }),
  everything: yaml.load(exampleText('full')),
  cacheHa: app('ha', { cache: { replicas: 2, evictionPolicy: 'allkeys-lfu' }, sessions: {} }),
  cacheOff: app('co', { cache: { enabled: false } }),
  db: app('db', {
    database: {
      shards: 3,
      replicasPerShard: 2,
      shardKey: 'tenant_id',
      deletionPolicy: 'Delete',
      storage: { size: '5Gi', storageClassName: 'fast' },
    },
  }),
  dbSync: app('dbs', { database: { synchronous: true, version: '16' } }),
  pooler: app('pl', {
    database: { shards: 2, shardKey: 'tenant_id', pooler: { mode: 'session', replicas: 3 } },
    monitoring: {},
  }),
  queue: app('q', { queue: { consumers: [{ name: 'mail', image: 'w:1' }] }, monitoring: {} }),
};
