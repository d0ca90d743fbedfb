import { describe, expect, it } from 'vitest';
import { buildAll } from '../index.ts';
import { find, modelOf } from '../shared/test-helpers.ts';
import { TLS_CLIENT_ANNOTATION } from '../shared/tls/objects.ts';
import { POOLER_AUTH_ROLE, POOLER_SCHEMA, poolerAuthSql } from './config.ts';
import { buildDatabase } from '../database/build.ts';
import { fenceArgs } from '../database/fence.ts';
import { appDatabaseName } from '../database/names.ts';
import { buildPooler } from './build.ts';
import {
  POOLER_AUTH_FILE,
  renderPatroniConfig,
  renderPoolerAuthFile,
  renderPostBootstrap,
} from '../database/patroni-config.ts';
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
      expect(pod.serviceAccountName).toBe(`shop-db-${shard}-pooler`);
      expect(pod.automountServiceAccountToken).toBe(false);
      expect(of('ServiceAccount', `shop-db-${shard}-pooler`)['automountServiceAccountToken']).toBe(
        false,
      );
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

  it('a database bootstrapped before the pooler: fence.py gets the auth SQL to run whenever its member leads', () => {
    const db = appDatabaseName(app);
    const without = modelOf({ database: { shards: 2, shardKey: 'tenant_id' } });
    for (const shard of [0, 1]) {
      const cm = find(
        buildDatabase(app),
        'ConfigMap',
        `shop-db-${shard}-patroni`,
      ) as unknown as Json;
      expect(cm['data'][POOLER_AUTH_FILE]).toBe(poolerAuthSql(db));
      const sts = find(buildDatabase(app), 'StatefulSet', `shop-db-${shard}`) as unknown as Json;
      const args = sts['spec'].template.spec.containers[0].args as string[];
      expect(args.slice(-4)).toEqual([
        '--pooler-sql',
        `/etc/patroni/${POOLER_AUTH_FILE}`,
        '--pooler-db',
        db,
      ]);
      expect(args.filter((a) => a === '--superuser')).toHaveLength(1);
      // Without the pooler: no file, no args (the pod template is as before).
      const plain = find(buildDatabase(without), 'ConfigMap', `shop-db-${shard}-patroni`);
      expect(Object.keys((plain as unknown as Json)['data'])).not.toContain(POOLER_AUTH_FILE);
      const plainSts = find(buildDatabase(without), 'StatefulSet', `shop-db-${shard}`);
      expect(JSON.stringify(plainSts)).not.toContain('--pooler');
    }
    expect(renderPoolerAuthFile(without)).toBeUndefined();
  });

  it('the auth SQL is idempotent and touches only its own role, schema and function', () => {
    const sql = poolerAuthSql('shop');
    expect(sql).toContain(
      `IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${POOLER_AUTH_ROLE}')`,
    );
    expect(sql).toContain(`CREATE SCHEMA IF NOT EXISTS ${POOLER_SCHEMA};`);
    expect(sql).toContain(`CREATE OR REPLACE FUNCTION ${POOLER_SCHEMA}.lookup(`);
    // Every statement that creates, grants or revokes names the pooler's schema or role.
    const statements = sql
      .split(';')
      .map((s) => s.trim())
      .filter((s) => /^(CREATE|GRANT|REVOKE|ALTER|DROP)\b/.test(s));
    expect(statements.length).toBeGreaterThanOrEqual(5);
    for (const s of statements)
      expect(s).toMatch(new RegExp(`${POOLER_SCHEMA}|"${POOLER_AUTH_ROLE}"`));
    expect(sql).not.toMatch(/\b(DROP|TRUNCATE|DELETE|UPDATE|INSERT)\b/);
  });

  it('fenceArgs: the pooler SQL needs the superuser and the app database, and names the superuser once', () => {
    const base = { config: 'c', pgdata: 'd', margin: 15 };
    expect(fenceArgs({ ...base, poolerSql: 'f.sql', appDatabase: 'shop' })).not.toContain(
      '--pooler-sql',
    );
    expect(fenceArgs({ ...base, superuser: 'postgres', poolerSql: 'f.sql' })).not.toContain(
      '--pooler-sql',
    );
    expect(
      fenceArgs({ ...base, superuser: 'postgres', poolerSql: 'f.sql', appDatabase: 'shop' }).slice(
        -6,
      ),
    ).toEqual(['--superuser', 'postgres', '--pooler-sql', 'f.sql', '--pooler-db', 'shop']);
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
