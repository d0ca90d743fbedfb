import { describe, expect, it } from 'vitest';
import { parseApps } from './parse.ts';
import { formatError, validateApp } from './validate.ts';
import { INVALID, appDoc as base } from '../../test/unit/invalid-cases.ts';

function errorsOf(doc: unknown): string[] {
  const r = validateApp(doc);
  return r.ok ? [] : r.errors.map(formatError);
}

describe('defaulting', () => {
  it('fills every web default and leaves other sections off', () => {
    const r = validateApp(base({}));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.app.spec.web).toEqual({
      image: 'shop:1',
      port: 8080,
      env: [],
      resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '512Mi' } },
      probes: { readinessPath: '/healthz' },
      autoscaling: { minReplicas: 2, maxReplicas: 10, targetCPUUtilization: 70 },
    });
    expect(r.app.spec.topology).toEqual({
      spreadAcrossZones: true,
      whenUnsatisfiable: 'ScheduleAnyway',
    });
    for (const off of ['ingress', 'cdn', 'cache', 'sessions', 'database', 'queue', 'monitoring']) {
      expect(r.app.spec).not.toHaveProperty(off);
    }
  });

  it('turns a present, empty section on with its defaults', () => {
    const r = validateApp(
      base({ cache: {}, database: {}, sessions: {}, monitoring: {}, ingress: {} }),
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.app.spec.cache).toEqual({
      enabled: true,
      memory: '256Mi',
      evictionPolicy: 'allkeys-lru',
      defaultTTLSeconds: 300,
      replicas: 0,
      tls: true,
    });
    expect(r.app.spec.database).toMatchObject({
      enabled: true,
      version: '17',
      shards: 1,
      replicasPerShard: 1,
      synchronous: false,
      deletionPolicy: 'Retain',
      storage: { size: '10Gi' },
    });
    expect(r.app.spec.sessions).toMatchObject({
      store: 'redis',
      ttlSeconds: 86400,
      storage: { size: '1Gi' },
      tls: true,
    });
    expect(r.app.spec.monitoring).toEqual({ enabled: true, alerts: true, dashboards: true });
    expect(r.app.spec.ingress).toEqual({
      staticAssets: { pathPrefix: '/static', maxAgeSeconds: 31536000 },
    });
  });

  it('turns backups on only when database.backup is set, with their defaults', () => {
    const off = validateApp(base({ database: {} }));
    expect(off.ok && off.app.spec.database).not.toHaveProperty('backup');
    const s3 = { endpoint: 'https://s3.example.com', bucket: 'backups', credentialsSecret: 'c' };
    const on = validateApp(base({ database: { backup: { s3 } } }));
    expect(on.ok && on.app.spec.database?.backup).toEqual({
      s3: { ...s3, region: 'us-east-1', uriStyle: 'host' },
      schedule: '0 2 * * *',
      retention: {},
      runOn: 'Replica',
    });
  });

  it('leaves the pooler off unless database.pooler is present, then fills its defaults', () => {
    const off = validateApp(base({ database: {} }));
    expect(off.ok && off.app.spec.database).not.toHaveProperty('pooler');
    const on = validateApp(base({ database: { pooler: {} } }));
    expect(on.ok && on.app.spec.database?.pooler).toEqual({
      mode: 'transaction',
      replicas: 2,
      defaultPoolSize: 20,
      minPoolSize: 0,
      reservePoolSize: 0,
      maxClientConnections: 1000,
      resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '128Mi' } },
    });
  });

  it('keeps what the user wrote', () => {
    const r = validateApp(
      base({ web: { image: 'x', port: 3000, autoscaling: { maxReplicas: 4 } } }),
    );
    expect(r.ok && r.app.spec.web.port).toBe(3000);
    expect(r.ok && r.app.spec.web.autoscaling).toEqual({
      minReplicas: 2,
      maxReplicas: 4,
      targetCPUUtilization: 70,
    });
  });

  it('defaults queue consumers item by item', () => {
    const r = validateApp(base({ queue: { consumers: [{ name: 'mail', image: 'w:1' }] } }));
    expect(r.ok && r.app.spec.queue?.consumers[0]).toMatchObject({
      minReplicas: 0,
      maxReplicas: 10,
      targetBacklog: 10,
    });
  });

  it('does not modify its input', () => {
    const doc = base({ cache: {} });
    const before = JSON.stringify(doc);
    validateApp(doc);
    expect(JSON.stringify(doc)).toBe(before);
  });
});

describe('invalid input names the field', () => {
  // Every case, by name: one dropped (or merged into another) must be dropped on purpose.
  it('holds all 105 cases, each named once', () => {
    expect(INVALID).toHaveLength(105);
    expect(new Set(INVALID.map(([name]) => name)).size).toBe(INVALID.length);
  });
  it.each(INVALID)('%s', (_name, doc, expected) => {
    expect(errorsOf(doc)).toEqual(typeof expected === 'string' ? [expected] : expected);
  });
});

describe('parseApps', () => {
  it('reports bad YAML with file and line', () => {
    const r = parseApps('spec:\n  web: [\n', 'app.yaml');
    expect(r.errors[0]?.message).toMatch(/^app\.yaml:\d+:\d+: invalid YAML/);
  });
  it('reports an empty file', () => {
    expect(parseApps('', 'app.yaml').errors[0]?.message).toBe(
      'app.yaml: no ScalableApp in the file',
    );
  });
  it('validates every document of a multi-document file', () => {
    const doc = (name: string) =>
      `apiVersion: scalable.dev/v1alpha1\nkind: ScalableApp\nmetadata: {name: ${name}}\nspec: {web: {image: x}}\n`;
    const r = parseApps(`${doc('a')}---\n${doc('B')}`);
    expect(r.results.map((x) => x.ok)).toEqual([true, false]);
  });
});

describe('transition rules, offline against the stored version', () => {
  const stored = {
    apiVersion: 'scalable.dev/v1alpha1',
    kind: 'ScalableApp',
    metadata: { name: 'shop' },
    spec: {
      web: { image: 'shop:1' },
      sessions: { storage: { size: '1Gi' } },
      database: { shards: 2, shardKey: 'user_id', version: '17' },
    },
  };
  const update = (change: (spec: typeof stored.spec) => void) => {
    const next = structuredClone(stored);
    change(next.spec);
    const r = validateApp(next, stored);
    return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`);
  };

  it('accepts what may change and an unchanged spec', () => {
    expect(update(() => undefined)).toEqual([]);
    expect(update((s) => (s.database.shards = 3))).toEqual([]);
    // Fewer shards is a move too (resharding.ts): the departing groups stay until it is done.
    expect(update((s) => (s.database.shards = 1))).toEqual([]);
  });

  it('refuses what Kubernetes or the data cannot follow, naming the field', () => {
    expect(update((s) => (s.sessions.storage.size = '2Gi'))).toEqual([
      'spec.sessions.storage: storage.size cannot be changed yet: volume expansion is not supported yet',
    ]);
    expect(update((s) => Object.assign(s.sessions.storage, { storageClassName: 'fast' }))).toEqual([
      'spec.sessions.storage: storage.storageClassName is immutable: existing volumes keep their class',
    ]);
    expect(update((s) => (s.database.version = '18'))).toEqual([
      'spec.database.version: version is immutable: major upgrades are not supported yet',
    ]);
  });

  it('checks no transition rule without a stored version', () => {
    const next = structuredClone(stored);
    next.spec.database.version = '18';
    expect(validateApp(next).ok).toBe(true);
  });
});

describe('failoverSeconds below 20 on an asynchronous shard', () => {
  // Stored before the rule: every app got failoverSeconds 10 from the CRD's old default.
  const stored = {
    apiVersion: 'scalable.dev/v1alpha1',
    kind: 'ScalableApp',
    metadata: { name: 'shop' },
    spec: { web: { image: 'shop:1' }, database: { failoverSeconds: 10, replicasPerShard: 1 } },
  };
  const errors = (r: ReturnType<typeof validateApp>) =>
    r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`);

  it('is refused when written, naming the field', () => {
    expect(errors(validateApp(stored))).toEqual([
      expect.stringMatching(
        /^spec\.database\.failoverSeconds: failoverSeconds below 20 needs synchronous: true .*\(got 10\)$/,
      ),
    ]);
  });

  it('is accepted with synchronous: true, from 20 up, or left out (30 when asynchronous)', () => {
    for (const database of [
      { failoverSeconds: 10, synchronous: true },
      { failoverSeconds: 20 },
      {},
    ])
      expect(errors(validateApp({ ...stored, spec: { ...stored.spec, database } }))).toEqual([]);
  });

  it('passes an update that leaves the database section as it was (the API server ratchets)', () => {
    const webOnly = structuredClone(stored);
    webOnly.spec.web.image = 'shop:2';
    expect(errors(validateApp(webOnly, stored))).toEqual([]);
    const touched = structuredClone(stored);
    touched.spec.database.replicasPerShard = 2;
    expect(errors(validateApp(touched, stored))).toEqual([
      expect.stringMatching(/^spec\.database\.failoverSeconds: failoverSeconds below 20/),
    ]);
  });

  it('never fails an app the operator reads back: it runs it on Patroni’s lease', () => {
    expect(errors(validateApp(stored, undefined, { stored: true }))).toEqual([]);
  });
});
