// A real Prometheus (built by the devcluster) scrapes a real redis-server (cache and session
// store, started from their rendered ConfigMaps) through the redis-exporter image and a real
// Postgres (the postgres-patroni image) through the postgres-exporter image, on loopback. Its configuration is the rendered
// PodMonitors translated to static configs (each pod's target labels as the Prometheus
// Operator would set them) and its rules the rendered PrometheusRule. Healthy, nothing fires;
// with the cache's Redis master stopped, ScalableCacheNoMaster goes pending, then firing.
// Test-time changes: scrape and evaluation every second instead of 30 s / 1 m.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAll } from '../../operator/tiers/index.ts';
import type { K8sObject } from '../../operator/tiers/shared/chart.ts';
import { modelOf } from '../../operator/tiers/shared/test-helpers.ts';
import { renderPostBootstrap, ENV } from '../../operator/tiers/database/patroni-config.ts';
import { alertGroups } from '../../operator/tiers/monitoring/alerts.ts';
import { recordingRules } from '../../operator/tiers/monitoring/recording.ts';
import {
  endpointsOf,
  podTemplateOf,
  selects,
  targetLabels,
} from '../../operator/tiers/monitoring/test-targets.ts';
import { Harness, PASSWORDS, client, configMapData, freePort, waitFor } from './redis-harness.ts';
import type { Instance } from './redis-harness.ts';
import { promBinary, ruleOf } from './monitoring-fixtures.ts';
import { ENGINE_IMAGES, ENGINE_UID, startContainer } from './containers.ts';
import type { Container } from './containers.ts';

const app = modelOf({
  cache: { memory: '32Mi' },
  sessions: { memory: '32Mi' },
  // This test is about scrapes and rules against a bare Postgres; the exporter's TLS
  // connection (sslmode=verify-full) is exercised in postgres-tls.test.ts.
  database: { tls: false },
  monitoring: {},
});
const objects = buildAll(app);
const MONITOR_PASSWORD = 'monitor-engine-password';

const redis = new Harness();
const procs: ChildProcess[] = [];
const containers: Container[] = [];
const logs = new Map<string, string>();
let root = '';
let cacheRedis: Instance | undefined;
let promUrl = '';

/** A sidecar as its pod runs it: the image's entrypoint, the rendered env. */
function startImage(
  name: string,
  image: string,
  args: string[],
  env: Record<string, string>,
  mounts: string[] = [],
): Container {
  const c = startContainer({ image, name, args, env, readOnlyMounts: mounts });
  containers.push(c);
  return c;
}

function start(name: string, cmd: string, args: string[], env: Record<string, string>) {
  const p = spawn(cmd, args, {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  logs.set(name, '');
  const log = (d: Buffer) => logs.set(name, (logs.get(name) ?? '') + d.toString());
  p.stdout?.on('data', log);
  p.stderr?.on('data', log);
  procs.push(p);
  return p;
}

/** A container's plain env in the rendered pod template, by name. */
function renderedEnv(kind: string, name: string, container: string): Record<string, string> {
  const w = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!w) throw new Error(`no ${kind} ${name}`);
  const c = podTemplateOf(w).containers.find((x) => x.name === container) as
    { env?: Array<{ name: string; value?: string }> } | undefined;
  return Object.fromEntries(
    (c?.env ?? []).flatMap((e) => (e.value === undefined ? [] : [[e.name, e.value]])),
  );
}

const swapPort = (url: string, port: number) => url.replace(/:\d+(?=\/|$)/, `:${port}`);

async function startRedisTier(
  tier: 'cache' | 'sessions',
  workload: string,
): Promise<[Instance, number]> {
  const inst = await redis.start(
    tier,
    'start-redis.sh',
    configMapData(objects, `shop-${tier}-config`),
  );
  const exporterPort = await freePort();
  const env = renderedEnv(
    workload === 'shop-cache' ? 'Deployment' : 'StatefulSet',
    workload,
    'exporter',
  );
  startImage(
    `${tier}-exporter`,
    ENGINE_IMAGES.redisExporter,
    [],
    {
      // The sidecar's env (REDIS_ADDR, its own ACL user and that user's password from the
      // Secret), on loopback ports: it scrapes with no more rights than the exporter user's.
      REDIS_ADDR: swapPort(env['REDIS_ADDR'] ?? '', inst.port),
      REDIS_USER: env['REDIS_USER'] ?? '',
      REDIS_PASSWORD: PASSWORDS.exporter,
      // TLS (the default): rediss://localhost, verified against the mounted CA.
      ...(env['REDIS_EXPORTER_TLS_CA_CERT_FILE']
        ? { REDIS_EXPORTER_TLS_CA_CERT_FILE: redis.caFile }
        : {}),
      REDIS_EXPORTER_WEB_LISTEN_ADDRESS: `127.0.0.1:${exporterPort}`,
    },
    [redis.caFile],
  );
  return [inst, exporterPort];
}

/** A bare Postgres of the postgres-patroni image (initdb, then the postmaster as pid 1). */
async function startPostgres(): Promise<number> {
  const data = join(root, 'pg');
  const socket = join(root, 'socket');
  for (const d of [data, socket]) mkdirSync(d);
  for (const d of [root, data, socket]) chownSync(d, ENGINE_UID, ENGINE_UID);
  const port = await freePort();
  const pg = startContainer({
    image: ENGINE_IMAGES.postgres,
    name: 'monitoring-postgres',
    entrypoint: 'sh',
    args: [
      '-c',
      `initdb -D ${data} -U postgres --auth=trust >/dev/null && exec postgres -D ${data} -p ${port} -h 127.0.0.1 -k ${socket}`,
    ],
    mounts: [root],
  });
  containers.push(pg);
  await waitFor('postgres to accept connections', 60_000, async () => {
    if (!pg.running) throw new Error(`postgres exited:\n${pg.output}`);
    return pg.exec(['pg_isready', '-h', '127.0.0.1', '-p', String(port)]).status === 0;
  });
  // The rendered post-bootstrap script creates the monitoring role postgres_exporter uses;
  // Patroni runs it in the same container, with the image's psql.
  const script = join(root, 'post-bootstrap.sh');
  writeFileSync(script, renderPostBootstrap(app), { mode: 0o755 });
  const boot = pg.exec(['sh', script, `postgresql://postgres@127.0.0.1:${port}/postgres`], {
    [ENV.appPassword]: 'app-password',
    [ENV.monitorPassword]: MONITOR_PASSWORD,
  });
  if (boot.status !== 0) throw new Error(`post-bootstrap failed: ${boot.stderr}`);
  return port;
}

/** The rendered PodMonitors as static scrape configs: one target per (pod, endpoint) we run. */
function scrapeConfigs(
  targets: Array<{ pod: string; workload: string; port: string; address: string }>,
) {
  const monitors = objects.filter((o) => o.kind === 'PodMonitor');
  const configs: Record<string, unknown>[] = [];
  for (const monitor of monitors) {
    endpointsOf(monitor).forEach((ep, i) => {
      const statics = targets.flatMap((t) => {
        const w = objects.find(
          (o) =>
            o.metadata.name === t.workload && (o.kind === 'StatefulSet' || o.kind === 'Deployment'),
        ) as K8sObject;
        if (t.port !== ep.port || !selects(monitor, podTemplateOf(w))) return [];
        const labels = targetLabels(monitor, ep, podTemplateOf(w), t.pod);
        return labels ? [{ targets: [t.address], labels }] : [];
      });
      if (statics.length === 0) return;
      configs.push({
        job_name: `podMonitor/${monitor.metadata.namespace}/${monitor.metadata.name}/${i}`,
        metrics_path: ep.path,
        scrape_interval: '1s',
        static_configs: statics,
      });
    });
  }
  return configs;
}

async function api<T>(path: string): Promise<T> {
  const res = await fetch(`${promUrl}${path}`);
  const body = (await res.json()) as { status: string; data: T };
  if (body.status !== 'success') throw new Error(`${path}: ${JSON.stringify(body)}`);
  return body.data;
}
const query = (q: string) =>
  api<{ result: Array<{ metric: Record<string, string>; value: [number, string] }> }>(
    `/api/v1/query?query=${encodeURIComponent(q)}`,
  ).then((d) => d.result);
type Alert = { labels: Record<string, string>; state: string };
const alerts = () => api<{ alerts: Alert[] }>('/api/v1/alerts').then((d) => d.alerts);

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'scalable-prom-'));
  await redis.init();
  const [cache, cacheExporter] = await startRedisTier('cache', 'shop-cache');
  cacheRedis = cache;
  const [, sessionsExporter] = await startRedisTier('sessions', 'shop-sessions');
  const pgPort = await startPostgres();
  const pgExporterPort = await freePort();
  const pgEnv = renderedEnv('StatefulSet', 'shop-db-0', 'exporter');
  startImage(
    'postgres-exporter',
    ENGINE_IMAGES.postgresExporter,
    [`--web.listen-address=127.0.0.1:${pgExporterPort}`],
    {
      DATA_SOURCE_URI: (pgEnv['DATA_SOURCE_URI'] ?? '')
        .replace(/:\d+\//, `:${pgPort}/`)
        .replace('localhost', '127.0.0.1'),
      DATA_SOURCE_USER: pgEnv['DATA_SOURCE_USER'] ?? '',
      DATA_SOURCE_PASS: MONITOR_PASSWORD,
    },
  );

  const promPort = await freePort();
  promUrl = `http://127.0.0.1:${promPort}`;
  writeFileSync(join(root, 'rules.yaml'), yaml.dump(ruleOf(objects)));
  writeFileSync(
    join(root, 'prometheus.yml'),
    yaml.dump({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: ['rules.yaml'],
      scrape_configs: scrapeConfigs([
        {
          pod: 'shop-cache-7c9d8f6b5-q4x2z',
          workload: 'shop-cache',
          port: 'metrics',
          address: `127.0.0.1:${cacheExporter}`,
        },
        {
          pod: 'shop-sessions-0',
          workload: 'shop-sessions',
          port: 'metrics',
          address: `127.0.0.1:${sessionsExporter}`,
        },
        {
          pod: 'shop-db-0-0',
          workload: 'shop-db-0',
          port: 'metrics',
          address: `127.0.0.1:${pgExporterPort}`,
        },
      ]),
    }),
  );
  start(
    'prometheus',
    promBinary('prometheus'),
    [
      `--config.file=${join(root, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(root, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ],
    {},
  );
  await waitFor(
    'every target up',
    60_000,
    async () => {
      const up = await query('up == 1');
      return up.length === 3;
    },
    500,
  );
  // Cache traffic, so hit ratios are defined.
  const c = client(cache.port);
  await c.set('k', 'v');
  for (let i = 0; i < 20; i++) await c.get(i % 2 ? 'k' : 'missing');
  c.disconnect();
}, 180_000);

afterAll(async () => {
  for (const p of procs) p.kill('SIGKILL');
  for (const c of containers) c.kill();
  await Promise.all(containers.map((c) => c.exited));
  await redis.cleanup();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('Prometheus on the rendered monitoring objects', () => {
  it('scrapes each tier with the labels the alerts select by', async () => {
    const up = await query('up');
    expect(
      up
        .map((s) => [
          s.metric['scalable_tier'],
          s.metric['scalable_app'],
          s.metric['scalable_shard'],
        ])
        .sort(),
    ).toEqual([
      ['cache', 'shop', undefined],
      ['database', 'shop', '0'],
      ['sessions', 'shop', undefined],
    ]);
    expect(await query('redis_up{scalable_app="shop"} == 1')).toHaveLength(2);
    expect(await query('pg_up{scalable_app="shop", scalable_shard="0"} == 1')).toHaveLength(1);
  });

  it('serves every exporter metric the rules read, and each recording rule has data', async () => {
    const names = new Set(await api<string[]>('/api/v1/label/__name__/values'));
    const exprs = [...alertGroups(app).flatMap((g) => g.rules), ...recordingRules(app)].map(
      (r) => r.expr,
    );
    const used = new Set(
      exprs.flatMap((e) =>
        [...e.matchAll(/(?<![:\w])((?:redis|pg)_[a-z_]+)\b/g)].map((m) => m[1] ?? ''),
      ),
    );
    expect(used.size).toBeGreaterThan(8);
    for (const metric of used) expect(names, metric).toContain(metric);
    await waitFor(
      'recording rules',
      30_000,
      async () => {
        for (const r of recordingRules(app)) if ((await query(r.record)).length === 0) return false;
        return true;
      },
      500,
    );
  });

  it('fires nothing while healthy', async () => {
    // Long enough for every rule group to evaluate many times on fresh data.
    await new Promise((r) => setTimeout(r, 5_000));
    expect(await alerts()).toEqual([]);
  });

  it('stopping the cache Redis makes ScalableCacheNoMaster pending, then firing', async () => {
    if (!cacheRedis) throw new Error('no cache Redis');
    await redis.kill(cacheRedis, 'SIGTERM');
    let seen: Alert[] = [];
    await waitFor(
      'ScalableCacheNoMaster pending',
      60_000,
      async () => {
        seen = (await alerts()).filter((a) => a.labels['alertname'] === 'ScalableCacheNoMaster');
        return seen.some((a) => a.state === 'pending' || a.state === 'firing');
      },
      500,
    );
    expect(seen[0]?.labels).toMatchObject({
      namespace: 'prod',
      scalable_app: 'shop',
      scalable_tier: 'cache',
      severity: 'critical',
    });
    // Nothing about the healthy tiers.
    expect((await alerts()).map((a) => a.labels['alertname'])).toEqual(['ScalableCacheNoMaster']);
    // `for: 1m`: a generous bound on the transition to firing.
    await waitFor(
      'ScalableCacheNoMaster firing',
      120_000,
      async () =>
        (await alerts()).some(
          (a) => a.labels['alertname'] === 'ScalableCacheNoMaster' && a.state === 'firing',
        ),
      1000,
    );
  }, 200_000);
});
