// An app's Postgres as its pods reach it: primaries by Patroni's role label, SQL and a
// writer that runs through a fault, run with node-postgres inside a pod that has the web pods' env (TLS as the
// web pods get it: DATABASE_SSLMODE=verify-full, the CA at DATABASE_SSLROOTCERT; node-postgres
// verifies the certificate against the host name it dials).
import { apply, kubectl, nodeScript, pods, type Pod } from './kube.ts';

/** The pods Patroni labels primary in a shard (not being deleted): one, when all is well. */
export async function primaryOf(namespace: string, app: string, shard: number): Promise<Pod[]> {
  return (
    await pods(namespace, `scalable.dev/cluster=${app}-db-${shard},scalable.dev/role=master`)
  ).filter((p) => !p.metadata.deletionTimestamp);
}

/** What a writer saw: the ids the database acknowledged, and how writing went. */
export interface WriterResult {
  /** Ids whose INSERT was acknowledged (committed), in order. */
  acked: number[];
  /** Attempts that failed (each id is tried once: a failed one may or may not be committed). */
  failures: number;
  /**
   * The longest time between two acknowledgements (epoch ms: nodes share the host's clock);
   * `fromSent`: when the write acknowledged at `from` was sent. A reply the server sent just
   * before a fault can reach the writer's event loop a few ms after the fault, so "the pause
   * began before the fault" is a claim about `fromSent`, not about `from`.
   */
  gap: { ms: number; from: number; to: number; fromSent: number };
  /** Epoch ms of the first failed attempt, 0 when none failed. */
  firstFailure: number;
  /**
   * Who acknowledged: per server address (the pod IP a connection reached, inet_server_addr),
   * the epoch ms of its first and last acknowledgement as the writer saw them, and how many.
   */
  servers: Record<string, { first: number; last: number; count: number }>;
}

/** Writes until stop(): one id after another, each tried once, through a fault. */
export interface Writer {
  stop(): Promise<WriterResult>;
}

/** Bounds of one writer attempt (node-postgres' connectionTimeoutMillis, query_timeout). */
export const WRITER_CONNECT_MS = 3000;
export const WRITER_QUERY_MS = 5000;
/** Pause after a failed attempt before the next (on a new connection). */
export const WRITER_RETRY_MS = 250;

const pgConfig = (host: string) =>
  `{ host: ${JSON.stringify(host)}, port: 5432, user: process.env.DATABASE_USER,
     password: process.env.DATABASE_PASSWORD, database: process.env.DATABASE_NAME,
     ssl: process.env.DATABASE_SSLROOTCERT
       ? { ca: process.getBuiltinModule('node:fs').readFileSync(process.env.DATABASE_SSLROOTCERT, 'utf8') }
       : undefined,
     connectionTimeoutMillis: ${WRITER_CONNECT_MS}, query_timeout: ${WRITER_QUERY_MS} }`;

export interface Postgres {
  /** One query (or several statements: the last one's rows) through `host`, from `pod`. */
  sql(host: string, query: string, pod?: string): Promise<unknown[]>;
  /**
   * Single-row inserts of ids 1, 2, 3... into `table` through `host`, from `pod`, until
   * stop(): each id tried once, on a fresh connection after a failure, and recorded only when
   * acknowledged. What the final primary holds is then checked against what was acknowledged.
   */
  startWriter(host: string, table: string, pod?: string): Promise<Writer>;
}

const STOP_FILE = '/tmp/e2e-writer-stop';

/** SQL from pods of `namespace`; `defaultPod` unless a call names another. */
/**
 * Asks Patroni for a switchover of a shard through its DCS (the `-failover` ConfigMap's
 * leader/member annotations), as the operator's rollouts and `scalable switchover` do.
 */
export async function requestSwitchover(
  namespace: string,
  app: string,
  shard: number,
  leader: string,
  member: string,
): Promise<void> {
  await apply({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: `${app}-db-${shard}-failover`,
      namespace,
      labels: { 'scalable.dev/database': app, 'scalable.dev/cluster': `${app}-db-${shard}` },
      annotations: { leader, member },
    },
  });
}

export function postgresFrom(namespace: string, defaultPod: string): Postgres {
  const inPod = (pod: string, js: string) =>
    kubectl(['exec', '-n', namespace, pod, '--', 'node', '-e', js]);
  return {
    sql: async (host, query, pod = defaultPod) =>
      JSON.parse(
        await nodeScript(
          namespace,
          pod,
          `import pg from 'pg';
           const c = new pg.Client(${pgConfig(host)});
           await c.connect();
           const r = await c.query(${JSON.stringify(query)});
           await c.end();
           // Several statements give one result each: the last one's rows.
           console.log(JSON.stringify((Array.isArray(r) ? r.at(-1) : r).rows));`,
        ),
      ) as unknown[],
    startWriter: async (host, table, pod = defaultPod) => {
      const stopFile = JSON.stringify(STOP_FILE);
      await inPod(pod, `require('node:fs').rmSync(${stopFile}, { force: true })`);
      const done = nodeScript(
        namespace,
        pod,
        `import pg from 'pg';
         import fs from 'node:fs';
         const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
         let client, last = Date.now(), lastSent = last, gap = { ms: 0, from: 0, to: 0, fromSent: 0 }, failures = 0, firstFailure = 0;
         const acked = [], servers = {};
         for (let i = 1; !fs.existsSync(${stopFile}); i++) {
           try {
             if (!client) { client = new pg.Client(${pgConfig(host)}); client.on('error', () => {}); await client.connect(); }
             const sent = Date.now();
             const r = await client.query('INSERT INTO ${table} (id) VALUES ($1) RETURNING host(inet_server_addr()) AS ip', [i]);
             const now = Date.now();
             if (now - last > gap.ms) gap = { ms: now - last, from: last, to: now, fromSent: lastSent };
             last = now; lastSent = sent; acked.push(i);
             const s = (servers[r.rows[0]?.ip ?? '?'] ??= { first: now, last: now, count: 0 });
             s.last = now; s.count++;
             await sleep(20);
           } catch {
             failures++;
             firstFailure ||= Date.now();
             try { await client?.end(); } catch {}
             client = undefined;
             await sleep(${WRITER_RETRY_MS});
           }
         }
         await client?.end();
         console.log(JSON.stringify({ acked, gap, failures, firstFailure, servers }));`,
      );
      done.catch(() => undefined);
      return {
        stop: async () => {
          await inPod(pod, `require('node:fs').writeFileSync(${stopFile}, '')`);
          return JSON.parse(await done) as WriterResult;
        },
      };
    },
  };
}
