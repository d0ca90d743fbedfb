// The pooler on kind (issue 31): database.pooler turned on for the shared sample app. The
// operator starts PgBouncer and only then points the app pods at it (the shard map the SDK
// reads, DATABASE_HOST); the sample app's own traffic (signups through the web Service) then
// reaches Postgres through PgBouncer: every backend of the app role comes from a pooler pod.
// The next file's reset turns the pooler off again (support/app.ts).
import { describe, expect, it } from 'vitest';
import { seconds, useSharedApp } from './support/app.ts';
import {
  apply,
  eventually,
  getJson,
  nodeScript,
  pods,
  podReady,
  waitAppReady,
  type Condition,
} from './support/kube.ts';
import { postgresFrom } from './support/postgres.ts';
import { record } from './support/results.ts';

const app = useSharedApp();
const { namespace: NS, name: APP, client: CLIENT } = app;
const { sql } = postgresFrom(NS, CLIENT);
const DIRECT = `${APP}-db-0.${NS}.svc`;
const POOLED = `${APP}-db-0-rw-pooler.${NS}.svc`;
const SIGNUPS = 20;

/** The primaries the live shard map names. */
async function mapPrimaries(): Promise<string[]> {
  const cm = await getJson<{ data?: Record<string, string> }>([
    'get',
    'configmap',
    `${APP}-shard-map`,
    '-n',
    NS,
  ]);
  const map = JSON.parse(cm.data?.['shard-map.json'] ?? '{}') as { shards?: { primary: string }[] };
  return (map.shards ?? []).map((s) => s.primary);
}

/** DATABASE_HOST of the web Deployment's container. */
async function webDatabaseHost(): Promise<string | undefined> {
  const d = await getJson<{
    spec: { template: { spec: { containers: { env?: { name: string; value?: string }[] }[] } } };
  }>(['get', 'deployment', `${APP}-web`, '-n', NS]);
  return d.spec.template.spec.containers[0]?.env?.find((e) => e.name === 'DATABASE_HOST')?.value;
}

describe('the pooler on kind', () => {
  it('pooler: turned on, app pods are pointed at PgBouncer once it serves, and the sample app’s queries reach Postgres through it', async () => {
    expect(await mapPrimaries()).toEqual([DIRECT]);
    const start = Date.now();
    await apply(app.spec({ database: { pooler: { replicas: 1, defaultPoolSize: 5 } } }));
    // Nothing points at the pooler before a PgBouncer pod is ready: checked at every sample
    // until the map names it.
    const early: string[] = [];
    await eventually(
      'the shard map naming the pooler',
      async () => {
        const host = await webDatabaseHost();
        const primary = (await mapPrimaries())[0];
        if (host === POOLED || primary === POOLED) {
          const bouncers = await pods(NS, `scalable.dev/app=${APP},scalable.dev/tier=pooler`);
          if (!bouncers.some(podReady))
            early.push(`DATABASE_HOST ${host}, map ${primary}: no ready PgBouncer pod`);
        }
        return primary === POOLED ? true : undefined;
      },
      600_000,
      1000,
    );
    expect(early).toEqual([]);
    record({ name: 'case: pooler on -> shard map names it', value: seconds(Date.now() - start) });
    await waitAppReady(NS, APP);
    const sapp = await getJson<{ status?: { conditions?: Condition[] } }>([
      'get',
      'scalableapp',
      APP,
      '-n',
      NS,
    ]);
    expect(sapp.status?.conditions?.find((c) => c.type === 'PoolerReady')?.status).toBe('True');
    expect(await webDatabaseHost()).toBe(POOLED);
    record({ name: 'case: pooler on -> app Ready again', value: seconds(Date.now() - start) });

    // The sample app's traffic: signups through the web Service, each a write on shard 0. A
    // refused one is tried again for up to a minute (the web pods rolled onto the pooler just
    // now) and counted.
    const out = await nodeScript(
      NS,
      CLIENT,
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
    const bouncerIps = new Set(
      (await pods(NS, `scalable.dev/app=${APP},scalable.dev/tier=pooler`)).map(
        (p) => p.status.podIP,
      ),
    );
    // Every backend of the app role but this query's own comes from a PgBouncer pod (the web
    // pods' direct connections of before went with their rollout).
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
    expect(backends, 'server connections within the pool size').toBeLessThanOrEqual(5);
    record({
      name: 'case: pooler app-role backends on the primary',
      value: backends,
      unit: 'connections',
      note: `from ${from.map((r) => r.ip).join(', ')}; ${bouncerIps.size} PgBouncer pod; ${retries} signups retried`,
    });
  });
});
