import { describe, expect, it } from 'vitest';
import { buildSessions, sessionsEnv } from './build.ts';
import { readyCommand } from '../../engines/redis/config.ts';
import { GENERATED_KEYS_ANNOTATION } from '../shared/secrets.ts';
import { APP_CA, find, kindNames, modelOf, spec, tlsNames } from '../shared/test-helpers.ts';
import type { AppModel } from '../../api/model.ts';
import { appWiring } from '../index.ts';
import { webEnv as webEnvWith } from '../web/build.ts';

const webEnv = (app: AppModel) => webEnvWith(app, appWiring(app));

describe('buildSessions', () => {
  it('renders nothing and hands the app nothing when sessions are left out', () => {
    const app = modelOf({ cache: {} });
    expect(buildSessions(app)).toEqual([]);
    expect(sessionsEnv(app)).toEqual([]);
    expect(webEnv(app).map((e) => e.name)).not.toContain('SESSION_REDIS_URL');
  });

  const objects = buildSessions(
    modelOf({ sessions: { ttlSeconds: 7200, storage: { size: '2Gi', storageClassName: 'fast' } } }),
  );

  it('renders its own Redis, separate from the cache', () => {
    expect(kindNames(objects)).toEqual([
      'Secret/shop-sessions-users',
      ...APP_CA,
      ...tlsNames('shop-sessions'),
      'ServiceAccount/shop-sessions',
      'ConfigMap/shop-sessions-config',
      'Service/shop-sessions',
      'Service/shop-sessions-headless',
      'StatefulSet/shop-sessions',
      'NetworkPolicy/shop-sessions',
    ]);
    for (const o of objects) expect(o.metadata.labels?.['scalable.dev/tier']).toBe('sessions');
    expect(
      find(objects, 'Secret', 'shop-sessions-users').metadata.annotations?.[
        GENERATED_KEYS_ANNOTATION
      ],
    ).toBe('admin-password,replication-password,sentinel-password,app-password,exporter-password');
  });

  it('persists every write (appendonly) and never evicts', () => {
    const conf = (
      find(objects, 'ConfigMap', 'shop-sessions-config')['data'] as Record<string, string>
    )['redis.conf'];
    expect(conf).toContain('\nappendonly yes\n');
    expect(conf).toContain('\nappendfsync everysec\n');
    expect(conf).toContain('\nmaxmemory-policy noeviction\n');
    expect(conf).toContain(`\nmaxmemory ${256 * 2 ** 20}\n`);
    expect(conf).not.toMatch(/^requirepass/m);
  });

  it('keeps the data on a PVC from spec.sessions.storage that outlives the StatefulSet', () => {
    const sts = spec(find(objects, 'StatefulSet'));
    expect(sts.replicas).toBe(1);
    expect(sts.serviceName).toBe('shop-sessions-headless');
    expect(sts.volumeClaimTemplates).toEqual([
      {
        metadata: {
          name: 'data',
          labels: expect.objectContaining({ 'scalable.dev/tier': 'sessions' }),
        },
        spec: {
          accessModes: ['ReadWriteOnce'],
          resources: { requests: { storage: '2Gi' } },
          storageClassName: 'fast',
        },
      },
    ]);
    expect(sts.persistentVolumeClaimRetentionPolicy).toEqual({
      whenDeleted: 'Retain',
      whenScaled: 'Retain',
    });
    // The PVC is the data volume: no emptyDir shadows it.
    expect(sts.template.spec.volumes.map((v: { name: string }) => v.name)).toEqual([
      'config',
      'tls',
      'tls-ca',
    ]);
  });

  it('leaves storageClassName to the cluster default when unset', () => {
    const sts = spec(find(buildSessions(modelOf({ sessions: {} })), 'StatefulSet'));
    expect(sts.volumeClaimTemplates[0].spec).not.toHaveProperty('storageClassName');
    expect(sts.volumeClaimTemplates[0].spec.resources.requests.storage).toBe('1Gi');
  });

  it('runs Redis and the exporter as the redis user, Pod Security restricted', () => {
    const pod = spec(find(objects, 'StatefulSet')).template.spec;
    expect(pod.containers.map((c: { name: string }) => c.name)).toEqual(['redis', 'exporter']);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 999, fsGroup: 999 });
    const redis = pod.containers[0];
    expect(redis.env[0]).toEqual({
      name: 'ADMIN_PASSWORD',
      valueFrom: { secretKeyRef: { name: 'shop-sessions-users', key: 'admin-password' } },
    });
    expect(redis.resources.limits.memory).toBe('384Mi');
    // One Redis, a master: ready on PONG as before (the replica clauses never apply).
    expect(redis.readinessProbe.exec.command).toEqual(readyCommand(6379));
    expect(redis.lifecycle).toBeUndefined();
    expect(pod.terminationGracePeriodSeconds).toBe(30);
    expect(redis.env).toContainEqual({ name: 'TLS_CA_FILE', value: '/etc/scalable/ca/ca.crt' });
  });

  it("admits only the app's pods, and Prometheus's namespaces to the exporter", () => {
    expect(spec(find(objects, 'NetworkPolicy')).ingress).toEqual([
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

  it('hands the app SESSION_REDIS_URL, the password by reference and the TTL', () => {
    const env = webEnv(modelOf({ sessions: { ttlSeconds: 7200 } }));
    expect(env.filter((e) => e.name.startsWith('SESSION_'))).toEqual([
      { name: 'SESSION_REDIS_URL', value: 'rediss://shop-sessions.prod.svc:6379/0' },
      { name: 'SESSION_REDIS_USERNAME', value: 'app' },
      {
        name: 'SESSION_REDIS_PASSWORD',
        valueFrom: { secretKeyRef: { name: 'shop-sessions-users', key: 'app-password' } },
      },
      { name: 'SESSION_REDIS_SSLROOTCERT', value: '/etc/scalable/ca/sessions-ca/ca.crt' },
      { name: 'SESSION_TTL_SECONDS', value: '7200' },
    ]);
    const plain = webEnv(modelOf({ sessions: { tls: false } }));
    expect(plain.find((e) => e.name === 'SESSION_REDIS_URL')?.value).toBe(
      'redis://shop-sessions:6379/0',
    );
    expect(plain.map((e) => e.name)).not.toContain('SESSION_REDIS_SSLROOTCERT');
  });

  it('with tls: false serves plain TCP and declares no certificate', () => {
    const plain = buildSessions(modelOf({ sessions: { tls: false } }));
    expect(plain.map((o) => o.kind)).not.toContain('Certificate');
    const conf = (
      find(plain, 'ConfigMap', 'shop-sessions-config')['data'] as Record<string, string>
    )['redis.conf'];
    expect(conf).toContain('\nport 6379\n');
    expect(conf).not.toMatch(/^tls-/m);
  });
});
