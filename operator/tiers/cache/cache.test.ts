import { describe, expect, it } from 'vitest';
import { EVICTION_POLICIES } from '../../api/schema.ts';
import type { AppModel } from '../../api/model.ts';
import { appWiring } from '../index.ts';
import { webEnv as webEnvWith } from '../web/build.ts';

const webEnv = (app: AppModel) => webEnvWith(app, appWiring(app));
import { buildCache, cacheEnv, sentinelAddresses } from './build.ts';
import { REDIS_STOP_GRACE_SECONDS, readyCommand } from '../../engines/redis/config.ts';
import { GENERATED_KEYS_ANNOTATION } from '../shared/secrets.ts';
import { APP_CA, find, kindNames, modelOf, spec, tlsNames } from '../shared/test-helpers.ts';
import type { K8sObject } from '../shared/chart.ts';

const data = (objects: readonly K8sObject[]) =>
  find(objects, 'ConfigMap', 'shop-cache-config')['data'] as Record<string, string>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const podOf = (o: K8sObject): any => spec(o).template.spec;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const container = (o: K8sObject, name: string): any =>
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  podOf(o).containers.find((c: any) => c.name === name);
const envNames = (env: ReadonlyArray<{ name: string }>) => env.map((e) => e.name);

describe('buildCache', () => {
  it('renders nothing when the cache is left out or disabled', () => {
    expect(buildCache(modelOf({}))).toEqual([]);
    const off = modelOf({ cache: { enabled: false, memory: '1Gi' } });
    expect(buildCache(off)).toEqual([]);
    expect(cacheEnv(off)).toEqual([]);
    expect(envNames(webEnv(off))).not.toContain('REDIS_URL');
  });

  describe('replicas: 0 (one Redis)', () => {
    const objects = buildCache(modelOf({ cache: {} }));

    it('renders the Secret, ServiceAccount, ConfigMap, Deployment, Service and NetworkPolicy', () => {
      expect(kindNames(objects)).toEqual([
        'Secret/shop-cache-users',
        ...APP_CA,
        ...tlsNames('shop-cache'),
        'ServiceAccount/shop-cache',
        'ConfigMap/shop-cache-config',
        'Deployment/shop-cache',
        'Service/shop-cache',
        'NetworkPolicy/shop-cache',
      ]);
      for (const o of objects) {
        expect(o.metadata.namespace).toBe('prod');
        expect(o.metadata.labels?.['scalable.dev/tier']).toBe('cache');
      }
    });

    it('declares a password per ACL role for the reconciler to generate, with no value', () => {
      const s = find(objects, 'Secret', 'shop-cache-users');
      expect(s.metadata.annotations?.[GENERATED_KEYS_ANNOTATION]).toBe(
        'admin-password,replication-password,sentinel-password,app-password,exporter-password',
      );
      // The legacy single password is no longer generated (a new tier has no default user).
      expect(objects.some((o) => o.metadata.name === 'shop-cache-auth')).toBe(false);
      expect(s).not.toHaveProperty('data');
      expect(s).not.toHaveProperty('stringData');
    });

    it('runs one Redis, recreated on change (never two caches behind one Service)', () => {
      const d = spec(find(objects, 'Deployment'));
      expect(d.replicas).toBe(1);
      expect(d.strategy).toEqual({ type: 'Recreate' });
      expect(d.selector.matchLabels).toEqual({
        'scalable.dev/app': 'shop',
        'scalable.dev/tier': 'cache',
        'app.kubernetes.io/component': 'cache',
      });
    });

    it('starts redis from the ConfigMap with the password from the Secret only', () => {
      const d = find(objects, 'Deployment');
      const redis = container(d, 'redis');
      expect(redis.image).toBe('ghcr.io/scalable-dev/redis:0.1.0');
      expect(redis.command).toEqual(['sh', '/etc/redis/start-redis.sh']);
      expect(redis).not.toHaveProperty('args');
      expect(redis.env[0]).toEqual({
        name: 'ADMIN_PASSWORD',
        valueFrom: { secretKeyRef: { name: 'shop-cache-users', key: 'admin-password' } },
      });
      // The legacy password of a tier made before ACL users, only while its Secret exists.
      expect(redis.env).toContainEqual({
        name: 'REDIS_PASSWORD',
        valueFrom: { secretKeyRef: { name: 'shop-cache-auth', key: 'password', optional: true } },
      });
      expect(envNames(redis.env)).not.toContain('SENTINELS');
      expect(redis).not.toHaveProperty('lifecycle');
      expect(Object.keys(data(objects)).sort()).toEqual(['redis.conf', 'start-redis.sh']);
      expect(data(objects)['redis.conf']).not.toMatch(/^(requirepass|masterauth)/m);
      expect(podOf(d).volumes[0]).toEqual({
        name: 'config',
        configMap: { name: 'shop-cache-config', defaultMode: 0o444 },
      });
    });

    it('sets the memory limit to maxmemory + 25% + 64Mi, request = limit', () => {
      const redis = container(find(objects, 'Deployment'), 'redis');
      expect(redis.resources).toEqual({
        // Ephemeral storage: the data emptyDir, sized like the memory limit.
        requests: { cpu: '100m', memory: '384Mi', 'ephemeral-storage': '384Mi' },
        limits: { memory: '384Mi' },
      });
      expect(data(objects)['redis.conf']).toContain(`maxmemory ${256 * 2 ** 20}\n`);
    });

    it('is ready on PONG as a master or an in-sync replica (password from the environment), alive while it listens', () => {
      const redis = container(find(objects, 'Deployment'), 'redis');
      expect(redis.readinessProbe.exec.command).toEqual(readyCommand(6379));
      const probe: string = redis.readinessProbe.exec.command[2];
      expect(probe).toContain(
        'set -- --user admin ${TLS_CA_FILE:+--tls --cacert "$TLS_CA_FILE"} -p 6379\n',
      );
      expect(probe).toContain('export REDISCLI_AUTH="$ADMIN_PASSWORD"\n');
      expect(probe).toContain('redis-cli "$@" ping | grep -qx PONG || exit 1\n');
      // A standalone Redis is a master: ready as before; a replica only once in sync.
      expect(probe).toContain('grep -qx role:master && exit 0\n');
      expect(probe).toMatch(/master_link_status:up &&\n.*master_sync_in_progress:0$/);
      // The password only through REDISCLI_AUTH, never in argv.
      expect(probe).not.toMatch(/ -a |--pass/);
      // Only the main pods' grace: no preStop waits here.
      expect(podOf(find(objects, 'Deployment')).terminationGracePeriodSeconds).toBe(30);
      // A busy Redis (loading, a slow command) leaves rotation but is not restarted.
      for (const p of ['startupProbe', 'livenessProbe']) {
        expect(redis[p].exec).toBeUndefined();
        expect(redis[p].tcpSocket).toEqual({ port: 'redis' });
      }
      expect(
        redis.livenessProbe.periodSeconds * redis.livenessProbe.failureThreshold,
      ).toBeGreaterThan(redis.readinessProbe.periodSeconds * redis.readinessProbe.failureThreshold);
    });

    it('meets Pod Security restricted as the redis user, with a writable /data only', () => {
      const pod = podOf(find(objects, 'Deployment'));
      expect(pod.securityContext).toMatchObject({
        runAsNonRoot: true,
        runAsUser: 999,
        fsGroup: 999,
      });
      expect(pod.automountServiceAccountToken).toBe(false);
      expect(pod.serviceAccountName).toBe('shop-cache');
      for (const c of pod.containers) {
        expect(c.securityContext).toMatchObject({
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
          capabilities: { drop: ['ALL'] },
        });
      }
      expect(pod.volumes[1]).toEqual({ name: 'data', emptyDir: { sizeLimit: '384Mi' } });
    });

    it('runs redis_exporter beside Redis, with the password by secretKeyRef', () => {
      const exporter = container(find(objects, 'Deployment'), 'exporter');
      expect(exporter.image).toBe('ghcr.io/scalable-dev/redis-exporter:0.1.0');
      expect(exporter.ports).toEqual([{ name: 'metrics', containerPort: 9121, protocol: 'TCP' }]);
      // Its own ACL user and password (no data, no CONFIG), and no other role's.
      expect(exporter.env).toContainEqual({ name: 'REDIS_USER', value: 'exporter' });
      expect(exporter.env).toContainEqual({
        name: 'REDIS_PASSWORD',
        valueFrom: { secretKeyRef: { name: 'shop-cache-users', key: 'exporter-password' } },
      });
      expect(exporter.env.filter((e: { valueFrom?: unknown }) => e.valueFrom)).toHaveLength(1);
    });

    it('exposes redis and metrics on the Service', () => {
      expect(spec(find(objects, 'Service')).ports).toEqual([
        { name: 'redis', port: 6379, targetPort: 'redis' },
        { name: 'metrics', port: 9121, targetPort: 'metrics' },
      ]);
    });

    it("admits only the app's own pods to Redis", () => {
      const np = spec(find(objects, 'NetworkPolicy'));
      expect(np.podSelector.matchLabels).toEqual({
        'scalable.dev/app': 'shop',
        'scalable.dev/tier': 'cache',
      });
      expect(np.ingress).toEqual([
        {
          from: [{ podSelector: { matchLabels: { 'scalable.dev/app': 'shop' } } }],
          ports: [{ port: 6379, protocol: 'TCP' }],
        },
        {
          from: [
            {
              namespaceSelector: {
                matchExpressions: [
                  { key: 'kubernetes.io/metadata.name', operator: 'In', values: ['monitoring'] },
                ],
              },
            },
          ],
          ports: [{ port: 9121, protocol: 'TCP' }],
        },
      ]);
    });

    it('hands the app REDIS_URL without a password, the password by reference, and the TTL', () => {
      const env = webEnv(modelOf({ cache: { defaultTTLSeconds: 60 } }));
      expect(env.filter((e) => /^(REDIS|CACHE)_/.test(e.name))).toEqual([
        { name: 'REDIS_URL', value: 'rediss://shop-cache.prod.svc:6379/0' },
        { name: 'REDIS_USERNAME', value: 'app' },
        {
          name: 'REDIS_PASSWORD',
          valueFrom: { secretKeyRef: { name: 'shop-cache-users', key: 'app-password' } },
        },
        { name: 'REDIS_SSLROOTCERT', value: '/etc/scalable/ca/cache-ca/ca.crt' },
        { name: 'CACHE_TTL_SECONDS', value: '60' },
      ]);
      const plain = webEnv(modelOf({ cache: { defaultTTLSeconds: 60, tls: false } }));
      expect(plain.find((e) => e.name === 'REDIS_URL')?.value).toBe('redis://shop-cache:6379/0');
      expect(envNames(plain)).not.toContain('REDIS_SSLROOTCERT');
    });
  });

  it.each(EVICTION_POLICIES)('writes maxmemory-policy %s into redis.conf', (policy) => {
    const conf = data(buildCache(modelOf({ cache: { evictionPolicy: policy } })))['redis.conf'];
    expect(conf).toContain(`\nmaxmemory-policy ${policy}\n`);
  });

  it('restarts the pods when redis.conf changes (config hash on the template)', () => {
    const hash = (policy: string) =>
      spec(find(buildCache(modelOf({ cache: { evictionPolicy: policy } })), 'Deployment')).template
        .metadata.annotations['scalable.dev/config-hash'];
    expect(hash('allkeys-lru')).toMatch(/^[0-9a-f]{16}$/);
    expect(hash('allkeys-lru')).not.toBe(hash('allkeys-lfu'));
    expect(hash('allkeys-lru')).toBe(hash('allkeys-lru'));
  });

  it('restarts Sentinels only when their own config changes', () => {
    const hashes = (cache: object) => {
      const objects = buildCache(modelOf({ cache: { replicas: 1, ...cache } }));
      return ['shop-cache', 'shop-cache-sentinel'].map(
        (n) =>
          spec(find(objects, 'StatefulSet', n)).template.metadata.annotations[
            'scalable.dev/config-hash'
          ],
      );
    };
    const [redisA, sentinelA] = hashes({ memory: '1Gi' });
    const [redisB, sentinelB] = hashes({ memory: '2Gi' });
    expect(redisA).not.toBe(redisB);
    expect(sentinelA).toBe(sentinelB);
  });

  it('sizes memory from spec.cache.memory', () => {
    const objects = buildCache(modelOf({ cache: { memory: '1Gi' } }));
    expect(data(objects)['redis.conf']).toContain(`maxmemory ${2 ** 30}\n`);
    expect(container(find(objects, 'Deployment'), 'redis').resources.limits.memory).toBe('1344Mi');
  });

  it("opens the metrics port to Prometheus's namespaces only, monitoring on or off (issue 36)", () => {
    const on = { ...modelOf({ cache: {}, monitoring: {} }) };
    const own = { ...on, network: { ...on.network, monitoringNamespaces: ['obs', 'prom'] } };
    const np = spec(find(buildCache(own), 'NetworkPolicy'));
    expect(np.ingress).toHaveLength(2);
    expect(np.ingress[1]).toEqual({
      from: [
        {
          namespaceSelector: {
            matchExpressions: [
              { key: 'kubernetes.io/metadata.name', operator: 'In', values: ['obs', 'prom'] },
            ],
          },
        },
      ],
      ports: [{ port: 9121, protocol: 'TCP' }],
    });
  });

  it('spreads over zones unless told not to', () => {
    const pod = (t: object) =>
      podOf(find(buildCache(modelOf({ cache: {}, topology: t })), 'Deployment'));
    expect(pod({}).topologySpreadConstraints).toHaveLength(2);
    expect(pod({ spreadAcrossZones: false })).not.toHaveProperty('topologySpreadConstraints');
  });

  it('sets owner references when the app has a UID', () => {
    const app = { ...modelOf({ cache: {} }), uid: 'u-1' };
    for (const o of buildCache(app)) {
      expect(o.metadata['ownerReferences']).toEqual([
        expect.objectContaining({
          kind: 'ScalableApp',
          name: 'shop',
          uid: 'u-1',
          controller: true,
        }),
      ]);
    }
  });

  describe('replicas: 2 (Sentinel)', () => {
    const app = modelOf({ cache: { replicas: 2 } });
    const objects = buildCache(app);

    it('renders a Redis StatefulSet, a Sentinel StatefulSet, their Services and PDBs', () => {
      expect(kindNames(objects)).toEqual([
        'Secret/shop-cache-users',
        ...APP_CA,
        ...tlsNames('shop-cache'),
        'ServiceAccount/shop-cache',
        'ConfigMap/shop-cache-config',
        'Service/shop-cache-headless',
        'StatefulSet/shop-cache',
        'PodDisruptionBudget/shop-cache',
        'Service/shop-cache-sentinel',
        'Service/shop-cache-sentinel-headless',
        'StatefulSet/shop-cache-sentinel',
        'PodDisruptionBudget/shop-cache-sentinel',
        'NetworkPolicy/shop-cache',
      ]);
    });

    it('runs replicas + 1 Redis pods, pod 0 first', () => {
      const sts = spec(find(objects, 'StatefulSet', 'shop-cache'));
      expect(sts.replicas).toBe(3);
      expect(sts.serviceName).toBe('shop-cache-headless');
      expect(sts.podManagementPolicy).toBe('OrderedReady');
      expect(sts).not.toHaveProperty('volumeClaimTemplates');
    });

    it('runs 3 Sentinels, with a quorum of 2 in sentinel.conf', () => {
      const sts = find(objects, 'StatefulSet', 'shop-cache-sentinel');
      expect(spec(sts).replicas).toBe(3);
      expect(spec(sts).podManagementPolicy).toBe('Parallel');
      const c = container(sts, 'sentinel');
      expect(c.command).toEqual(['sh', '/etc/redis/start-sentinel.sh']);
      expect(c.readinessProbe.exec.command[2]).toContain(
        'redis-cli --user admin ${TLS_CA_FILE:+--tls --cacert "$TLS_CA_FILE"} -p 26379 ping',
      );
      expect(data(objects)['sentinel.conf']).toContain(
        'sentinel monitor shop-cache @MASTER_HOST@ @MASTER_PORT@ 2\n',
      );
      expect(podOf(sts).securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 999 });
    });

    it('hands the master role over before a Redis pod stops, given the time to wait for a replica in sync', () => {
      const sts = find(objects, 'StatefulSet', 'shop-cache');
      const redis = container(sts, 'redis');
      expect(redis.lifecycle).toEqual({
        preStop: { exec: { command: ['sh', '/etc/redis/pre-stop.sh'] } },
      });
      expect(redis.readinessProbe.exec.command).toEqual(readyCommand(6379));
      expect(podOf(sts).terminationGracePeriodSeconds).toBe(REDIS_STOP_GRACE_SECONDS);
      expect(
        podOf(find(objects, 'StatefulSet', 'shop-cache-sentinel')).terminationGracePeriodSeconds,
      ).toBe(30);
      expect(Object.keys(data(objects)).sort()).toEqual([
        'pre-stop.sh',
        'redis.conf',
        'sentinel.conf',
        'start-redis.sh',
        'start-sentinel.sh',
      ]);
    });

    it('resolves pods by stable names, before they are ready', () => {
      for (const name of ['shop-cache-headless', 'shop-cache-sentinel-headless']) {
        const s = spec(find(objects, 'Service', name));
        expect(s.clusterIP).toBe('None');
        expect(s.publishNotReadyAddresses).toBe(true);
      }
    });

    it('gives the start scripts stable addresses for discovery', () => {
      const env = container(find(objects, 'StatefulSet', 'shop-cache'), 'redis').env;
      const value = (n: string) => env.find((e: { name: string }) => e.name === n)?.value;
      expect(value('SELF_ADDR')).toBe('$(POD_NAME).shop-cache-headless.prod.svc:6379');
      expect(value('SEED_ADDR')).toBe('shop-cache-0.shop-cache-headless.prod.svc:6379');
      expect(value('MASTER_NAME')).toBe('shop-cache');
      expect(value('SENTINELS')).toBe(sentinelAddresses(app).join(','));
      // POD_NAME must come before the variable that expands it.
      expect(envNames(env).indexOf('POD_NAME')).toBeLessThan(envNames(env).indexOf('SELF_ADDR'));
    });

    it('hands the app the Sentinels and the master name instead of REDIS_URL', () => {
      const env = webEnv(app).filter((e) => /^(REDIS|CACHE)_/.test(e.name));
      expect(env).toEqual([
        {
          name: 'REDIS_SENTINELS',
          value: [0, 1, 2]
            .map((i) => `shop-cache-sentinel-${i}.shop-cache-sentinel-headless.prod.svc:26379`)
            .join(','),
        },
        { name: 'REDIS_MASTER_NAME', value: 'shop-cache' },
        { name: 'REDIS_USERNAME', value: 'app' },
        {
          name: 'REDIS_PASSWORD',
          valueFrom: { secretKeyRef: { name: 'shop-cache-users', key: 'app-password' } },
        },
        { name: 'REDIS_SSLROOTCERT', value: '/etc/scalable/ca/cache-ca/ca.crt' },
        { name: 'CACHE_TTL_SECONDS', value: '300' },
      ]);
    });

    it('lets at most one Redis and one Sentinel be disrupted', () => {
      for (const name of ['shop-cache', 'shop-cache-sentinel']) {
        expect(spec(find(objects, 'PodDisruptionBudget', name)).maxUnavailable).toBe(1);
      }
    });

    it('admits the app to Redis and Sentinel ports', () => {
      expect(spec(find(objects, 'NetworkPolicy')).ingress[0].ports).toEqual([
        { port: 6379, protocol: 'TCP' },
        { port: 26379, protocol: 'TCP' },
      ]);
    });
  });

  describe('TLS (the default)', () => {
    const app = modelOf({ cache: { replicas: 1 } });
    const objects = buildCache(app);

    it('issues one certificate for every name clients and peers use, from the app CA', () => {
      const names = spec(find(objects, 'Certificate', 'shop-cache')).dnsNames as string[];
      for (const n of [
        'shop-cache.prod.svc',
        '*.shop-cache-headless.prod.svc',
        'shop-cache-sentinel.prod.svc',
        '*.shop-cache-sentinel-headless.prod.svc',
        'localhost',
      ])
        expect(names).toContain(n);
      expect(find(objects, 'Secret', 'shop-cache-tls').metadata.annotations).toMatchObject({
        'scalable.dev/tls-dns-names': names.join(','),
      });
    });

    it('mounts the key pair into Redis and Sentinel, the CA into the exporter', () => {
      for (const [name, c] of [
        ['shop-cache', 'redis'],
        ['shop-cache-sentinel', 'sentinel'],
      ] as const) {
        const sts = find(objects, 'StatefulSet', name);
        expect(podOf(sts).volumes).toContainEqual({
          name: 'tls',
          secret: { secretName: 'shop-cache-tls', defaultMode: 0o640 },
        });
        const ct = container(sts, c);
        expect(ct.env).toContainEqual({ name: 'TLS_CA_FILE', value: '/etc/scalable/ca/ca.crt' });
        expect(ct.volumeMounts).toContainEqual({
          name: 'tls',
          mountPath: '/etc/scalable/tls',
          readOnly: true,
        });
      }
      const exporter = container(find(objects, 'StatefulSet', 'shop-cache'), 'exporter');
      expect(exporter.env).toContainEqual({ name: 'REDIS_ADDR', value: 'rediss://localhost:6379' });
      expect(exporter.env).toContainEqual({
        name: 'REDIS_EXPORTER_TLS_CA_CERT_FILE',
        value: '/etc/scalable/ca/ca.crt',
      });
      expect(data(objects)['sentinel.conf']).toContain('\ntls-port 26379\n');
    });

    it('gives app pods the CA from the cache Secret (ca.crt only)', () => {
      const w = appWiring(app);
      expect(w.volumes).toContainEqual({
        name: 'cache-ca',
        secret: { secretName: 'shop-cache-tls', items: [{ key: 'ca.crt', path: 'ca.crt' }] },
      });
    });

    it('renders none of it with tls: false', () => {
      const plain = buildCache(modelOf({ cache: { replicas: 1, tls: false } }));
      expect(kindNames(plain).filter((k) => /tls|Certificate|Issuer/.test(k))).toEqual([]);
      expect(JSON.stringify(plain)).not.toContain('"name":"TLS_CA_FILE"');
      expect(data(plain)['redis.conf']).toContain('\nport 6379\n');
    });

    it('leaves the app CA objects to the database when it uses them', () => {
      const both = buildCache(modelOf({ cache: {}, database: {} }));
      expect(kindNames(both)).not.toContain('Issuer/shop-tls-ca');
      expect(kindNames(both)).toContain('Certificate/shop-cache');
    });
  });
});
