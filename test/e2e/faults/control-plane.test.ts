// The API server unreachable for a minute (issue 34, item 3), on the shared sample app: the
// kube-apiserver process on the control-plane node stopped (SIGSTOP: its connections hang, as
// behind a dead load balancer) for OUTAGE_S, then continued. etcd, the scheduler, the
// controller manager, every kubelet and CoreDNS keep running and cannot reach it.
//
// A probe pod with the web pods' env runs the sample app's paths from before the outage to
// after it, each in its own loop: the web Service's /healthz; photo uploads (the web tier, the
// session store, a Postgres write, a queue message); a write to Postgres on a new connection
// each time (DNS, the Service, TLS, a login); a cache write and read through the Sentinels.
// Its log (the container's stdout, which needs no API server) is read afterwards. Asserted:
// the data plane served throughout (every attempt inside the outage answered), Patroni kept
// its primary (failsafe_mode), every photo uploaded during the outage got its thumbnail once
// the workers could be scaled again, the app is Ready again without a rollout (the workloads'
// pod templates as before), and the operator has a leader again. Measured and recorded: what
// the operator did (restarts, leader changes) and how long until it led again.
import { describe, expect, it } from 'vitest';
import { run } from '../../../devcluster/exec.ts';
import { seconds, useSharedApp } from '../support/app.ts';
import { OPERATOR_NAMESPACE } from '../support/cluster.ts';
import {
  cloneWebPod,
  eventually,
  getJson,
  kubectl,
  waitAppReady,
  type List,
  type Meta,
  type Pod,
} from '../support/kube.ts';
import { leader, operatorPods } from '../support/operator.ts';
import { postgresFrom } from '../support/postgres.ts';
import { redisScript } from '../support/redis.ts';
import { record } from '../support/results.ts';

const { namespace: NS, name: APP, client: CLIENT } = useSharedApp();
const { sql } = postgresFrom(NS, CLIENT);
const OUTAGE_S = 60;
/** The probe's run: before the outage (its loops warm), the outage, after it. */
const PROBE_S = 15 + OUTAGE_S + 40;
const PROBE = `${APP}-cp-probe`;
const TABLE = 'e2e_cp_probe';
const PRIMARY = `${APP}-db-0.${NS}.svc`;

interface Attempt {
  readonly k: string;
  readonly t: number;
  readonly ok: number;
  readonly ms: number;
  readonly err?: string;
  readonly photoId?: string;
  readonly userId?: string;
}

/** The probe: one loop per path, a JSON line per attempt. */
const probeScript = redisScript(`
  import pg from 'pg';
  import { solidPng } from '/app/examples/photoshare/src/thumbnail.ts';
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const emit = (o) => console.log(JSON.stringify(o));
  const WEB = 'http://${APP}-web.${NS}.svc';
  const end = Date.now() + ${PROBE_S * 1000};
  const png = solidPng(16, 16, [200, 40, 40, 255]).toString('base64');
  let cookie = '';
  while (!cookie) {
    try {
      const r = await fetch(WEB + '/signup', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'cp-probe', password: 'cp-probe-pw' }), signal: AbortSignal.timeout(5000) });
      if (r.status === 201) { cookie = (r.headers.get('set-cookie') ?? '').split(';')[0]; emit({ k: 'user', t: Date.now(), ok: 1, ms: 0, userId: (await r.json()).userId }); }
    } catch {}
    if (!cookie) await sleep(1000);
  }
  async function loop(k, every, fn) {
    while (Date.now() < end) {
      const t = Date.now();
      try { emit({ k, t, ok: 1, ...(await fn()), ms: Date.now() - t }); }
      catch (e) { emit({ k, t, ok: 0, ms: Date.now() - t, err: String(e?.message ?? e).slice(0, 160) }); }
      await sleep(every);
    }
  }
  const pgConfig = { host: process.env.DATABASE_HOST, port: 5432, user: process.env.DATABASE_USER, password: process.env.DATABASE_PASSWORD, database: process.env.DATABASE_NAME, ssl: { ca: readFileSync(process.env.DATABASE_SSLROOTCERT, 'utf8') }, connectionTimeoutMillis: 5000, query_timeout: 5000 };
  const r = cache();
  r.on('error', () => {});
  await Promise.all([
    loop('web', 500, async () => {
      const res = await fetch(WEB + '/healthz', { signal: AbortSignal.timeout(5000) });
      if (res.status !== 200) throw new Error('status ' + res.status);
    }),
    loop('upload', 1000, async () => {
      const res = await fetch(WEB + '/photos', { method: 'POST', headers: { 'content-type': 'application/json', cookie }, body: JSON.stringify({ caption: 'cp', png }), signal: AbortSignal.timeout(10000) });
      if (res.status !== 201) throw new Error('status ' + res.status + ' ' + (await res.text()).slice(0, 120));
      return { photoId: (await res.json()).photoId };
    }),
    loop('db', 500, async () => {
      const c = new pg.Client(pgConfig);
      c.on('error', () => {});
      try { await c.connect(); await c.query('INSERT INTO ${TABLE} (at) VALUES (now())'); }
      finally { await c.end().catch(() => {}); }
    }),
    loop('cache', 500, async () => {
      await r.set('e2e:cp', String(Date.now()), 'EX', 60);
      if (!(await r.get('e2e:cp'))) throw new Error('no value');
    }),
  ]);
  r.disconnect();
  emit({ k: 'done', t: Date.now(), ok: 1, ms: 0 });
`);

/** The control-plane node (a kind node container): looked up while the API server answers. */
async function controlPlaneNode(): Promise<string> {
  const nodes = await getJson<List<{ metadata: Meta }>>([
    'get',
    'nodes',
    '-l',
    'node-role.kubernetes.io/control-plane',
  ]);
  const node = nodes.items[0]?.metadata.name;
  if (!node) throw new Error('no control-plane node');
  return node;
}

/** By /proc (the node image carries no procps). */
const signalOn = (node: string, signal: 'STOP' | 'CONT') =>
  run('docker', [
    'exec',
    node,
    'sh',
    '-c',
    `n=0; for p in /proc/[0-9]*; do if [ "$(cat "$p/comm" 2>/dev/null)" = kube-apiserver ]; then kill -${signal} "\${p#/proc/}" && n=$((n+1)); fi; done; [ "$n" -gt 0 ]`,
  ]);

/** Each workload's pod template, as JSON: a rollout changes it (scaling does not). */
const templates = async (): Promise<Record<string, string>> => {
  const list = await getJson<List<{ kind: string; metadata: Meta; spec: { template: unknown } }>>([
    'get',
    'deployments,statefulsets',
    '-n',
    NS,
    '-l',
    `scalable.dev/app=${APP}`,
  ]);
  return Object.fromEntries(
    list.items.map((o) => [`${o.kind}/${o.metadata.name}`, JSON.stringify(o.spec.template)]),
  );
};

const restarts = (pods: readonly Pod[]): number =>
  pods
    .flatMap((p) => p.status.containerStatuses ?? [])
    .reduce((n, c) => n + (c.restartCount ?? 0), 0);

describe('the API server unreachable on kind', () => {
  it(`control plane: kube-apiserver stopped ${OUTAGE_S} s -> web, uploads, Postgres and the cache keep serving; the queue catches up after; the operator leads again with no rollout`, async () => {
    await sql(
      PRIMARY,
      `CREATE TABLE IF NOT EXISTS ${TABLE} (id bigserial PRIMARY KEY, at timestamptz)`,
    );
    const before = await templates();
    const opBefore = await operatorPods();
    const leaderBefore = await leader();
    await cloneWebPod(NS, APP, PROBE, { 'scalable.dev/app': APP }, { script: probeScript });
    // The loops running: an answered attempt of each path in the probe's log.
    const log = async (): Promise<Attempt[]> =>
      (await kubectl(['logs', PROBE, '-n', NS]))
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Attempt);
    await eventually(
      'every probe path answered once',
      async () => {
        const ok = new Set((await log()).filter((a) => a.ok).map((a) => a.k));
        return ['web', 'upload', 'db', 'cache'].every((k) => ok.has(k)) ? true : undefined;
      },
      120_000,
      1000,
    );

    const node = await controlPlaneNode();
    let stoppedAt = 0;
    let continuedAt = 0;
    try {
      await signalOn(node, 'STOP');
      stoppedAt = Date.now();
      // The fault is a duration: the outage lasts OUTAGE_S whatever happens meanwhile.
      await new Promise((r) => setTimeout(r, OUTAGE_S * 1000));
    } finally {
      await signalOn(node, 'CONT');
      continuedAt = Date.now();
    }
    await eventually(
      'the API server answering',
      async () => ((await kubectl(['get', '--raw', '/readyz'])).trim() === 'ok' ? true : undefined),
      180_000,
      1000,
    );
    record({
      name: 'control plane: API server answering again',
      value: seconds(Date.now() - continuedAt),
    });
    // Leading again: the Lease renewed after the API server came back (a holder that has
    // not renewed since may be gone).
    const newLeader = await eventually(
      'the operator Lease renewed after the outage',
      async () => {
        const leases = await getJson<
          List<{ spec: { holderIdentity?: string; renewTime?: string } }>
        >(['get', 'leases', '-n', OPERATOR_NAMESPACE]);
        const renewed = leases.items.find((l) => Date.parse(l.spec.renewTime ?? '') > continuedAt);
        return renewed ? ((await leader()) ?? renewed.spec.holderIdentity) : undefined;
      },
      300_000,
      1000,
    );
    record({
      name: 'control plane: operator leading again after the API returned',
      value: seconds(Date.now() - continuedAt),
      note: `${leaderBefore} -> ${newLeader}`,
    });

    // The probe's record of the outage.
    await eventually(
      'the probe done',
      async () => ((await log()).some((a) => a.k === 'done') ? true : undefined),
      (PROBE_S + 120) * 1000,
      2000,
    );
    const attempts = await log();
    const inside = attempts.filter((a) => a.t >= stoppedAt && a.t + a.ms <= continuedAt);
    const summary: Record<
      string,
      { tried: number; failed: number; longestMs: number; errors: string[] }
    > = {};
    for (const k of ['web', 'upload', 'db', 'cache']) {
      const mine = inside.filter((a) => a.k === k);
      const failed = mine.filter((a) => !a.ok);
      summary[k] = {
        tried: mine.length,
        failed: failed.length,
        longestMs: Math.max(0, ...mine.map((a) => a.ms)),
        errors: [...new Set(failed.map((a) => a.err ?? ''))].slice(0, 3),
      };
      record({
        name: `control plane: ${k} attempts failed during the ${OUTAGE_S} s outage`,
        value: failed.length,
        unit: 'of',
        note: `${mine.length} tried, longest ${summary[k].longestMs} ms`,
      });
    }
    console.log(`[e2e] control plane outage: ${JSON.stringify(summary)}`);
    // After it, measured (not asserted: the controller manager may mark nodes and their pods
    // NotReady for a moment once it can write again, which is Kubernetes' doing).
    const after = attempts.filter((a) => a.t > continuedAt && a.k !== 'done' && a.k !== 'user');
    const failedAfter = after.filter((a) => !a.ok);
    record({
      name: 'control plane: attempts failed after the API server returned',
      value: failedAfter.length,
      unit: 'of',
      note: `${after.length} tried; ${[...new Set(failedAfter.map((a) => `${a.k}: ${a.err ?? ''}`))].slice(0, 4).join(' | ')}`,
    });
    for (const [k, s] of Object.entries(summary)) {
      expect(s.tried, `${k}: attempts inside the outage`).toBeGreaterThanOrEqual(10);
      expect(s.failed, `${k}: failed inside the outage: ${s.errors.join(' | ')}`).toBe(0);
    }

    // The queue: every photo uploaded while the API server was away gets its thumbnail.
    const userId = attempts.find((a) => a.k === 'user')?.userId ?? '';
    const photos = attempts
      .filter((a) => a.k === 'upload' && a.ok && a.photoId)
      .map((a) => a.photoId);
    expect(photos.length).toBeGreaterThan(0);
    await eventually(
      `thumbnails of the ${photos.length} photos uploaded`,
      async () => {
        const [row] = (await sql(
          PRIMARY,
          `SELECT count(*) FILTER (WHERE thumbnail IS NULL)::int AS missing, count(*)::int AS n
             FROM photos WHERE user_id = '${userId}' AND photo_id = ANY('{${photos.join(',')}}'::text[])`,
        )) as { missing: number; n: number }[];
        if (row?.n !== photos.length)
          throw new Error(`${row?.n} of ${photos.length} photos on the primary`);
        return row.missing === 0 ? true : undefined;
      },
      300_000,
      2000,
    );
    record({
      name: 'control plane: every upload thumbnailed after the API returned',
      value: seconds(Date.now() - continuedAt),
    });

    await waitAppReady(NS, APP);
    // Not generations: KEDA scaling the worker changes its replicas, and so its generation.
    expect(await templates(), 'no workload rolled by the outage').toEqual(before);
    const opAfter = await operatorPods();
    record({
      name: 'control plane: operator container restarts across the outage',
      value: restarts(opAfter) - restarts(opBefore),
      unit: 'restarts',
    });
    await kubectl(['delete', 'pod', PROBE, '-n', NS, '--wait=false']);
  });
});
