// The pooler on kind (issue 31): the sample app made with database.pooler on. The operator
// starts PgBouncer and points the app pods at it (the shard map the SDK reads, DATABASE_HOST)
// only once a PgBouncer pod is ready: watched from the apply on, at every sample. Then the
// sample app's own traffic (signups through the web Service) reaches Postgres through
// PgBouncer: every backend of the app role comes from a pooler pod, within its pool size.
import { describe, expect, it } from 'vitest';
import { seconds, useSampleApp } from './support/app.ts';
import { appCondition, getJson, nodeScript, pods, podReady, eventually } from './support/kube.ts';
import { postgresFrom } from './support/postgres.ts';
import { record } from './support/results.ts';

const NS = 'e2e-pooler';
const APP = 'shop';
const POOL = 5;
const DIRECT = `${APP}-db-0.${NS}.svc`;
const POOLED = `${APP}-db-0-rw-pooler.${NS}.svc`;
const POOLER_PODS = `scalable.dev/app=${APP},scalable.dev/tier=pooler`;
const SIGNUPS = 20;

/** What pointed at the pooler while no PgBouncer pod was ready (must stay empty). */
const early: string[] = [];
let wiredAfter = -1;

/** The primaries the live shard map names (none before it exists). */
async function mapPrimaries(): Promise<string[]> {
  const cm = await getJson<{ data?: Record<string, string> }>([
    'get',
    'configmap',
    `${APP}-shard-map`,
    '-n',
    NS,
  ]).catch(() => undefined);
  const map = JSON.parse(cm?.data?.['shard-map.json'] ?? '{}') as {
    shards?: { primary: string }[];
  };
  return (map.shards ?? []).map((s) => s.primary);
}

/** DATABASE_HOST of the web Deployment's container (none before it exists). */
async function webDatabaseHost(): Promise<string | undefined> {
  const d = await getJson<{
    spec: { template: { spec: { containers: { env?: { name: string; value?: string }[] }[] } } };
  }>(['get', 'deployment', `${APP}-web`, '-n', NS]).catch(() => undefined);
  return d?.spec.template.spec.containers[0]?.env?.find((e) => e.name === 'DATABASE_HOST')?.value;
}

/** From the apply until the map names the pooler: nothing points at it before it serves. */
async function watchWiring(): Promise<void> {
  const start = Date.now();
  await eventually(
    'the shard map naming the pooler',
    async () => {
      const host = await webDatabaseHost();
      const primary = (await mapPrimaries())[0];
      if (host === POOLED || primary === POOLED) {
        const bouncers = await pods(NS, POOLER_PODS);
        if (!bouncers.some(podReady))
          early.push(`DATABASE_HOST ${host}, map ${primary}: no ready PgBouncer pod`);
      }
      return primary === POOLED ? true : undefined;
    },
    900_000,
    1000,
  );
  wiredAfter = seconds(Date.now() - start);
}

const app = useSampleApp({
  namespace: NS,
  tiers: {
    database: {
      shards: 1,
      replicasPerShard: 0,
      pooler: { replicas: 1, defaultPoolSize: POOL },
    },
  },
  whileCreating: watchWiring,
});
const { sql } = postgresFrom(NS, app.client);

describe('the pooler on kind', () => {
  it('pooler: the app pods pointed at PgBouncer only once a pod of it was ready; then the map and DATABASE_HOST name it and PoolerReady is True', async () => {
    expect(early).toEqual([]);
    expect(await mapPrimaries()).toEqual([POOLED]);
    expect(await webDatabaseHost()).toBe(POOLED);
    expect((await appCondition(NS, APP, 'PoolerReady'))?.status).toBe('True');
    record({ name: 'case: pooler -> shard map names it (from the apply)', value: wiredAfter });
  });

  it('pooler: the sample app’s queries reach Postgres from PgBouncer pods only, within the pool size', async () => {
    // Signups through the web Service, each a write on the shard. One refused is tried again
    // for up to a minute (the web pods rolled onto the pooler moments ago) and counted.
    const out = await nodeScript(
      NS,
      app.client,
      `const ids = [];
       let retries = 0;
       for (let i = 0; i < ${SIGNUPS}; i++) {
         const until = Date.now() + 60000;
         for (;;) {
           const r = await fetch('http://${APP}-web.${NS}.svc/signup', {
             method: 'POST',
             headers: { 'content-type': 'application/json' },
             body: JSON.stringify({ name: 'pooled-' + i, password: 'pw-' + i }),
           }).catch((e) => ({ status: 0, text: async () => String(e) }));
           if (r.status === 201) { ids.push((await r.json()).userId); break; }
           if (Date.now() > until) throw new Error('signup ' + i + ': ' + r.status + ' ' + (await r.text()));
           retries++;
           await new Promise((res) => setTimeout(res, 1000));
         }
       }
       console.log(JSON.stringify({ ids, retries }));`,
    );
    const { ids, retries } = JSON.parse(out) as { ids: string[]; retries: number };
    expect(ids).toHaveLength(SIGNUPS);
    const bouncerIps = new Set((await pods(NS, POOLER_PODS)).map((p) => p.status.podIP));
    // Every backend of the app role but this query's own comes from a PgBouncer pod (the web
    // pods' connections from before the wiring went with their rollout).
    const from = await eventually(
      'every app-role backend from a PgBouncer pod',
      async () => {
        const rows = (await sql(
          DIRECT,
          `SELECT host(client_addr) AS ip, count(*)::int AS n FROM pg_stat_activity
             WHERE usename = current_user AND pid <> pg_backend_pid() GROUP BY 1`,
        )) as { ip: string; n: number }[];
        return rows.length > 0 && rows.every((r) => bouncerIps.has(r.ip)) ? rows : undefined;
      },
      180_000,
      2000,
    );
    const [held] = (await sql(
      DIRECT,
      `SELECT count(*)::int AS n FROM users WHERE user_id = ANY('{${ids.join(',')}}'::text[])`,
    )) as { n: number }[];
    expect(held?.n, 'the signups on the primary').toBe(SIGNUPS);
    const backends = from.reduce((n, r) => n + r.n, 0);
    expect(backends, 'server connections within the pool size').toBeLessThanOrEqual(POOL);
    record({
      name: 'case: pooler app-role backends on the primary',
      value: backends,
      unit: 'connections',
      note: `from ${from.map((r) => r.ip).join(', ')}; ${bouncerIps.size} PgBouncer pod; ${retries} signups retried`,
    });
  });
});
