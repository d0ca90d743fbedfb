import yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { appWiring } from '../index.ts';
import { GENERATED_KEYS_ANNOTATION } from '../shared/secrets.ts';
import { APP_CA, find, kindNames, modelOf, spec } from '../shared/test-helpers.ts';
import { parseShardMap, shardFor } from '../../../sdk/src/contract/index.ts';
import { buildDatabase } from './build.ts';
import {
  dcsConfigMapName,
  dcsConfigUpdate,
  restartParametersLag,
  patroniConfig,
  renderPatroniConfig,
  renderPostBootstrap,
} from './patroni-config.ts';
import { appDatabaseName } from './names.ts';

const sharded = modelOf({
  database: {
    shards: 2,
    replicasPerShard: 2,
    synchronous: true,
    shardKey: 'customer_id',
    storage: { size: '20Gi', storageClassName: 'fast' },
  },
});
const objects = buildDatabase(sharded);

describe('buildDatabase', () => {
  it('renders nothing when the tier is off', () => {
    expect(buildDatabase(modelOf({}))).toEqual([]);
    expect(buildDatabase(modelOf({ database: { enabled: false } }))).toEqual([]);
  });

  it('renders shared objects once and per-shard objects per shard', () => {
    expect(kindNames(objects)).toEqual([
      'Secret/shop-db-auth',
      'Secret/shop-db-app',
      'Secret/shop-db-rewind',
      // The app's own CA for cert-manager, then per shard the Secret, its record, its Certificate.
      ...APP_CA,
      ...[0, 1].flatMap((i) => [
        `Secret/shop-db-${i}-tls`,
        `ConfigMap/shop-db-${i}-tls-public`,
        `Certificate/shop-db-${i}`,
      ]),
      'ConfigMap/shop-shard-map',
      'ServiceAccount/shop-db',
      'RoleBinding/shop-db-patroni',
      ...[0, 1].flatMap((i) => [
        `ConfigMap/shop-db-${i}-patroni`,
        `Service/shop-db-${i}`,
        `Service/shop-db-${i}-ro`,
        `Service/shop-db-${i}-hl`,
        `StatefulSet/shop-db-${i}`,
        `PodDisruptionBudget/shop-db-${i}`,
      ]),
      'NetworkPolicy/shop-db',
    ]);
    for (const o of objects) expect(o.metadata.namespace).toBe('prod');
  });

  it('runs replicasPerShard + 1 Patroni pods per shard, restricted, as uid 999', () => {
    const sts = spec(find(objects, 'StatefulSet', 'shop-db-1'));
    expect(sts.replicas).toBe(3);
    expect(sts.serviceName).toBe('shop-db-1-hl');
    expect(sts.podManagementPolicy).toBe('Parallel');
    expect(sts.selector.matchLabels).toMatchObject({
      'scalable.dev/cluster': 'shop-db-1',
      'scalable.dev/database': 'shop',
    });
    const pod = sts.template.spec;
    expect(pod.serviceAccountName).toBe('shop-db');
    expect(pod.securityContext).toMatchObject({ runAsUser: 999, fsGroup: 999, runAsNonRoot: true });
    expect(pod.containers.map((c: { name: string }) => c.name)).toEqual(['postgres', 'exporter']);
    const pg = pod.containers[0];
    expect(pg.image).toBe('ghcr.io/scalable-dev/postgres-patroni:17-0.1.0');
    // fence.py starts Patroni, fences Postgres when Patroni stops renewing, and (TLS, the
    // default) reloads Patroni on a renewed certificate; the operator reads the margin.
    expect(pg.command).toEqual(['python3', '/etc/patroni/fence.py']);
    expect(pg.args).toEqual([
      '--config',
      '/etc/patroni/patroni.yml',
      '--pgdata',
      '/var/lib/postgresql/data/pgdata',
      '--margin',
      '15',
      '--run',
      '/tmp/fence',
      '--cert',
      '/etc/scalable/tls/tls.crt',
      '--every',
      '30',
      '--superuser',
      'postgres',
      '--rewind-user',
      'scalable-rewind',
    ]);
    expect(sts.template.metadata.annotations).toEqual({
      'scalable.dev/fence-margin': '15',
      'scalable.dev/postgres-restart': 'wal_level=logical',
    });
    const cm = find(buildDatabase(sharded), 'ConfigMap', 'shop-db-1-patroni') as unknown as {
      data: Record<string, string>;
    };
    expect(cm.data['fence.py']).toMatch(/^#!\/usr\/bin\/env python3/);
    expect(pg.readinessProbe.httpGet.path).toBe('/readiness');
    expect(pod.containers[1].image).toContain('postgres-exporter');
    expect(
      pod.topologySpreadConstraints.map((t: { topologyKey: string }) => t.topologyKey),
    ).toEqual(['topology.kubernetes.io/zone', 'kubernetes.io/hostname']);
    expect(
      pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution,
    ).toHaveLength(2);
  });

  it('claims storage from the spec and never lets a StatefulSet delete it', () => {
    const sts = spec(find(objects, 'StatefulSet', 'shop-db-0'));
    expect(sts.volumeClaimTemplates[0].spec).toEqual({
      accessModes: ['ReadWriteOnce'],
      storageClassName: 'fast',
      resources: { requests: { storage: '20Gi' } },
    });
    expect(sts.persistentVolumeClaimRetentionPolicy).toEqual({
      whenDeleted: 'Retain',
      whenScaled: 'Retain',
    });
    const del = spec(
      find(buildDatabase(modelOf({ database: { deletionPolicy: 'Delete' } })), 'StatefulSet'),
    );
    // deletionPolicy: Delete is the app finalizer's job, on the app's deletion only.
    expect(del.persistentVolumeClaimRetentionPolicy).toEqual({
      whenDeleted: 'Retain',
      whenScaled: 'Retain',
    });
    expect(del.volumeClaimTemplates[0].spec).not.toHaveProperty('storageClassName');
  });

  it('leaves restarts to the operator, with time for a clean Postgres shutdown', () => {
    const sts = spec(find(objects, 'StatefulSet', 'shop-db-0'));
    expect(sts.updateStrategy).toEqual({ type: 'OnDelete' });
    expect(sts.template.spec.terminationGracePeriodSeconds).toBe(300);
  });

  it('checks the data directory major before Postgres starts', () => {
    const pod = spec(find(objects, 'StatefulSet', 'shop-db-0')).template.spec;
    expect(pod.initContainers).toHaveLength(1);
    const check = pod.initContainers[0];
    expect(check).toMatchObject({
      name: 'check-data-version',
      image: pod.containers[0].image,
      command: ['sh', '-c', expect.stringContaining('PG_VERSION')],
      terminationMessagePolicy: 'FallbackToLogsOnError',
      volumeMounts: [{ name: 'data', mountPath: '/var/lib/postgresql/data', readOnly: true }],
    });
    expect(check.env).toEqual([
      { name: 'PGDATA', value: '/var/lib/postgresql/data/pgdata' },
      { name: 'PG_BIN', value: '/usr/lib/postgresql/17/bin' },
    ]);
  });

  it('passes every password by secretKeyRef and none by value', () => {
    const env = spec(find(objects, 'StatefulSet', 'shop-db-0')).template.spec.containers.flatMap(
      (c: { env: unknown[] }) => c.env,
    ) as Array<{
      name: string;
      value?: string;
      valueFrom?: { secretKeyRef?: { name: string; key: string } };
    }>;
    const secrets = env.filter((e) => /PASSWORD|PASS$/.test(e.name));
    expect(secrets.map((e) => e.name).sort()).toEqual([
      'DATA_SOURCE_PASS',
      'PATRONI_REPLICATION_PASSWORD',
      'PATRONI_RESTAPI_PASSWORD',
      'PATRONI_REWIND_PASSWORD',
      'PATRONI_SUPERUSER_PASSWORD',
      'SCALABLE_APP_PASSWORD',
      'SCALABLE_MONITOR_PASSWORD',
    ]);
    for (const e of secrets) expect(e.value, e.name).toBeUndefined();
    expect(
      find(objects, 'Secret', 'shop-db-auth').metadata.annotations?.[GENERATED_KEYS_ANNOTATION],
    ).toBe('superuser-password,replication-password,restapi-password,monitor-password');
    expect(
      find(objects, 'Secret', 'shop-db-app').metadata.annotations?.[GENERATED_KEYS_ANNOTATION],
    ).toBe('password');
    // pg_rewind's own password, in a Secret apps made before it get created on reconcile.
    expect(
      find(objects, 'Secret', 'shop-db-rewind').metadata.annotations?.[GENERATED_KEYS_ANNOTATION],
    ).toBe('password');
    expect(secrets.find((e) => e.name === 'PATRONI_REWIND_PASSWORD')?.valueFrom).toEqual({
      secretKeyRef: { name: 'shop-db-rewind', key: 'password' },
    });
  });

  it('selects the primary and the replicas of one shard by Patroni role label', () => {
    const rw = spec(find(objects, 'Service', 'shop-db-1'));
    const ro = spec(find(objects, 'Service', 'shop-db-1-ro'));
    expect(rw.selector).toMatchObject({
      'scalable.dev/cluster': 'shop-db-1',
      'scalable.dev/role': 'master',
    });
    expect(ro.selector).toMatchObject({
      'scalable.dev/cluster': 'shop-db-1',
      'scalable.dev/role': 'replica',
    });
    expect(rw.ports).toEqual([{ name: 'postgresql', port: 5432, targetPort: 'postgresql' }]);
    const hl = spec(find(objects, 'Service', 'shop-db-1-hl'));
    expect(hl.clusterIP).toBe('None');
    expect(hl.selector).not.toHaveProperty('scalable.dev/role');
  });

  it("binds Patroni to the chart's ClusterRole: no Role of its own, the operator holds none of its rights (issue 36)", () => {
    expect(objects.filter((o) => o.kind === 'Role')).toEqual([]);
    const binding = find(objects, 'RoleBinding', 'shop-db-patroni') as unknown as {
      roleRef: unknown;
      subjects: unknown[];
    };
    expect(binding.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'scalable-operator-patroni',
    });
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'shop-db', namespace: 'prod' },
    ]);
    const named = { ...sharded, rbac: { patroniClusterRole: 'rel-patroni' } };
    const other = find(buildDatabase(named), 'RoleBinding', 'shop-db-patroni') as unknown as {
      roleRef: { name: string };
    };
    expect(other.roleRef.name).toBe('rel-patroni');
  });

  it("mounts the ServiceAccount token into Patroni's container only, not the exporter's (issue 36)", () => {
    interface Container {
      name: string;
      volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
    }
    interface Pod {
      automountServiceAccountToken: boolean;
      volumes: Array<{ name: string; projected?: { sources: unknown[] } }>;
      containers: Container[];
      initContainers: Container[];
    }
    for (const sts of objects.filter((o) => o.kind === 'StatefulSet')) {
      const pod = (sts as unknown as { spec: { template: { spec: Pod } } }).spec.template.spec;
      expect(pod.automountServiceAccountToken).toBe(false);
      const volume = pod.volumes.find((v) => v.name === 'kube-api-access');
      expect(volume?.projected?.sources[0]).toEqual({
        serviceAccountToken: { path: 'token', expirationSeconds: 3607 },
      });
      const mounts = (c: Container | undefined) => (c?.volumeMounts ?? []).map((m) => m.name);
      const postgres = pod.containers.find((c) => c.name === 'postgres');
      expect(postgres?.volumeMounts).toContainEqual({
        name: 'kube-api-access',
        mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
        readOnly: true,
      });
      expect(mounts(pod.containers.find((c) => c.name === 'exporter'))).not.toContain(
        'kube-api-access',
      );
      for (const c of pod.initContainers) expect(mounts(c)).not.toContain('kube-api-access');
    }
  });

  it('lets only the app reach Postgres and only database pods reach Patroni', () => {
    const np = spec(find(objects, 'NetworkPolicy', 'shop-db'));
    expect(np.ingress[0]).toEqual({
      from: [{ podSelector: { matchLabels: { 'scalable.dev/app': 'shop' } } }],
      ports: [{ port: 5432, protocol: 'TCP' }],
    });
    expect(np.ingress[1].from[0].podSelector.matchLabels).toMatchObject({
      'scalable.dev/tier': 'database',
    });
    expect(np.ingress[1].ports).toEqual([{ port: 8008, protocol: 'TCP' }]);
  });

  it('lets Patroni reach the API server at its addresses only, when they are known (issue 36)', () => {
    type Rule = { to?: unknown[]; ports: Array<{ port: number }> };
    const apiRule = (o: readonly { kind: string }[]) =>
      (spec(find(o as never, 'NetworkPolicy', 'shop-db')).egress as Rule[]).find((r) =>
        r.ports.some((p) => p.port === 6443),
      );
    const known = {
      ...sharded,
      network: { ...sharded.network, apiServerCidrs: ['10.96.0.1/32', '172.18.0.2/32'] },
    };
    expect(apiRule(buildDatabase(known))).toEqual({
      to: [{ ipBlock: { cidr: '10.96.0.1/32' } }, { ipBlock: { cidr: '172.18.0.2/32' } }],
      ports: [
        { port: 443, protocol: 'TCP' },
        { port: 6443, protocol: 'TCP' },
      ],
    });
    // Unknown (an offline render): by port.
    expect(apiRule(objects)?.to).toBeUndefined();
  });

  it('publishes a shard map the SDK can route with', () => {
    const cm = find(objects, 'ConfigMap', 'shop-shard-map') as unknown as {
      data: Record<string, string>;
    };
    const map = parseShardMap(cm.data['shard-map.json']!);
    expect(map).toMatchObject({
      version: 2,
      buckets: 1024,
      shardKey: 'customer_id',
      database: 'shop',
    });
    expect(map.hash.name).toBe('sha256-u32be-mod');
    expect(map.hash.sql).toContain('$1');
    expect(map.shards[1]).toEqual({
      index: 1,
      primary: 'shop-db-1.prod.svc',
      replicas: 'shop-db-1-ro.prod.svc',
      port: 5432,
    });
    expect(map.ranges).toEqual([
      { from: 0, to: 512, shard: 0 },
      { from: 512, to: 1024, shard: 1 },
    ]);
    expect([0, 1]).toContain(shardFor(map, 'customer-1').index);
  });

  it('wires app pods: DATABASE_* env, the password by reference, the shard map mounted', () => {
    const w = appWiring(sharded);
    const env = Object.fromEntries(w.env.map((e) => [e.name, e]));
    expect(env['DATABASE_HOST']?.value).toBe('shop-db-0.prod.svc');
    expect(env['DATABASE_RO_HOST']?.value).toBe('shop-db-0-ro.prod.svc');
    expect(env['DATABASE_PORT']?.value).toBe('5432');
    expect(env['DATABASE_NAME']?.value).toBe('shop');
    expect(env['DATABASE_PASSWORD']?.valueFrom).toEqual({
      secretKeyRef: { name: 'shop-db-app', key: 'password' },
    });
    expect(env['DATABASE_SHARD_MAP']?.value).toBe('/etc/scalable/shard-map/shard-map.json');
    expect(w.volumes).toEqual([
      { name: 'shard-map', configMap: { name: 'shop-shard-map' } },
      {
        name: 'database-ca',
        secret: { secretName: 'shop-db-0-tls', items: [{ key: 'ca.crt', path: 'ca.crt' }] },
      },
    ]);
    expect(env['DATABASE_SSLMODE']?.value).toBe('verify-full');
    expect(env['DATABASE_SSLROOTCERT']?.value).toBe('/etc/scalable/ca/database-ca/ca.crt');
    expect(w.volumeMounts).toContainEqual({
      name: 'database-ca',
      mountPath: '/etc/scalable/ca/database-ca',
      readOnly: true,
    });
    expect(appWiring(modelOf({})).env.some((e) => e.name.startsWith('DATABASE_'))).toBe(false);
  });
});

describe('TLS (on by default)', () => {
  const plain = modelOf({ web: { image: 'shop:1' }, database: { tls: false } });
  const config = (app: typeof sharded) =>
    yaml.load(renderPatroniConfig(app, 0)) as ReturnType<typeof patroniConfig>;

  it('declares per shard a Secret to issue into, naming its Services, pods and loopback', () => {
    const secret = find(objects, 'Secret', 'shop-db-1-tls');
    expect(secret.metadata.annotations?.['scalable.dev/tls-public']).toBe('shop-db-1-tls-public');
    expect(secret.metadata.annotations?.['scalable.dev/tls-dns-names']?.split(',')).toEqual([
      'shop-db-1.prod.svc',
      'shop-db-1.prod.svc.cluster.local',
      'shop-db-1-ro.prod.svc',
      'shop-db-1-ro.prod.svc.cluster.local',
      'shop-db-1-hl.prod.svc',
      '*.shop-db-1-hl.prod.svc',
      'shop-db-1-hl.prod.svc.cluster.local',
      '*.shop-db-1-hl.prod.svc.cluster.local',
      'shop-db.prod.svc',
      'localhost',
    ]);
    // Declared without data: the reconciler issues; an offline render holds no key.
    expect(secret['data']).toBeUndefined();
  });

  it('Postgres serves TLS and admits TCP only over it; replication verifies chain and name, by pod name (issue 36)', () => {
    const c = config(sharded);
    expect(c.postgresql.parameters).toMatchObject({
      ssl: 'on',
      ssl_cert_file: '/etc/scalable/tls/tls.crt',
      ssl_key_file: '/etc/scalable/tls/tls.key',
      ssl_ca_file: '/etc/scalable/ca/ca.crt',
    });
    // Past the superuser's reject lines (any TCP connection), only TLS connections match.
    const tcp = c.postgresql.pg_hba.filter((l) => !l.startsWith('local ') && !/ reject$/.test(l));
    expect(tcp.length).toBe(4);
    for (const line of tcp) expect(line).toMatch(/^hostssl /);
    expect(c.postgresql.authentication.replication).toMatchObject({
      sslmode: 'verify-full',
      sslrootcert: '/etc/scalable/ca/ca.crt',
    });
    expect(c.postgresql.authentication.rewind).toMatchObject({ sslmode: 'verify-full' });
    // The address replicas connect to is a name the shard's certificate carries.
    const sts = find(objects, 'StatefulSet', 'shop-db-0') as unknown as {
      spec: {
        template: {
          spec: {
            containers: Array<{ name: string; env: Array<{ name: string; value?: string }> }>;
          };
        };
      };
    };
    const env = sts.spec.template.spec.containers.find((x) => x.name === 'postgres')!.env;
    expect(env.find((e) => e.name === 'PATRONI_POSTGRESQL_CONNECT_ADDRESS')?.value).toBe(
      '$(PATRONI_NAME).shop-db-0-hl.prod.svc:5432',
    );
    const names = (find(objects, 'Secret', 'shop-db-0-tls').metadata.annotations ?? {})[
      'scalable.dev/tls-dns-names'
    ];
    expect(names?.split(',')).toContain('*.shop-db-0-hl.prod.svc');
    expect(c.restapi).toMatchObject({ certfile: '/etc/scalable/tls/tls.crt' });
    expect(c.ctl).toEqual({ cacert: '/etc/scalable/ca/ca.crt' });
  });

  it('the pods mount the key pair, probe over HTTPS, and the exporter verifies the server', () => {
    const pod = spec(find(objects, 'StatefulSet', 'shop-db-0')).template.spec;
    expect(pod.volumes).toContainEqual({
      name: 'tls',
      secret: { secretName: 'shop-db-0-tls', defaultMode: 0o640 },
    });
    const [pg, exporter] = pod.containers;
    expect(pg.readinessProbe.httpGet.scheme).toBe('HTTPS');
    expect(pg.livenessProbe.httpGet.scheme).toBe('HTTPS');
    const env = Object.fromEntries(
      pg.env.map((e: { name: string; value?: string }) => [e.name, e.value]),
    );
    expect(env['PATRONI_RESTAPI_CONNECT_ADDRESS']).toBe(
      '$(PATRONI_NAME).shop-db-0-hl.prod.svc:8008',
    );
    const uri = exporter.env.find((e: { name: string }) => e.name === 'DATA_SOURCE_URI').value;
    expect(uri).toBe(
      'localhost:5432/postgres?sslmode=verify-full&sslrootcert=/etc/scalable/ca/ca.crt',
    );
  });

  it('renders cert-manager Certificates into the same Secrets, from the app CA by default', () => {
    const cert = find(objects, 'Certificate', 'shop-db-1');
    const names = find(objects, 'Secret', 'shop-db-1-tls').metadata.annotations?.[
      'scalable.dev/tls-dns-names'
    ];
    expect(spec(cert)).toMatchObject({
      secretName: 'shop-db-1-tls',
      dnsNames: names?.split(','),
      duration: '2160h',
      renewBefore: '720h',
      privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
      issuerRef: { name: 'shop-tls-ca', kind: 'Issuer', group: 'cert-manager.io' },
    });
    expect(spec(find(objects, 'Certificate', 'shop-tls-ca'))).toMatchObject({
      isCA: true,
      secretName: 'shop-tls-ca',
      issuerRef: { name: 'shop-tls-selfsigned' },
    });
    expect(spec(find(objects, 'Issuer', 'shop-tls-ca'))).toEqual({
      ca: { secretName: 'shop-tls-ca' },
    });
    // The operator issues into the Secret only while cert-manager is not served.
    expect(
      find(objects, 'Secret', 'shop-db-1-tls').metadata.annotations?.[
        'scalable.dev/tls-unless-served'
      ],
    ).toBe('cert-manager.io/v1');
  });

  it('a named issuer replaces the app CA', () => {
    const named = modelOf({
      web: { image: 'shop:1' },
      database: { certificateIssuer: { name: 'corp-ca', kind: 'ClusterIssuer' } },
    });
    const out = buildDatabase(named);
    expect(out.filter((o) => o.kind === 'Issuer')).toEqual([]);
    expect(spec(find(out, 'Certificate', 'shop-db-0')).issuerRef).toEqual({
      name: 'corp-ca',
      kind: 'ClusterIssuer',
      group: 'cert-manager.io',
    });
  });

  it('tls: false renders the plain configuration and no certificate', () => {
    const c = config(plain);
    expect(c.postgresql.parameters).not.toHaveProperty('ssl');
    for (const line of c.postgresql.pg_hba.filter((l) => !l.startsWith('local ')))
      expect(line).toMatch(/^host /);
    expect(
      buildDatabase(plain).some(
        (o) => o.metadata.name.includes('-tls') || o.apiVersion === 'cert-manager.io/v1',
      ),
    ).toBe(false);
    expect(appWiring(plain).env.some((e) => e.name === 'DATABASE_SSLMODE')).toBe(false);
    const pg = spec(find(buildDatabase(plain), 'StatefulSet', 'shop-db-0')).template.spec
      .containers[0];
    expect(pg.command).toEqual(['python3', '/etc/patroni/fence.py']);
    expect(pg.args).not.toContain('--cert');
  });

  it('admits the superuser over the local socket only; pg_rewind runs as a role of its own (issue 36)', () => {
    for (const app of [sharded, plain]) {
      const c = config(app);
      const hba = c.postgresql.pg_hba;
      // First match wins: the superuser's TCP lines reject before any line that admits.
      expect(hba.slice(0, 3)).toEqual([
        'local all all scram-sha-256',
        'host all postgres 0.0.0.0/0 reject',
        'host all postgres ::/0 reject',
      ]);
      // Patroni's own superuser connections go to the socket.
      expect(c.postgresql.use_unix_socket).toBe(true);
      expect(c.postgresql.parameters.unix_socket_directories).toBe('/var/run/postgresql');
      expect(c.postgresql.authentication.superuser).toEqual({ username: 'postgres' });
      expect(c.postgresql.authentication.rewind.username).toBe('scalable-rewind');
    }
    // No app role can be named like it (names become [a-z0-9_]).
    expect(appDatabaseName(modelOf({ database: {} }, 'scalable-rewind'))).toBe('scalable_rewind');
  });
});

describe('Patroni configuration', () => {
  it('uses the Kubernetes API as DCS with our labels and pinned role values', () => {
    const c = yaml.load(renderPatroniConfig(sharded, 1)) as ReturnType<typeof patroniConfig>;
    expect(c.scope).toBe('shop-db-1');
    expect(c.kubernetes).toMatchObject({
      namespace: 'prod',
      labels: { 'scalable.dev/database': 'shop' },
      scope_label: 'scalable.dev/cluster',
      role_label: 'scalable.dev/role',
      leader_label_value: 'master',
      follower_label_value: 'replica',
      use_endpoints: false,
    });
    expect(c.postgresql.bin_dir).toBe('/usr/lib/postgresql/17/bin');
    expect(c.watchdog.mode).toBe('off');
  });

  it('turns synchronous replication on from the spec', () => {
    expect(patroniConfig(sharded, 0).bootstrap.dcs.synchronous_mode).toBe(true);
    expect(patroniConfig(modelOf({ database: {} }), 0).bootstrap.dcs.synchronous_mode).toBe(false);
  });

  it('re-clones a member whose pg_rewind failed on synchronous shards only (issue 34: a node back from a stop)', () => {
    const sync = patroniConfig(sharded, 0).postgresql as Record<string, unknown>;
    expect(sync['remove_data_directory_on_rewind_failure']).toBe(true);
    const async = patroniConfig(modelOf({ database: {} }), 0).postgresql as Record<string, unknown>;
    expect(async).not.toHaveProperty('remove_data_directory_on_rewind_failure');
    // Never on diverged timelines alone: a rewind is tried first.
    expect(sync).not.toHaveProperty('remove_data_directory_on_diverged_timelines');
  });

  it('sizes memory from the limit and carries no password', () => {
    const text = renderPatroniConfig(
      modelOf({ database: { resources: { limits: { memory: '4Gi' } } } }),
      0,
    );
    expect(text).toContain('shared_buffers: 1024MB');
    expect(text).not.toMatch(/password:/i);
    expect(text).toContain("mode: 'off'");
  });

  it('bootstraps the app role and database with passwords from the environment', () => {
    const script = renderPostBootstrap(sharded);
    expect(script).toContain('\\getenv app_password SCALABLE_APP_PASSWORD');
    expect(script).toContain(`CREATE ROLE "shop" LOGIN PASSWORD :'app_password';`);
    expect(script).toContain(
      'CREATE FUNCTION scalable_bucket(key text)'.replace('CREATE', 'CREATE OR REPLACE'),
    );
  });

  it('never names the app role after a reserved or operator role', () => {
    expect(appDatabaseName(modelOf({ database: {} }, 'my-shop'))).toBe('my_shop');
    expect(appDatabaseName(modelOf({ database: {} }, 'postgres'))).toBe('app_postgres');
    expect(appDatabaseName(modelOf({ database: {} }, 'pg-admin'))).toBe('app_pg_admin');
  });
});

describe('dcsConfigUpdate', () => {
  // What an app's database: {} (asynchronous, failoverSeconds 30) renders.
  const live = JSON.stringify({
    ttl: 30,
    loop_wait: 2,
    retry_timeout: 5,
    maximum_lag_on_failover: 1048576,
    synchronous_mode: false,
    synchronous_mode_strict: false,
    primary_start_timeout: 300,
    failsafe_mode: true,
    ignore_slots: [{ type: 'logical', database: 'shop', plugin: 'pgoutput' }],
    postgresql: {
      parameters: {
        wal_level: 'logical',
        sync_replication_slots: 'on',
        wal_receiver_timeout: '5s',
        shared_buffers: '256MB',
        effective_cache_size: '768MB',
        work_mem: '8MB',
      },
    },
  });

  it('is silent when the live dynamic config matches the spec', () => {
    expect(dcsConfigUpdate(modelOf({ database: {} }), 0, live)).toBeUndefined();
    expect(dcsConfigUpdate(modelOf({ database: {} }), 0, undefined)).toBeUndefined();
    expect(dcsConfigUpdate(modelOf({ database: {} }), 0, 'not json')).toBeUndefined();
  });

  it('turns synchronous mode on and resizes memory, keeping keys set by others', () => {
    const next = dcsConfigUpdate(
      modelOf({
        database: {
          synchronous: true,
          failoverSeconds: 30,
          resources: { limits: { memory: '2Gi' } },
        },
      }),
      0,
      live,
    );
    expect(JSON.parse(next ?? '{}')).toEqual({
      ttl: 30,
      loop_wait: 2,
      retry_timeout: 5,
      maximum_lag_on_failover: 1048576,
      synchronous_mode: true,
      synchronous_mode_strict: false,
      primary_start_timeout: 0,
      failsafe_mode: true,
      ignore_slots: [{ type: 'logical', database: 'shop', plugin: 'pgoutput' }],
      postgresql: {
        parameters: {
          wal_level: 'logical',
          sync_replication_slots: 'on',
          wal_receiver_timeout: '5s',
          shared_buffers: '512MB',
          effective_cache_size: '1536MB',
          work_mem: '8MB',
        },
      },
    });
    expect(dcsConfigMapName(sharded, 1)).toBe('shop-db-1-config');
  });

  it('moves the lease and the loop to failoverSeconds on a live cluster', () => {
    const next = dcsConfigUpdate(
      modelOf({ database: { synchronous: true, failoverSeconds: 10 } }),
      0,
      live,
    );
    expect(JSON.parse(next ?? '{}')).toMatchObject({ ttl: 20, loop_wait: 1, retry_timeout: 3 });
  });

  it('brings a cluster bootstrapped before failsafe_mode and wal_receiver_timeout in line', () => {
    const old = JSON.parse(live) as Record<string, unknown>;
    delete old['failsafe_mode'];
    (old['postgresql'] as { parameters: Record<string, unknown> }).parameters[
      'wal_receiver_timeout'
    ] = '60s';
    const next = JSON.parse(
      dcsConfigUpdate(modelOf({ database: {} }), 0, JSON.stringify(old)) ?? '{}',
    ) as Record<string, unknown>;
    expect(next).toMatchObject({
      failsafe_mode: true,
      postgresql: { parameters: { wal_receiver_timeout: '5s' } },
    });
  });

  it('a crashed primary fails over on synchronous shards and restarts in place on async ones', () => {
    const dcs = (database: Record<string, unknown>) =>
      patroniConfig(modelOf({ database }), 0).bootstrap.dcs;
    expect(dcs({ synchronous: true }).primary_start_timeout).toBe(0);
    expect(dcs({}).primary_start_timeout).toBe(300);
    expect(renderPatroniConfig(modelOf({ database: { synchronous: true } }), 0)).toContain(
      '    primary_start_timeout: 0\n',
    );
  });

  it('switches the crash handling of a live cluster with synchronous, either way', () => {
    const asJson = (v: string | undefined) => JSON.parse(v ?? '{}') as Record<string, unknown>;
    const sync = modelOf({ database: { synchronous: true, failoverSeconds: 30 } });
    // An async cluster turned synchronous, and one bootstrapped before the key (Patroni's 300).
    expect(asJson(dcsConfigUpdate(sync, 0, live))).toMatchObject({
      synchronous_mode: true,
      primary_start_timeout: 0,
    });
    const before = JSON.parse(live) as Record<string, unknown>;
    delete before['primary_start_timeout'];
    before['synchronous_mode'] = true;
    expect(asJson(dcsConfigUpdate(sync, 0, JSON.stringify(before)))).toMatchObject({
      primary_start_timeout: 0,
    });
    // In line: nothing to write. Back to asynchronous: Patroni's 300 again.
    const synced = dcsConfigUpdate(sync, 0, live);
    expect(dcsConfigUpdate(sync, 0, synced)).toBeUndefined();
    expect(asJson(dcsConfigUpdate(modelOf({ database: {} }), 0, synced))).toMatchObject({
      synchronous_mode: false,
      primary_start_timeout: 300,
    });
  });

  it('brings a cluster bootstrapped with wal_level replica to logical with failover slots, keeping the admin ignore_slots', () => {
    const old = JSON.parse(live) as Record<string, unknown>;
    const params = (old['postgresql'] as { parameters: Record<string, unknown> }).parameters;
    params['wal_level'] = 'replica';
    delete params['sync_replication_slots'];
    old['ignore_slots'] = [{ name: 'cdc', type: 'logical' }];
    expect(restartParametersLag(JSON.stringify(old))).toBe(true);
    const next = dcsConfigUpdate(modelOf({ database: {} }), 0, JSON.stringify(old));
    expect(JSON.parse(next ?? '{}')).toMatchObject({
      ignore_slots: [
        { name: 'cdc', type: 'logical' },
        { type: 'logical', database: 'shop', plugin: 'pgoutput' },
      ],
      postgresql: { parameters: { wal_level: 'logical', sync_replication_slots: 'on' } },
    });
    // Applied: in line, no lag, nothing more to write.
    expect(restartParametersLag(next)).toBe(false);
    expect(dcsConfigUpdate(modelOf({ database: {} }), 0, next)).toBeUndefined();
    // Not bootstrapped yet, or unreadable: no lag known, the rollout is not held.
    expect(restartParametersLag(undefined)).toBe(false);
    expect(restartParametersLag('not json')).toBe(false);
  });

  it('renders wal_level logical everywhere, slot sync on Postgres 17 and up only, pgoutput slots left to the move', () => {
    const dcs = (version: string) =>
      patroniConfig(modelOf({ database: { version } }), 0).bootstrap.dcs;
    expect(dcs('17').postgresql.parameters).toMatchObject({
      wal_level: 'logical',
      sync_replication_slots: 'on',
      hot_standby_feedback: 'on',
    });
    expect(dcs('17').postgresql.use_slots).toBe(true);
    expect(dcs('18').postgresql.parameters).toMatchObject({ sync_replication_slots: 'on' });
    expect(dcs('16').postgresql.parameters).toMatchObject({ wal_level: 'logical' });
    expect(dcs('16').postgresql.parameters).not.toHaveProperty('sync_replication_slots');
    expect(dcs('17').ignore_slots).toEqual([
      { type: 'logical', database: 'shop', plugin: 'pgoutput' },
    ]);
  });

  it('renders the timings and failsafe_mode into bootstrap.dcs', () => {
    const dcs = patroniConfig(modelOf({ database: { failoverSeconds: 60 } }), 0).bootstrap.dcs;
    expect(dcs).toMatchObject({ ttl: 60, loop_wait: 5, retry_timeout: 10, failsafe_mode: true });
  });
});
