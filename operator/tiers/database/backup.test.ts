import yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { find, modelOf } from '../shared/test-helpers.ts';
import { buildDatabase } from './build.ts';
import { renderPgBackRestConfig } from './backup.ts';
import { backupLayout, patroniConfig } from './patroni-config.ts';

const s3 = {
  endpoint: 'https://store.backup.svc:7070',
  bucket: 'pg-backups',
  credentialsSecret: 'backup-creds',
};
const twoShards = { shards: 2, shardKey: 'customer_id' };
const withBackup = modelOf({ database: { ...twoShards, backup: { s3 } } });

type Obj = Record<string, unknown> & { data?: Record<string, string>; spec?: unknown };
type Pod = {
  containers: {
    name: string;
    env: { name: string; valueFrom?: unknown }[];
    volumeMounts: { name: string; mountPath: string }[];
  }[];
  volumes: Record<string, unknown>[];
};
const podOf = (objects: readonly unknown[], shard: number): Pod =>
  (
    find(objects as never, 'StatefulSet', `shop-db-${shard}`) as unknown as {
      spec: { template: { spec: Pod } };
    }
  ).spec.template.spec;
const postgresOf = (pod: Pod) => pod.containers.find((c) => c.name === 'postgres')!;

/** pgbackrest.conf as sections of key=value (comments dropped). */
function ini(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let section = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const head = /^\[(.+)\]$/.exec(line);
    if (head?.[1]) {
      section = head[1];
      out[section] = {};
      continue;
    }
    const eq = line.indexOf('=');
    (out[section] ??= {})[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

describe('pgBackRest rendering (database.backup)', () => {
  it('renders nothing of it when backup is unset', () => {
    const objects = buildDatabase(modelOf({ database: {} }));
    const cm = find(objects, 'ConfigMap', 'shop-db-0-patroni') as unknown as Obj;
    expect(Object.keys(cm.data ?? {})).not.toContain('pgbackrest.conf');
    const params = patroniConfig(modelOf({ database: {} }), 0).postgresql.parameters;
    expect(params).not.toHaveProperty('archive_mode');
    expect(params).not.toHaveProperty('archive_command');
    expect(JSON.stringify(objects)).not.toMatch(/PGBACKREST|pgbackrest/);
  });

  it('gives each shard its own stanza over one S3 repository, verifying TLS', () => {
    const objects = buildDatabase(withBackup);
    for (const shard of [0, 1]) {
      const cm = find(objects, 'ConfigMap', `shop-db-${shard}-patroni`) as unknown as Obj;
      const conf = ini(cm.data?.['pgbackrest.conf'] ?? '');
      expect(conf['global']).toEqual({
        'repo1-type': 's3',
        'repo1-s3-endpoint': 'store.backup.svc',
        'repo1-storage-port': '7070',
        'repo1-s3-bucket': 'pg-backups',
        'repo1-s3-region': 'us-east-1',
        'repo1-s3-uri-style': 'host',
        'repo1-path': '/prod/shop',
        'repo1-storage-verify-tls': 'y',
        'repo1-retention-full-type': 'count',
        'repo1-retention-full': '2',
        'compress-type': 'zst',
        'start-fast': 'y',
        'log-level-file': 'off',
        'lock-path': '/tmp/pgbackrest',
      });
      expect(conf[`shop-db-${shard}`]).toEqual({
        'pg1-path': '/var/lib/postgresql/data/pgdata',
        'pg1-socket-path': '/var/run/postgresql',
        'pg1-port': '5432',
        'pg1-user': 'postgres',
      });
      expect(Object.keys(conf)).toEqual(['global', `shop-db-${shard}`]);
    }
  });

  it('archives from whichever member is primary: archive_mode on, archive-push to the shard stanza', () => {
    for (const shard of [0, 1]) {
      const cfg = patroniConfig(withBackup, shard);
      expect(cfg.postgresql.parameters).toMatchObject({
        archive_mode: 'on',
        archive_command: `pgbackrest --config=/etc/patroni/pgbackrest.conf --stanza=shop-db-${shard} archive-push "%p"`,
        archive_timeout: '60s',
      });
      // Local parameters, the same file for every member; not bootstrap-only DCS values.
      expect(cfg.bootstrap.dcs.postgresql.parameters).not.toHaveProperty('archive_mode');
    }
  });

  it('takes the keys from the Secret as env and never writes them into a ConfigMap', () => {
    const objects = buildDatabase(withBackup);
    for (const shard of [0, 1]) {
      const env = postgresOf(podOf(objects, shard)).env;
      expect(env.filter((e) => e.name.startsWith('PGBACKREST_'))).toEqual([
        {
          name: 'PGBACKREST_REPO1_S3_KEY',
          valueFrom: { secretKeyRef: { name: 'backup-creds', key: 'AWS_ACCESS_KEY_ID' } },
        },
        {
          name: 'PGBACKREST_REPO1_S3_KEY_SECRET',
          valueFrom: { secretKeyRef: { name: 'backup-creds', key: 'AWS_SECRET_ACCESS_KEY' } },
        },
      ]);
    }
    const configMaps = objects.filter((o) => o.kind === 'ConfigMap');
    expect(JSON.stringify(configMaps)).not.toMatch(/repo1-s3-key|backup-creds/);
  });

  it("mounts a private endpoint's CA from a Secret or a ConfigMap and points pgBackRest at it", () => {
    for (const [ca, source] of [
      [{ secretName: 'store-ca' }, { secret: { secretName: 'store-ca' } }],
      [{ configMapName: 'store-ca', key: 'bundle.pem' }, { configMap: { name: 'store-ca' } }],
    ] as const) {
      const app = modelOf({ database: { backup: { s3: { ...s3, ca } } } });
      const objects = buildDatabase(app);
      const pod = podOf(objects, 0);
      const volume = pod.volumes.find((v) => v['name'] === 'backup-ca');
      expect(volume).toMatchObject(source);
      const key = 'key' in ca ? ca.key : 'ca.crt';
      expect(JSON.stringify(volume)).toContain(`{"key":"${key}","path":"ca.crt"}`);
      expect(postgresOf(pod).volumeMounts).toContainEqual({
        name: 'backup-ca',
        mountPath: '/etc/pgbackrest/ca',
        readOnly: true,
      });
      const conf = ini(renderPgBackRestConfig(app, 0, backupLayout()));
      expect(conf['global']?.['repo1-storage-ca-file']).toBe('/etc/pgbackrest/ca/ca.crt');
    }
    expect(podOf(buildDatabase(withBackup), 0).volumes.map((v) => v['name'])).not.toContain(
      'backup-ca',
    );
  });

  it('keeps full backups by days, on a path, at port 443 by default, path-style when asked', () => {
    const app = modelOf({
      database: {
        backup: {
          s3: {
            ...s3,
            endpoint: 'https://s3.eu-west-1.example.com/',
            path: '/prod/pg/',
            uriStyle: 'path',
            region: 'eu-west-1',
          },
          retention: { days: 14 },
        },
      },
    });
    const g = ini(renderPgBackRestConfig(app, 0, backupLayout()))['global'];
    expect(g).toMatchObject({
      'repo1-s3-endpoint': 's3.eu-west-1.example.com',
      'repo1-storage-port': '443',
      'repo1-path': '/prod/pg',
      'repo1-s3-uri-style': 'path',
      'repo1-s3-region': 'eu-west-1',
      'repo1-retention-full-type': 'time',
      'repo1-retention-full': '14',
    });
  });

  it("lets the database pods reach the store's port", () => {
    const egress = (objects: readonly unknown[]) =>
      yaml.dump(
        (
          find(objects as never, 'NetworkPolicy', 'shop-db') as unknown as {
            spec: { egress: unknown };
          }
        ).spec.egress,
      );
    expect(egress(buildDatabase(withBackup))).toMatch(/port: 7070/);
    expect(egress(buildDatabase(modelOf({ database: {} })))).not.toMatch(/port: 7070/);
  });
});
