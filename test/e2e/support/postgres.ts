// An app's Postgres as its pods reach it: primaries by Patroni's role label, SQL and a
// retrying writer run with node-postgres inside a pod that has the web pods' env (TLS as the
// web pods get it: DATABASE_SSLMODE=verify-full, the CA at DATABASE_SSLROOTCERT; node-postgres
// verifies the certificate against the host name it dials).
import { nodeScript, pods, type Pod } from './kube.ts';

/** The pods Patroni labels primary in a shard (not being deleted): one, when all is well. */
export async function primaryOf(namespace: string, app: string, shard: number): Promise<Pod[]> {
  return (
    await pods(namespace, `scalable.dev/cluster=${app}-db-${shard},scalable.dev/role=master`)
  ).filter((p) => !p.metadata.deletionTimestamp);
}

const pgConfig = (host: string) =>
  `{ host: ${JSON.stringify(host)}, port: 5432, user: process.env.DATABASE_USER,
     password: process.env.DATABASE_PASSWORD, database: process.env.DATABASE_NAME,
     ssl: process.env.DATABASE_SSLROOTCERT
       ? { ca: process.getBuiltinModule('node:fs').readFileSync(process.env.DATABASE_SSLROOTCERT, 'utf8') }
       : undefined,
     connectionTimeoutMillis: 3000, query_timeout: 5000 }`;

export interface WriterResult {
  acked: number;
  /** The longest time between two acknowledgements (epoch ms: nodes share the host's clock). */
  gap: { ms: number; from: number; to: number };
  failures: number;
}

export interface Postgres {
  /** One query (or several statements: the last one's rows) through `host`, from `pod`. */
  sql(host: string, query: string, pod?: string): Promise<unknown[]>;
  /**
   * `count` single-row inserts into `table` through `host`, from `pod`, each retried on a
   * fresh connection until acknowledged (ON CONFLICT: a commit whose acknowledgement was lost
   * is not an error on retry).
   */
  writeRows(host: string, table: string, count: number, pod?: string): Promise<WriterResult>;
}

/** SQL from pods of `namespace`; `defaultPod` unless a call names another. */
export function postgresFrom(namespace: string, defaultPod: string): Postgres {
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
    writeRows: async (host, table, count, pod = defaultPod) =>
      JSON.parse(
        await nodeScript(
          namespace,
          pod,
          `import pg from 'pg';
           const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
           let client, last = Date.now(), gap = { ms: 0, from: 0, to: 0 }, failures = 0, acked = 0;
           for (let i = 1; i <= ${count}; ) {
             try {
               if (!client) { client = new pg.Client(${pgConfig(host)}); client.on('error', () => {}); await client.connect(); }
               await client.query('INSERT INTO ${table} (id) VALUES ($1) ON CONFLICT (id) DO NOTHING', [i]);
               const now = Date.now();
               if (now - last > gap.ms) gap = { ms: now - last, from: last, to: now };
               last = now; acked++; i++;
               await sleep(20);
             } catch {
               failures++;
               try { await client?.end(); } catch {}
               client = undefined;
               await sleep(250);
             }
           }
           await client?.end();
           console.log(JSON.stringify({ acked, gap, failures }));`,
        ),
      ) as WriterResult,
  };
}
