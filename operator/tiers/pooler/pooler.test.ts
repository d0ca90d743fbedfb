import { describe, expect, it } from 'vitest';
import { buildAll } from '../index.ts';
import { find, modelOf } from '../shared/test-helpers.ts';
import { TLS_CLIENT_ANNOTATION } from '../shared/tls/objects.ts';
import { POOLER_AUTH_ROLE } from './config.ts';
import { buildPooler } from './build.ts';
import { renderPatroniConfig, renderPostBootstrap } from '../database/patroni-config.ts';
import { buildScrapeObjects } from '../monitoring/scrape.ts';
import { SHARD_MAP_KEY } from '../database/shard-map.ts';
import { parseShardMap } from '../../../sdk/src/contract/shard-map.ts';
import type { K8sObject } from '../shared/chart.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const app = modelOf({
  database: { shards: 2, shardKey: 'tenant_id', pooler: { defaultPoolSize: 30 } },
});
const objects = buildPooler(app);
const of = (kind: string, name: string) => find(objects, kind, name) as unknown as Json;

describe('pooler tier', () => {
  it('renders nothing unless database.pooler is present', () => {
    expect(buildPooler(modelOf({ database: {} }))).toEqual([]);
    expect(
      buildAll(modelOf({ database: {} })).some((o) => o.metadata.name.includes('pooler')),
    ).toBe(false);
  });

  it('per shard: a Deployment of 2 spread over zones, a -rw-pooler Service, a PDB', () => {
    for (const shard of [0, 1]) {
      const d = of('Deployment', `shop-db-${shard}-pooler`);
      expect(d['spec'].replicas).toBe(2);
      const pod = d['spec'].template.spec;
      expect(pod.topologySpreadConstraints.map((c: Json) => c['topologyKey'])).toContain(
        'topology.kubernetes.io/zone',
      );
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 999 });
      expect(pod.containers.map((c: Json) => c['name'])).toEqual(['pgbouncer', 'exporter']);
      const svc = of('Service', `shop-db-${shard}-rw-pooler`);
      expect(svc['spec'].selector).toEqual(d['spec'].selector.matchLabels);
      expect(svc['spec'].selector['scalable.dev/pooler-shard']).toBe(String(shard));
      const pdb = of('PodDisruptionBudget', `shop-db-${shard}-pooler`);
      expect(pdb['spec']).toMatchObject({ maxUnavailable: 1 });
    }
  });

  it("points PgBouncer at the shard's -rw Service with verify-full, and serves TLS only", () => {
    const ini = of('ConfigMap', 'shop-db-1-pooler')['data']['pgbouncer.ini'] as string;
    expect(ini).toContain("shop = host='shop-db-1.prod.svc' port=5432 dbname='shop'");
    expect(ini).toMatch(/^server_tls_sslmode = verify-full$/m);
    expect(ini).toMatch(/^client_tls_sslmode = require$/m);
    expect(ini).toMatch(/^pool_mode = transaction$/m);
    expect(ini).toMatch(/^default_pool_size = 30$/m);
    expect(ini).toMatch(/^max_prepared_statements = 200$/m);
    // A dead primary's connections are let go in bounded time (keepalives, user timeout).
    expect(ini).toMatch(/^tcp_keepalive = 1$/m);
    expect(ini).toMatch(/^tcp_user_timeout = 20000$/m);
    expect(ini).toMatch(new RegExp(`^auth_user = ${POOLER_AUTH_ROLE}$`, 'm'));
    // No password anywhere: no auth_file, no password in the config.
    expect(ini).not.toMatch(/auth_file|password/);
    const hba = of('ConfigMap', 'shop-db-1-pooler')['data']['hba.conf'] as string;
    expect(hba.split('\n').filter((l) => l && !l.startsWith('hostssl'))).toEqual([]);
  });

  it('gets a serving certificate for its Service and a client certificate for its auth role', () => {
    const serving = of('Secret', 'shop-db-0-pooler-tls')['metadata'].annotations;
    expect(serving['scalable.dev/tls-dns-names']).toContain('shop-db-0-rw-pooler.prod.svc');
    expect(serving[TLS_CLIENT_ANNOTATION]).toBeUndefined();
    const client = of('Secret', 'shop-db-0-pooler-client-tls')['metadata'].annotations;
    expect(client[TLS_CLIENT_ANNOTATION]).toBe('true');
    expect(client['scalable.dev/tls-dns-names']).toBe(POOLER_AUTH_ROLE);
    expect(of('Certificate', 'shop-db-0-pooler-client')['spec'].usages).toEqual([
      'digital signature',
      'client auth',
    ]);
  });

  it('NetworkPolicy: app pods in, Postgres and DNS out, nothing else', () => {
    const np = of('NetworkPolicy', 'shop-pooler')['spec'];
    expect(np.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(np.ingress[0]).toEqual({
      from: [{ podSelector: { matchLabels: { 'scalable.dev/app': 'shop' } } }],
      ports: [{ port: 5432, protocol: 'TCP' }],
    });
    const egressTo = np.egress.map((e: Json) => e['ports']);
    expect(egressTo).toHaveLength(2);
    expect(np.egress[1].to).toEqual([
      {
        podSelector: {
          matchLabels: {
            'scalable.dev/app': 'shop',
            'scalable.dev/tier': 'database',
            'app.kubernetes.io/component': 'postgres',
          },
        },
      },
    ]);
  });

  it('Postgres admits the auth role by certificate only, and bootstrap creates it', () => {
    const cert = `hostssl all ${POOLER_AUTH_ROLE} 0.0.0.0/0 cert`;
    expect(renderPatroniConfig(app, 0)).toContain(cert);
    expect(renderPatroniConfig(modelOf({ database: {} }), 0)).not.toContain(POOLER_AUTH_ROLE);
    const lines = renderPatroniConfig(app, 0).split('\n');
    // Before the catch-all SCRAM line, or it would never match.
    expect(lines.findIndex((l) => l.includes(cert))).toBeLessThan(
      lines.findIndex((l) => l.includes('hostssl all all 0.0.0.0/0 scram-sha-256')),
    );
    expect(renderPostBootstrap(app)).toContain(`CREATE ROLE "${POOLER_AUTH_ROLE}" LOGIN NOINHERIT`);
    expect(renderPostBootstrap(modelOf({ database: {} }))).not.toContain(POOLER_AUTH_ROLE);
  });

  it('with monitoring, a PodMonitor scrapes the exporter with the shard label', () => {
    const pm = buildScrapeObjects(modelOf({ database: { pooler: {} }, monitoring: {} })).find(
      (o) => o.metadata.name === 'shop-pooler-metrics',
    ) as unknown as Json;
    expect(pm['spec'].selector.matchLabels['scalable.dev/tier']).toBe('pooler');
    expect(pm['spec'].podMetricsEndpoints[0].port).toBe('metrics');
    expect(pm['spec'].podMetricsEndpoints[0].relabelings.at(-1).targetLabel).toBe('scalable_shard');
  });

  describe('app wiring', () => {
    const withQueue = (database: Record<string, unknown>) =>
      buildAll(
        modelOf({
          database: { shards: 2, shardKey: 'tenant_id', ...database },
          queue: { consumers: [{ name: 'mail', image: 'w:1' }] },
        }),
      );
    const mapOf = (all: K8sObject[]) =>
      parseShardMap((find(all, 'ConfigMap', 'shop-shard-map') as Json)['data'][SHARD_MAP_KEY]);
    const envOf = (all: K8sObject[], deployment: string) =>
      Object.fromEntries(
        (find(all, 'Deployment', deployment) as Json)['spec'].template.spec.containers[0].env.map(
          (e: Json) => [e['name'], e['value']],
        ),
      ) as Record<string, string | undefined>;

    it("with the pooler on, every shard's primary address in the map is its pooler's Service; reads stay on -ro", () => {
      const map = mapOf(withQueue({ pooler: {} }));
      expect(map.shards.map((s) => [s.primary, s.replicas, s.port])).toEqual([
        ['shop-db-0-rw-pooler.prod.svc', 'shop-db-0-ro.prod.svc', 5432],
        ['shop-db-1-rw-pooler.prod.svc', 'shop-db-1-ro.prod.svc', 5432],
      ]);
      // The address the SDK verifies (verify-full) is a name on the pooler's certificate.
      for (const s of map.shards) {
        const names = of('Secret', `shop-db-${s.index}-pooler-tls`)['metadata'].annotations[
          'scalable.dev/tls-dns-names'
        ] as string;
        expect(names.split(',')).toContain(s.primary);
      }
    });

    it('web and worker pods get DATABASE_HOST of the pooler, TLS verified against the database CA', () => {
      const all = withQueue({ pooler: {} });
      for (const d of ['shop-web', 'shop-worker-mail']) {
        const env = envOf(all, d);
        expect(env['DATABASE_HOST'], d).toBe('shop-db-0-rw-pooler.prod.svc');
        expect(env['DATABASE_RO_HOST'], d).toBe('shop-db-0-ro.prod.svc');
        expect(env['DATABASE_SSLMODE'], d).toBe('verify-full');
      }
    });

    it('without the pooler the map and env name the -rw Services, as before', () => {
      const all = withQueue({});
      expect(mapOf(all).shards.map((s) => s.primary)).toEqual([
        'shop-db-0.prod.svc',
        'shop-db-1.prod.svc',
      ]);
      expect(envOf(all, 'shop-web')['DATABASE_HOST']).toBe('shop-db-0.prod.svc');
      expect(all.some((o) => o.metadata.name.includes('pooler'))).toBe(false);
    });

    it('turning the pooler on changes the addresses, not the map version or its buckets', () => {
      const off = mapOf(withQueue({}));
      const on = mapOf(withQueue({ pooler: {} }));
      expect(on.version).toBe(off.version);
      expect(on.ranges).toEqual(off.ranges);
    });
  });
});
