// The queue tier with the real KEDA operator: the operator renders the store, the worker and
// its ScaledObject; KEDA (run outside the cluster, see devcluster/keda.ts) reads the backlog
// of a real redis-server started from the store's live ConfigMap and password Secret, and
// scales the worker Deployment 0 -> 1 when messages arrive and back to 0 after the cooldown
// once they are acknowledged. Pods are kwok's: nothing runs in them, so the test itself plays
// the worker (XREADGROUP + XACK on the rendered stream and group).
//
// Reachability, honestly: the ScaledObject names the store as <app>-queue.<ns>.svc:6379. The
// redis-server listens on port 6379 of a loopback address of its own (127.x.y.z), and KEDA's
// private /etc/hosts maps that Service name to it; KEDA dials exactly what was rendered.
// TLS (the default): the store serves the key pair the operator issued into its Secret, and
// KEDA verifies it by that Service name against the CA its TriggerAuthentication hands it.
import { ACL_USERS } from '../../operator/engines/redis/config.ts';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKeda } from '../../devcluster/keda.ts';
import type { Keda } from '../../devcluster/keda.ts';
import { eventually, printLogDirOnFailure, uniqueName } from '../../devcluster/testing.ts';
import { toModel } from '../../operator/api/model.ts';
import { validateApp } from '../../operator/api/validate.ts';
import { pathOf } from '../../operator/reconcile/kinds.ts';
import type { KubeClient } from '../../operator/runtime/kube-client.ts';
import { buildAll } from '../../operator/tiers/index.ts';
import { TIER_LABEL } from '../../operator/tiers/shared/meta.ts';
import {
  applyAs,
  closeSuite,
  conditionOf,
  deleteNamespace,
  getApp,
  getObj,
  kindInfo,
  kubeconfig,
  openSuite,
  scalableApp,
  startOperatorAs,
} from './operator-harness.ts';
import type { Json, OperatorProcess } from './operator-harness.ts';

const ns = uniqueName('queue-keda');
const identity = uniqueName('scalable-operator');
const NAME = 'shop';
const WORKER = `${NAME}-worker-thumbs`;
const POLL_SECONDS = 2;
const COOLDOWN_SECONDS = 10;
const host = `127.${1 + Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}.${
  1 + Math.floor(Math.random() * 250)
}`;
let client: KubeClient;
let op: OperatorProcess;
let keda: Keda;
let redisProc: ChildProcess | undefined;
let redis: Redis;
let dir = '';
const timings: Record<string, number> = {};

const deploymentInfo = kindInfo('apps/v1', 'Deployment');
const scaledObjectInfo = kindInfo('keda.sh/v1alpha1', 'ScaledObject');
const replicas = async (): Promise<number | undefined> => {
  const d = await getObj(client, deploymentInfo, ns, WORKER);
  return (d?.['spec'] as Json | undefined)?.['replicas'] as number | undefined;
};
const atReplicas = (want: (n: number) => boolean) => async () => {
  const n = await replicas();
  return n !== undefined && want(n) ? n : undefined;
};

/** The store as the pod runs it: start-redis.sh and redis.conf from the live ConfigMap. */
async function startStore(): Promise<void> {
  const cm = await getObj(client, kindInfo('v1', 'ConfigMap'), ns, `${NAME}-queue-config`);
  const data = cm?.['data'] as Record<string, string>;
  // The generated passwords, one per ACL role (engines/redis/config.ts ACL_USERS).
  const secret = await eventually('the generated queue passwords', async () => {
    const s = await getObj(client, kindInfo('v1', 'Secret'), ns, `${NAME}-queue-users`);
    return s?.['data'] as Record<string, string> | undefined;
  });
  const roleEnv = Object.fromEntries(
    Object.values(ACL_USERS).map((u) => [
      u.env,
      Buffer.from(secret[u.key] ?? '', 'base64').toString('utf8'),
    ]),
  );
  const password = roleEnv[ACL_USERS.app.env] ?? '';
  // The pod's mounts: the issued key pair (/etc/scalable/tls) and its CA (/etc/scalable/ca).
  const tls = await eventually('the issued queue key pair', async () => {
    const s = await getObj(client, kindInfo('v1', 'Secret'), ns, `${NAME}-queue-tls`);
    const d = (s?.['data'] ?? {}) as Record<string, string>;
    return d['tls.key'] ? d : undefined;
  });
  for (const [sub, keys] of [
    ['tls', ['tls.crt', 'tls.key', 'ca.crt']],
    ['ca', ['ca.crt']],
  ] as const) {
    await mkdir(join(dir, sub), { recursive: true });
    for (const k of keys)
      await writeFile(join(dir, sub, k), Buffer.from(tls[k] ?? '', 'base64'), { mode: 0o600 });
  }
  const ca = Buffer.from(tls['ca.crt'] ?? '', 'base64').toString('utf8');
  const conf = join(dir, 'conf');
  const dataDir = join(dir, 'data');
  await mkdir(conf, { recursive: true });
  await mkdir(dataDir, { recursive: true });
  for (const [k, v] of Object.entries(data)) {
    // Only the listen address (this test's loopback address), the data dir and the mount
    // points of the TLS files change.
    const text = k.endsWith('.conf')
      ? v
          .replace(/^bind .*$/m, `bind ${host}`)
          .replace(/^dir .*$/m, `dir ${dataDir}`)
          .replaceAll('/etc/scalable/tls', join(dir, 'tls'))
          .replaceAll('/etc/scalable/ca', join(dir, 'ca'))
      : v;
    await writeFile(join(conf, k), text);
  }
  expect(data['redis.conf']).toMatch(/^port 0\ntls-port 6379$/m);
  redisProc = spawn('sh', [join(conf, 'start-redis.sh')], {
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      ...roleEnv,
      CONF_DIR: conf,
      TLS_CA_FILE: join(dir, 'ca', 'ca.crt'),
    },
    stdio: 'ignore',
  });
  redis = new Redis({
    host,
    port: 6379,
    // As the app user, the one KEDA's scalers use.
    username: ACL_USERS.app.user,
    password,
    maxRetriesPerRequest: 1,
    tls: { ca, servername: `${NAME}-queue.${ns}.svc` },
  });
  redis.on('error', () => undefined);
  await eventually('the queue store to answer', async () =>
    (await redis.ping()) === 'PONG' ? true : undefined,
  );
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'queue-keda-'));
  client = await openSuite(ns);
  // Exactly operator/rbac.ts's ClusterRole: ScaledObjects and TriggerAuthentications included.
  op = await startOperatorAs(client, identity);
  keda = await startKeda({
    kubeconfig: kubeconfig(),
    namespaces: [ns],
    hosts: { [`${NAME}-queue.${ns}.svc`]: host },
    dir: join(dir, 'keda'),
  });
}, 120_000);

afterAll(async () => {
  // KEDA holds a finalizer on its ScaledObjects: it must see them go before it stops.
  await deleteNamespace(client, ns);
  await eventually(
    'the ScaledObjects to go',
    async () => {
      const list = await client.request<Json>('GET', pathOf(scaledObjectInfo, ns), {
        verb: 'list',
        resource: scaledObjectInfo.plural,
      });
      return ((list['items'] as Json[]) ?? []).length === 0 ? true : undefined;
    },
    60_000,
  ).catch((e: Error) => console.error(e.message));
  await keda?.stop();
  await op?.stop('SIGTERM');
  redis?.disconnect();
  redisProc?.kill('SIGKILL');
  await closeSuite(client, { identities: [identity] });
  console.log(`[queue-keda] timings (s): ${JSON.stringify(timings)}`);
  await rm(dir, { recursive: true, force: true });
});

describe('queue workers scaled by the real KEDA operator', () => {
  printLogDirOnFailure();

  it.each([0, 2])(
    'the rendered queue objects (replicas %i) pass a server-side dry run against the KEDA CRDs',
    async (queueReplicas) => {
      const v = validateApp(
        scalableApp(ns, 'dry', {
          web: { image: 'shop:1' },
          queue: { replicas: queueReplicas, consumers: [{ name: 'a', image: 'w:1' }] },
        }),
      );
      if (!v.ok) throw new Error(JSON.stringify(v.errors));
      // cert-manager's kinds are not served here (operator-tls.test.ts dry-runs them).
      const objs = buildAll(toModel(v.app)).filter(
        (o) =>
          o.metadata.labels?.[TIER_LABEL] === 'queue' &&
          !o.apiVersion.startsWith('cert-manager.io/'),
      );
      expect(objs.map((o) => o.kind)).toEqual(
        expect.arrayContaining(['ScaledObject', 'TriggerAuthentication']),
      );
      for (const o of objs) {
        const info = kindInfo(o.apiVersion, o.kind);
        await client.request('PATCH', pathOf(info, ns, o.metadata.name), {
          verb: 'apply',
          resource: info.plural,
          query: { fieldManager: 'dry-run', force: true, dryRun: 'All' },
          contentType: 'application/apply-patch+yaml',
          body: o,
        });
      }
    },
  );

  it('renders the store, the worker and its ScaledObject; KEDA takes the replicas over', async () => {
    await applyAs(
      client,
      'test-user',
      scalableApp(ns, NAME, {
        web: { image: 'shop:1' },
        queue: {
          consumers: [
            {
              name: 'thumbs',
              image: 'shop-worker:1',
              maxReplicas: 3,
              targetBacklog: 5,
              pollingIntervalSeconds: POLL_SECONDS,
              cooldownSeconds: COOLDOWN_SECONDS,
            },
          ],
        },
      }),
    );
    await eventually('the worker Deployment', () => getObj(client, deploymentInfo, ns, WORKER));
    await eventually('the ScaledObject', () => getObj(client, scaledObjectInfo, ns, WORKER));
    await startStore();
    // The worker the first apply started creates its group on start, as the SDK does. Until
    // then KEDA's pending trigger errors (no such group), which can keep the ScaledObject
    // from Ready (seen on a loaded machine) and keeps KEDA from scaling to zero.
    await redis.xgroup('CREATE', 'thumbs', 'thumbs', '0', 'MKSTREAM');
    // KEDA reached the store through the rendered address with the TriggerAuthentication.
    const so = await eventually(
      'ScaledObject Ready=True',
      async () => {
        const o = await getObj(client, scaledObjectInfo, ns, WORKER);
        return conditionOf(o, 'Ready')?.['status'] === 'True' ? o : undefined;
      },
      120_000,
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}\nKEDA log tail:\n${(await keda.log()).slice(-3000)}`);
    });
    expect((so['status'] as Json)['hpaName']).toBe(`keda-hpa-${WORKER}`);
    // The operator leaves `replicas` to KEDA once its ScaledObject is live.
    await eventually('the operator to give up spec.replicas', async () => {
      const cur = await getObj(client, deploymentInfo, ns, WORKER);
      const mine = ((cur?.['metadata'] as Json)['managedFields'] as Json[]).find(
        (m) => m['manager'] === 'scalable-operator' && m['operation'] === 'Apply',
      );
      if (!mine) return undefined;
      return JSON.stringify(mine['fieldsV1']).includes('"f:replicas"') ? undefined : true;
    });
  }, 240_000);

  it('an empty stream: KEDA scales the worker to 0 and the operator does not undo it', async () => {
    // The group exists (the first test): nothing to do, so KEDA scales the worker to zero.
    const start = Date.now();
    await eventually(
      'the worker at 0 replicas',
      atReplicas((n) => n === 0),
      180_000,
    );
    timings['idle to 0'] = (Date.now() - start) / 1000;
    // Several reconciles later (status updates of the ScaledObject trigger them), still 0.
    await new Promise((r) => setTimeout(r, 3 * POLL_SECONDS * 1000));
    expect(await replicas()).toBe(0);
    const app = await eventually('QueueReady=True', async () => {
      const a = await getApp(client, ns, NAME);
      return conditionOf(a, 'QueueReady')?.['status'] === 'True' ? a : undefined;
    });
    expect((app['status'] as Json)['queue']).toMatchObject({
      ready: '1/1',
      consumers: [{ name: 'thumbs', replicas: 0, scaler: 'KEDA' }],
    });
  }, 240_000);

  it('the first messages wake a worker (0 -> 1) within the polling interval', async () => {
    const t0 = Date.now();
    for (let i = 0; i < 3; i++) await redis.xadd('thumbs', '*', 'payload', JSON.stringify({ i }));
    await eventually(
      'the worker at >= 1 replica',
      atReplicas((n) => n >= 1),
      120_000,
      100,
    );
    timings['activation 0->1'] = (Date.now() - t0) / 1000;
    await eventually('a ready worker pod', async () => {
      const d = await getObj(client, deploymentInfo, ns, WORKER);
      return ((d?.['status'] as Json | undefined)?.['readyReplicas'] as number) >= 1
        ? true
        : undefined;
    });
  }, 180_000);

  it('once every message is acknowledged, back to 0 after the cooldown', async () => {
    // The worker's part: read as the consumer group and acknowledge.
    const read = (await redis.xreadgroup('GROUP', 'thumbs', 'w-1', 'STREAMS', 'thumbs', '>')) as [
      string,
      [string, string[]][],
    ][];
    const ids = read[0]![1].map(([id]) => id);
    expect(ids).toHaveLength(3);
    // Delivered but not acknowledged: pending keeps the worker up.
    await new Promise((r) => setTimeout(r, (COOLDOWN_SECONDS + 3 * POLL_SECONDS) * 1000));
    expect(await replicas()).toBeGreaterThanOrEqual(1);
    const t0 = Date.now();
    await redis.xack('thumbs', 'thumbs', ...ids);
    await eventually(
      'the worker back at 0',
      atReplicas((n) => n === 0),
      180_000,
      100,
    );
    timings['scale-down after ack'] = (Date.now() - t0) / 1000;
  }, 240_000);

  it('the operator needed no permission beyond its ClusterRole (TriggerAuthentication included)', () => {
    expect(op.logs()).toContain('TriggerAuthentication');
    // This operator watches every namespace: creating an event in another suite's namespace
    // while it is being deleted is refused by admission (403 "being terminated"), which says
    // nothing about its rights; any other 403 does.
    const refused = op
      .logs()
      .split('\n')
      .filter((l) => / 403 |forbidden/i.test(l) && !/because it is being terminated/.test(l));
    expect(refused).toEqual([]);
  });
});
