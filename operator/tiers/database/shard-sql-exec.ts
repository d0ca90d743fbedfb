// ShardSql (resharding-run.ts) for the operator: SQL run inside a shard's primary pod, over
// the pod's Unix socket as the superuser, through pods/exec. The superuser has no TCP line in
// pg_hba (patroni-config.ts) and the operator never reads the tier's passwords: the pod's
// own env holds them, and the helper (Patroni's python3 and psycopg2, already in the image)
// reads them there. One exec per call; the request goes as an argument, the answer comes back
// as one JSON line on stdout.
import type { PodExec } from '../../ports/pod-exec.ts';
import type { SchemaCopyRequest, ShardSql, SqlResult } from './resharding-run.ts';
import { ENV, SOCKET_DIR } from './patroni-config.ts';
import { POSTGRES_PORT, REPLICATION_USER, SUPERUSER } from './names.ts';

/** The container of a database pod that runs Postgres (statefulset.ts). */
export const POSTGRES_CONTAINER = 'postgres';

/**
 * Stands for the replication role's password in a statement: the helper puts the pod's own
 * value in its place (a subscription's connection string), so it never leaves the pod.
 */
export const REPLICATION_PASSWORD = '@@SCALABLE_REPLICATION_PASSWORD@@';

/**
 * Runs the request's statements in order on one autocommit session (a script brings its own
 * BEGIN/COMMIT; a failure ends the process, and with it any open transaction). Values JSON
 * cannot hold (numeric, pg_lsn, timestamps) come back as text. Placeholders are only replaced
 * by values made of base64url characters (generated passwords): nothing needs quoting.
 */
export const SQL_HELPER = `
import json, os, re, sys
import psycopg2
req = json.loads(sys.argv[1])
def sub(text):
    for mark, env in req.get('env', {}).items():
        if mark in text:
            val = os.environ.get(env, '')
            if not re.fullmatch(r'[A-Za-z0-9_=+/.-]+', val):
                raise ValueError('%s is empty or holds characters a connection string would need quoted' % env)
            text = text.replace(mark, val)
    return text
def plain(v):
    return v if v is None or isinstance(v, (bool, int, float, str)) else str(v)
out = {'results': []}
try:
    conn = psycopg2.connect(host=req['host'], port=req['port'], dbname=req['database'],
                            user=req['user'], password=os.environ.get(req['passwordEnv'], ''),
                            application_name='scalable-operator', connect_timeout=10)
    conn.autocommit = True
    cur = conn.cursor()
    for text in req['statements']:
        cur.execute(sub(text))
        rows = []
        if cur.description:
            cols = [d.name for d in cur.description]
            rows = [dict(zip(cols, [plain(v) for v in r])) for r in cur.fetchall()]
        out['results'].append({'rows': rows, 'rowCount': cur.rowcount})
except psycopg2.Error as e:
    out['error'] = {'message': (e.pgerror or str(e)).strip(), 'code': e.pgcode}
except Exception as e:
    out['error'] = {'message': str(e)}
print(json.dumps(out))
`;

export interface SqlRequest {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly passwordEnv: string;
  readonly statements: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

/** The helper's request for statements in the app database, as the superuser. */
export const sqlRequest = (
  database: string,
  statements: readonly string[],
  port: number = POSTGRES_PORT,
): SqlRequest => ({
  host: SOCKET_DIR,
  port,
  database,
  user: SUPERUSER,
  passwordEnv: ENV.superuserPassword,
  statements,
  env: { [REPLICATION_PASSWORD]: ENV.replicationPassword },
});

/** A failed statement: Postgres's message and SQLSTATE. */
export class ShardSqlError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'ShardSqlError';
  }
}

/** The helper's answer (its last stdout line), or the error it reported. */
export function parseSqlAnswer(
  stdout: string,
  stderr: string,
  exitCode: number,
): SqlResult<Record<string, unknown>>[] {
  const line = stdout.trim().split('\n').pop() ?? '';
  let answer: {
    results?: SqlResult<Record<string, unknown>>[];
    error?: { message: string; code?: string };
  };
  try {
    answer = JSON.parse(line) as typeof answer;
  } catch {
    throw new ShardSqlError(
      `the SQL helper gave no answer (exit ${exitCode}): ${(stderr || stdout).trim().slice(0, 500)}`,
    );
  }
  if (answer.error) throw new ShardSqlError(answer.error.message, answer.error.code ?? undefined);
  return answer.results ?? [];
}

export interface PodRef {
  readonly namespace: string;
  readonly pod: string;
}

/**
 * ShardSql on the pod `target()` names (undefined: no primary known, every call fails);
 * `port` names the socket (.s.PGSQL.<port>): Postgres's port in the pod.
 */
export function execShardSql(
  exec: PodExec,
  target: () => Promise<PodRef | undefined>,
  database: string,
  port: number = POSTGRES_PORT,
): ShardSql {
  const run = async (statements: readonly string[]) => {
    const ref = await target();
    if (!ref) throw new ShardSqlError('no primary pod is known for this shard');
    const r = await exec({
      ...ref,
      container: POSTGRES_CONTAINER,
      command: [
        'python3',
        '-c',
        SQL_HELPER,
        JSON.stringify(sqlRequest(database, statements, port)),
      ],
    });
    return parseSqlAnswer(r.stdout, r.stderr, r.exitCode);
  };
  return {
    async query<R extends object = Record<string, unknown>>(
      text: string,
      params?: readonly unknown[],
    ): Promise<SqlResult<R>> {
      if (params && params.length > 0)
        throw new Error(
          'execShardSql: bind parameters are not supported (statements are built as text)',
        );
      const [result] = await run([text]);
      return (result ?? { rows: [], rowCount: null }) as SqlResult<R>;
    },
    async script(statements) {
      return run(statements);
    },
  };
}

/** What the target's subscription and schema copy connect to: the source's primary Service. */
export interface SourceEndpoint {
  /** `<app>-db-<i>.<ns>.svc`: on the shard's certificate. */
  readonly host: string;
  /** Default POSTGRES_PORT. */
  readonly port?: number;
  /** The socket port of the target's own Postgres, for the restore (default POSTGRES_PORT). */
  readonly localPort?: number;
  readonly database: string;
  /** The CA file in the target pod; undefined when the tier runs without TLS. */
  readonly caFile?: string;
}

/** The subscription's connection string; the password stays a placeholder (SQL_HELPER). */
export const sourceConninfo = (src: SourceEndpoint): string =>
  [
    `host=${src.host}`,
    `port=${src.port ?? POSTGRES_PORT}`,
    `dbname=${src.database}`,
    `user=${REPLICATION_USER}`,
    `password=${REPLICATION_PASSWORD}`,
    ...(src.caFile ? ['sslmode=verify-full', `sslrootcert=${src.caFile}`] : []),
    'application_name=scalable-reshard',
  ].join(' ');

/**
 * The schema copy, run in the target's primary pod: pg_dump of the source's app database as
 * the replication role (the move's copy grant, pg_read_all_data, lets it read the catalog and
 * lock the tables), between the request's before/after statements, restored over the socket
 * as the superuser in one transaction (a target holds all of it or nothing).
 */
export function schemaCopyCommand(src: SourceEndpoint, request: SchemaCopyRequest): string[] {
  const terminated = (sql: readonly string[]) => sql.map((s) => `${s};\n`).join('');
  const tls = src.caFile ? `PGSSLMODE=verify-full PGSSLROOTCERT=${src.caFile} ` : '';
  const script = [
    'set -euo pipefail',
    'f=$(mktemp /tmp/scalable-schema.XXXXXX)',
    'trap \'rm -f "$f"\' EXIT',
    'before=$1 host=$2 after=$3 db=$4; shift 4',
    'printf %s "$before" > "$f"',
    `${tls}PGPASSWORD="$${ENV.replicationPassword}" pg_dump -h "$host" -p ${src.port ?? POSTGRES_PORT} -U ${REPLICATION_USER} "$@" >> "$f"`,
    'printf %s "$after" >> "$f"',
    `PGPASSWORD="$${ENV.superuserPassword}" psql -X -q --single-transaction -v ON_ERROR_STOP=1 -h ${SOCKET_DIR} -p ${src.localPort ?? POSTGRES_PORT} -U ${SUPERUSER} -d "$db" -f "$f"`,
  ].join('\n');
  return [
    'bash',
    '-c',
    script,
    'schema-copy',
    terminated(request.before),
    src.host,
    terminated(request.after),
    src.database,
    ...request.dumpArgs,
  ];
}
