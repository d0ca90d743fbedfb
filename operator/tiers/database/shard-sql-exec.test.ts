import { describe, expect, it } from 'vitest';
import type { ExecRequest } from '../../ports/pod-exec.ts';
import {
  REPLICATION_PASSWORD,
  ShardSqlError,
  execShardSql,
  parseSqlAnswer,
  schemaCopyCommand,
  sourceConninfo,
} from './shard-sql-exec.ts';

describe('SQL over exec (the operator in a shard primary pod)', () => {
  it("reads the helper's answer, and its error with the SQLSTATE", () => {
    const ok = JSON.stringify({ results: [{ rows: [{ n: 1 }], rowCount: 1 }] });
    expect(parseSqlAnswer(`noise\n${ok}\n`, '', 0)).toEqual([{ rows: [{ n: 1 }], rowCount: 1 }]);
    const failed = JSON.stringify({ error: { message: 'lock timeout', code: '55P03' } });
    expect(() => parseSqlAnswer(failed, '', 0)).toThrow(ShardSqlError);
    try {
      parseSqlAnswer(failed, '', 0);
    } catch (e) {
      expect((e as ShardSqlError).code).toBe('55P03');
    }
    expect(() => parseSqlAnswer('', 'python3: not found', 127)).toThrow(/exit 127.*python3/);
  });

  it('runs the statements in the pod named, as one request argument, and refuses bind parameters', async () => {
    const seen: ExecRequest[] = [];
    const sql = execShardSql(
      async (req) => {
        seen.push(req);
        return {
          stdout: JSON.stringify({ results: [{ rows: [], rowCount: 0 }] }),
          stderr: '',
          exitCode: 0,
        };
      },
      async () => ({ namespace: 'ns', pod: 'shop-db-1-0' }),
      'shop',
    );
    await sql.script(['BEGIN', 'SELECT 1', 'COMMIT']);
    expect(seen[0]).toMatchObject({ namespace: 'ns', pod: 'shop-db-1-0', container: 'postgres' });
    const request = JSON.parse(seen[0]!.command[3]!) as Record<string, unknown>;
    expect(request).toMatchObject({
      host: '/var/run/postgresql',
      port: 5432,
      database: 'shop',
      user: 'postgres',
      passwordEnv: 'PATRONI_SUPERUSER_PASSWORD',
      statements: ['BEGIN', 'SELECT 1', 'COMMIT'],
    });
    await expect(sql.query('SELECT $1', [1])).rejects.toThrow(/bind parameters/);
    const nowhere = execShardSql(
      async () => ({ stdout: '', stderr: '', exitCode: 0 }),
      async () => undefined,
      'shop',
    );
    await expect(nowhere.query('SELECT 1')).rejects.toThrow(/no primary pod/);
  });

  it("names the source's primary Service, verifies it with the CA, and keeps the password a placeholder", () => {
    const info = sourceConninfo({
      host: 'shop-db-0.ns.svc',
      database: 'shop',
      caFile: '/etc/scalable/ca/ca.crt',
    });
    expect(info).toContain('host=shop-db-0.ns.svc port=5432 dbname=shop user=replicator');
    expect(info).toContain(`password=${REPLICATION_PASSWORD}`);
    expect(info).toContain('sslmode=verify-full sslrootcert=/etc/scalable/ca/ca.crt');
    expect(sourceConninfo({ host: 'h', database: 'd' })).not.toContain('sslmode');
  });

  it('restores the dump between the before and after statements, as arguments, never in the script', () => {
    const cmd = schemaCopyCommand(
      { host: 'shop-db-0.ns.svc', database: 'shop', caFile: '/ca.crt' },
      {
        source: 0,
        target: 1,
        dumpArgs: ['--schema-only', '--dbname', 'shop'],
        before: ['DROP X'],
        after: ['DO Y'],
      },
    );
    expect(cmd.slice(0, 2)).toEqual(['bash', '-c']);
    expect(cmd.slice(3)).toEqual([
      'schema-copy',
      'DROP X;\n',
      'shop-db-0.ns.svc',
      'DO Y;\n',
      'shop',
      '--schema-only',
      '--dbname',
      'shop',
    ]);
    expect(cmd[2]).toContain('PGSSLMODE=verify-full PGSSLROOTCERT=/ca.crt');
    expect(cmd[2]).toContain('--single-transaction');
    expect(cmd[2]).not.toContain('shop-db-0');
  });
});
