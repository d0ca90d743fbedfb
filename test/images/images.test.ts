// Every image, run as its pod runs it (uid, read-only root filesystem, no capabilities) on
// what the operator renders: real programs, real configs, answers checked.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { issueCa, issueServerCert } from '../../operator/tiers/shared/tls/x509.ts';
import {
  configMapDir,
  docker,
  eventuallyOk,
  find,
  gatewayOf,
  image,
  ipOf,
  render,
  restricted,
  runPod,
  volumeDir,
} from './docker.ts';

const started: string[] = [];
afterAll(async () => {
  if (started.length > 0) await docker(['rm', '-f', ...started]);
});

const PG_UID = 999;
const REDIS_UID = 999;
const name = (what: string) => {
  const n = `scalable-smoke-${what}-${randomBytes(3).toString('hex')}`;
  started.push(n);
  return n;
};

async function metrics(url: string): Promise<string | undefined> {
  const res = await fetch(url).catch(() => undefined);
  return res?.ok ? await res.text() : undefined;
}

/** The metrics an exporter in `pod`'s network serves on `port`, once they say `<up> 1`. */
async function exporterUp(pod: string, port: number, up: string): Promise<string> {
  const ip = await ipOf(pod);
  return eventuallyOk(`${up} 1`, async () => {
    const t = await metrics(`http://${ip}:${port}/metrics`);
    return t && new RegExp(`^${up} 1$`, 'm').test(t) ? t : undefined;
  });
}

const full = render('manifests/examples/full.yaml');

describe('photoshare image', () => {
  it('loads the sample app and its SDK as uid 65532, and without its tiers says which is missing', async () => {
    const r = await docker(['run', '--rm', ...restricted(65532), image('photoshare')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr + r.stdout).toContain('photoshare needs spec.database');
  });
});

describe('operator image', () => {
  it('prints its version', async () => {
    const r = await docker(['run', '--rm', ...restricted(65532), image('operator'), '--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^scalable-operator \d+\.\d+\.\d+/);
  });

  it('without a cluster exits non-zero and says what to do', async () => {
    const r = await docker(['run', '--rm', ...restricted(65532), image('operator')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('no cluster to manage');
    expect(r.stderr).toContain('KUBECONFIG');
  });

  it('runs as uid 65532 with tini as PID 1', async () => {
    const r = await docker([
      'image',
      'inspect',
      '-f',
      '{{.Config.User}} {{json .Config.Entrypoint}}',
      image('operator'),
    ]);
    expect(r.stdout.trim()).toBe(
      '65532:65532 ["/usr/bin/tini","--","node","/app/dist/operator/main.js"]',
    );
  });
});

describe('postgres-patroni and postgres-exporter images', () => {
  const sts = find(full, 'StatefulSet', 'shop-db-0') as unknown as {
    spec: {
      template: {
        spec: {
          securityContext: { runAsUser: number };
          containers: {
            name: string;
            command: string[];
            args: string[];
            env: { name: string; value?: string; valueFrom?: unknown }[];
          }[];
        };
      };
    };
  };
  const pod = sts.spec.template.spec;

  it('the pod runs as the uid the image was built for', async () => {
    expect(pod.securityContext.runAsUser).toBe(PG_UID);
    const r = await docker(['run', '--rm', '--entrypoint', 'id', image('postgres-patroni'), '-u']);
    expect(r.stdout.trim()).toBe(String(PG_UID));
  });

  // The container's env as the kubelet would resolve it: downward API and Secrets filled in.
  const postgres = pod.containers.find((c) => c.name === 'postgres')!;
  const podIp = '10.0.0.7';
  const podEnv = postgres.env.flatMap((e) => {
    const value =
      e.value !== undefined
        ? e.value.replaceAll('$(POD_IP)', podIp).replaceAll('$(PATRONI_NAME)', 'shop-db-0-0')
        : e.name === 'POD_IP' || e.name === 'PATRONI_KUBERNETES_POD_IP'
          ? podIp
          : e.name === 'PATRONI_NAME'
            ? 'shop-db-0-0'
            : 'a-generated-password';
    return ['-e', `${e.name}=${value}`];
  });
  const podVolumes = (config: string) => ({
    [config]: '/etc/patroni:ro',
    [volumeDir(PG_UID)]: '/var/lib/postgresql/data',
  });
  const podTmpfs = [`/tmp:uid=${PG_UID},gid=${PG_UID}`, '/var/run/postgresql'];

  it('patroni --validate-config accepts the rendered patroni.yml with the pod env', async () => {
    const config = configMapDir(find(full, 'ConfigMap', 'shop-db-0-patroni'));
    const r = await runPod({
      image: image('postgres-patroni'),
      uid: PG_UID,
      volumes: podVolumes(config),
      tmpfs: podTmpfs,
      flags: podEnv,
      args: ['--validate-config', '/etc/patroni/patroni.yml'],
    });
    expect(r.stderr + r.stdout).not.toMatch(/not defined|error|invalid/i);
    expect(r.code).toBe(0);
  });

  it("the container's command, fence.py, hands Patroni its watchdog, and Patroni accepts it", async () => {
    const config = configMapDir(find(full, 'ConfigMap', 'shop-db-0-patroni'));
    // Patroni validates the configuration fence.py gives it instead of running on it.
    const bin = mkdtempSync(join(tmpdir(), 'scalable-bin-'));
    writeFileSync(join(bin, 'validate'), '#!/bin/sh\nexec patroni --validate-config "$1"\n', {
      mode: 0o755,
    });
    chmodSync(bin, 0o755);
    const run = (args: string[]) =>
      runPod({
        image: image('postgres-patroni'),
        uid: PG_UID,
        volumes: { ...podVolumes(config), [bin]: '/opt/validate:ro' },
        tmpfs: podTmpfs,
        flags: podEnv,
        entrypoint: postgres.command[0] ?? '',
        args: [...postgres.command.slice(1), ...args, '--patroni', '/opt/validate/validate'],
      });

    const ok = await run(postgres.args);
    expect(ok.stderr + ok.stdout).not.toMatch(/not defined|error|invalid|didn't pass/i);
    expect(ok.code).toBe(0);
    // The watchdog section is read: a margin Patroni refuses fails the validation.
    const margin = postgres.args.indexOf('--margin');
    const bad = await run(postgres.args.map((a, i) => (i === margin + 1 ? '-5' : a)));
    expect(bad.stderr + bad.stdout).toMatch(/watchdog\.safety_margin -5 didn't pass validation/);
    expect(bad.code).not.toBe(0);
  });

  it('starts Postgres, which answers a query, and postgres-exporter serves its metrics', async () => {
    const pg = name('pg');
    const password = randomBytes(12).toString('hex');
    const script = [
      'set -e',
      `printf '%s\\n' "$PGPW" >/tmp/pw`,
      'initdb -D /var/lib/postgresql/data/pgdata -U postgres --pwfile=/tmp/pw --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 --data-checksums >/dev/null',
      'exec postgres -D /var/lib/postgresql/data/pgdata -c listen_addresses=127.0.0.1 -c unix_socket_directories=/var/run/postgresql',
    ].join('\n');
    const start = await runPod({
      image: image('postgres-patroni'),
      uid: PG_UID,
      name: pg,
      flags: ['--shm-size', '64m'],
      volumes: { [volumeDir(PG_UID)]: '/var/lib/postgresql/data' },
      tmpfs: ['/tmp', `/var/run/postgresql:uid=${PG_UID},gid=${PG_UID}`],
      env: { PGPW: password },
      entrypoint: 'sh',
      args: ['-c', script],
    });
    expect(start.code, start.stderr).toBe(0);
    const answer = await eventuallyOk('a query', async () => {
      const q = await docker([
        'exec',
        '-e',
        `PGPASSWORD=${password}`,
        pg,
        'psql',
        '-h',
        '127.0.0.1',
        '-U',
        'postgres',
        '-Atc',
        "select current_setting('server_version_num')::int / 10000, current_user",
      ]);
      return q.code === 0 ? q.stdout.trim() : undefined;
    });
    expect(answer).toBe('17|postgres');

    const exporter = name('pgexp');
    const ex = await runPod({
      image: image('postgres-exporter'),
      uid: PG_UID,
      name: exporter,
      network: `container:${pg}`,
      env: {
        DATA_SOURCE_URI: '127.0.0.1:5432/postgres?sslmode=disable',
        DATA_SOURCE_USER: 'postgres',
        DATA_SOURCE_PASS: password,
      },
    });
    expect(ex.code, ex.stderr).toBe(0);
    expect(await exporterUp(pg, 9187, 'pg_up')).toMatch(/^pg_up 1$/m);
  });
});

/**
 * What a Redis pod mounts with TLS (the default): its key pair at /etc/scalable/tls and the
 * CA at /etc/scalable/ca, issued here by the operator's x509 module for localhost.
 */
async function tlsMounts(): Promise<string[]> {
  const now = new Date();
  const ca = await issueCa('images CA', now);
  const pair = await issueServerCert(ca, ['localhost', '127.0.0.1'], now);
  const root = mkdtempSync(join(tmpdir(), 'scalable-tls-'));
  const files: Record<string, Record<string, string>> = {
    tls: { 'tls.crt': pair.cert, 'tls.key': pair.key, 'ca.crt': ca.cert },
    ca: { 'ca.crt': ca.cert },
  };
  for (const [sub, fs] of Object.entries(files)) {
    mkdirSync(join(root, sub));
    chmodSync(join(root, sub), 0o755);
    // World-readable only in this throwaway directory (the pod's is 0640, group fsGroup).
    for (const [f, text] of Object.entries(fs))
      writeFileSync(join(root, sub, f), text, { mode: 0o644 });
  }
  return [
    '-v',
    `${join(root, 'tls')}:/etc/scalable/tls:ro`,
    '-v',
    `${join(root, 'ca')}:/etc/scalable/ca:ro`,
    '-e',
    'TLS_CA_FILE=/etc/scalable/ca/ca.crt',
  ];
}
const CLI_TLS = ['--tls', '--cacert', '/etc/scalable/ca/ca.crt'];
/** redis-cli in the container, authenticated as a client with the password would be. */
const redisCli = (container: string, password: string | undefined, ...args: string[]) =>
  docker([
    'exec',
    ...(password === undefined ? [] : ['-e', `REDISCLI_AUTH=${password}`]),
    container,
    'redis-cli',
    ...args,
  ]);

describe('redis and redis-exporter images', () => {
  const cm = find(full, 'ConfigMap', 'shop-cache-config');
  const password = randomBytes(12).toString('hex');

  it('redis answers PING over TLS only with the password given the way the pod gives it; the exporter serves metrics over TLS; sentinel starts on the rendered sentinel.conf', async () => {
    const conf = configMapDir(cm);
    const tls = await tlsMounts();
    const redis = name('redis');
    // What the cache's pods (Redis and Sentinel) share: image, uid, TLS files, password, dirs.
    const redisPod = {
      image: image('redis'),
      uid: REDIS_UID,
      flags: tls,
      env: { REDIS_PASSWORD: password, CONF_DIR: '/etc/redis', DATA_DIR: '/data' },
    };
    // As the cache pod: `sh /etc/redis/start-redis.sh`, REDIS_PASSWORD from the Secret.
    const start = await runPod({
      ...redisPod,
      name: redis,
      volumes: { [conf]: '/etc/redis:ro', [volumeDir(REDIS_UID)]: '/data' },
      args: ['sh', '/etc/redis/start-redis.sh'],
    });
    expect(start.code, start.stderr).toBe(0);
    const pong = await eventuallyOk('PONG', async () => {
      const r = await redisCli(redis, password, ...CLI_TLS, 'ping');
      return r.stdout.trim() === 'PONG' ? r.stdout.trim() : undefined;
    });
    expect(pong).toBe('PONG');
    const noAuth = await redisCli(redis, undefined, ...CLI_TLS, 'ping');
    expect(noAuth.stdout).toContain('NOAUTH');
    const wrong = await redisCli(redis, 'wrong', ...CLI_TLS, 'ping');
    expect(wrong.stdout + wrong.stderr).toMatch(/WRONGPASS|invalid/i);
    // TLS only: a plain connection gets no answer.
    const plain = await redisCli(redis, password, 'ping');
    expect(plain.stdout).not.toContain('PONG');

    const exporter = name('redisexp');
    const ex = await runPod({
      image: image('redis-exporter'),
      uid: REDIS_UID,
      name: exporter,
      network: `container:${redis}`,
      flags: tls,
      env: {
        REDIS_ADDR: 'rediss://localhost:6379',
        REDIS_EXPORTER_TLS_CA_CERT_FILE: '/etc/scalable/ca/ca.crt',
        REDIS_PASSWORD: password,
      },
    });
    expect(ex.code, ex.stderr).toBe(0);
    expect(await exporterUp(redis, 9121, 'redis_up')).toMatch(/^redis_up 1$/m);

    // Sentinel, as the cache's sentinel pod: start-sentinel.sh writes sentinel.conf into
    // DATA_DIR from the rendered template and starts redis-sentinel.
    const sentinel = name('sentinel');
    // The master name the rendered sentinel.conf monitors.
    const sentinelConf = (cm as unknown as { data: Record<string, string> }).data['sentinel.conf']!;
    const master = /^sentinel monitor (\S+) /m.exec(sentinelConf)![1]!;
    const s = await runPod({
      ...redisPod,
      name: sentinel,
      network: `container:${redis}`,
      volumes: { [conf]: '/etc/redis:ro', [volumeDir(REDIS_UID)]: '/data' },
      env: {
        ...redisPod.env,
        MASTER_NAME: master,
        SEED_ADDR: '127.0.0.1:6379',
        SELF_ADDR: '127.0.0.1:26379',
        SENTINELS: '127.0.0.1:26379',
      },
      args: ['sh', '/etc/redis/start-sentinel.sh'],
    });
    expect(s.code, s.stderr).toBe(0);
    const addr = await eventuallyOk('the master from Sentinel', async () => {
      const r = await redisCli(
        sentinel,
        password,
        ...CLI_TLS,
        '-p',
        '26379',
        'sentinel',
        'get-master-addr-by-name',
        master,
      );
      const lines = r.stdout.trim().split('\n');
      return lines.length === 2 ? lines : undefined;
    });
    expect(addr).toEqual(['127.0.0.1', '6379']);
  });
});

describe('redis-exporter image against an attacker (issue 36)', () => {
  const sts = find(full, 'StatefulSet', 'shop-sessions') as unknown as {
    spec: {
      template: {
        spec: { containers: { name: string; env: { name: string; value?: string }[] }[] };
      };
    };
  };
  const password = randomBytes(12).toString('hex');
  const exporterEnv = sts.spec.template.spec.containers.find((c) => c.name === 'exporter')!.env;
  // Every role's password the Redis container reads (one ACL user each: the exporter logs in
  // as its own), all set to the test's one password.
  const passwordEnv = sts.spec.template.spec.containers
    .find((c) => c.name === 'redis')!
    .env.filter((e) => e.name.endsWith('_PASSWORD') && e.name !== 'REDIS_PASSWORD')
    .flatMap((e) => ['-e', `${e.name}=${password}`]);

  it('serves no /scrape: a target and check-keys in the query get 404, the named target never sees a connection, no key value leaks', async () => {
    const conf = configMapDir(find(full, 'ConfigMap', 'shop-sessions-config'));
    const tls = await tlsMounts();
    const redis = name('sessions');
    const start = await docker([
      'run',
      '-d',
      '--name',
      redis,
      ...restricted(REDIS_UID),
      '-v',
      `${conf}:/etc/redis:ro`,
      '-v',
      `${volumeDir(REDIS_UID)}:/data`,
      ...tls,
      '-e',
      `REDIS_PASSWORD=${password}`,
      ...passwordEnv,
      '-e',
      'CONF_DIR=/etc/redis',
      '-e',
      'DATA_DIR=/data',
      image('redis'),
      'sh',
      '/etc/redis/start-redis.sh',
    ]);
    expect(start.code, start.stderr).toBe(0);
    // A session, as the SDK stores one.
    const victim = '{"user":"victim","csrf":"s3cr3t-token"}';
    await eventuallyOk('a session written', async () => {
      const r = await docker([
        'exec',
        '-e',
        `REDISCLI_AUTH=${password}`,
        redis,
        'redis-cli',
        ...CLI_TLS,
        'set',
        'sess:victim',
        victim,
      ]);
      return r.stdout.trim() === 'OK' ? true : undefined;
    });

    // The exporter exactly as the session pod runs it: the rendered env, the password from
    // the Secret, the image's own entrypoint.
    const env = exporterEnv.flatMap((e) => ['-e', `${e.name}=${e.value ?? password}`]);
    const exporter = name('sessexp');
    const ex = await docker([
      'run',
      '-d',
      '--name',
      exporter,
      ...restricted(REDIS_UID),
      '--network',
      `container:${redis}`,
      ...tls,
      ...env,
      image('redis-exporter'),
    ]);
    expect(ex.code, ex.stderr).toBe(0);
    const ip = await ipOf(redis);
    await eventuallyOk('redis_up 1', async () => {
      const t = await metrics(`http://${ip}:9121/metrics`);
      return t && /^redis_up 1$/m.test(t) ? t : undefined;
    });

    // The attacker's listener, where the exporter would send AUTH <password>.
    const seen: string[] = [];
    const listener = createServer((socket) => {
      seen.push('connection');
      socket.on('data', (d) => seen.push(d.toString('utf8')));
    });
    await new Promise<void>((resolve) => listener.listen(0, '0.0.0.0', resolve));
    try {
      const port = (listener.address() as AddressInfo).port;
      const gateway = await gatewayOf(redis);
      // The scrape handler dials before it answers: once the answer is here, a dial was made
      // or never will be.
      const toListener = await fetch(
        `http://${ip}:9121/scrape?target=${encodeURIComponent(`redis://${gateway}:${port}`)}`,
      );
      const body = await toListener.text();
      expect(toListener.status, body.slice(0, 200)).toBe(404);
      expect(seen, 'the listener named as target got a connection').toEqual([]);

      const keys = await fetch(
        `http://${ip}:9121/scrape?target=${encodeURIComponent('rediss://localhost:6379')}&check-keys=${encodeURIComponent('sess:*')}`,
      );
      const keysBody = await keys.text();
      expect(keys.status).toBe(404);
      expect(keysBody).not.toContain('sess:victim');
      // And /metrics takes no query: no key names, no values.
      const m = await metrics(
        `http://${ip}:9121/metrics?check-keys=sess:*&check-single-keys=sess:victim`,
      );
      expect(m).toMatch(/^redis_up 1$/m);
      expect(m).not.toContain('sess:victim');
      expect(m).not.toContain('s3cr3t-token');
    } finally {
      listener.close();
    }
  });
});
