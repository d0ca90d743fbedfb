// The data-version check the database pods run before Postgres (an init container), run
// here with the real script against a real data directory made by this host's initdb.
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelOf } from '../../operator/tiers/shared/test-helpers.ts';
import { databaseReport } from '../../operator/tiers/database/status.ts';
import {
  DATA_VERSION_CHECK,
  dataVersionScript,
} from '../../operator/tiers/database/statefulset.ts';

const MAJOR = readdirSync('/usr/lib/postgresql').sort().at(-1) ?? '';
const PG_BIN = `/usr/lib/postgresql/${MAJOR}/bin`;
const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());

describe('data-version check before Postgres starts', () => {
  let dir: string;
  let pgdata: string;
  const check = () =>
    spawnSync('sh', ['-c', dataVersionScript()], {
      env: { PATH: '/usr/bin:/bin', PGDATA: pgdata, PG_BIN },
      encoding: 'utf8',
      uid,
      gid,
    });

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pg-version-'));
    chownSync(dir, uid, gid);
    pgdata = join(dir, 'pgdata');
    execFileSync(join(PG_BIN, 'initdb'), ['-D', pgdata, '-A', 'trust', '-U', 'postgres'], {
      uid,
      gid,
      stdio: 'ignore',
    });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('passes a fresh volume and a data directory of the image major', () => {
    expect(
      spawnSync('sh', ['-c', dataVersionScript()], {
        env: { PATH: '/usr/bin:/bin', PGDATA: join(dir, 'empty'), PG_BIN },
      }).status,
    ).toBe(0);
    const r = check();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('refuses a data directory of another major with one clear line, which the status reports', () => {
    const other = String(Number(MAJOR) - 1);
    writeFileSync(join(pgdata, 'PG_VERSION'), `${other}\n`);
    const r = check();
    expect(r.status).toBe(1);
    const message = r.stderr.trim();
    expect(message).toBe(
      `MajorVersionMismatch: the data directory was initialised by PostgreSQL ${other}, this image runs PostgreSQL ${MAJOR}; Postgres was not started and the data is untouched. Run the image of PostgreSQL ${other} (database.version), or upgrade the data with pg_upgrade first.`,
    );
    // The kubelet puts the failed container's last log line in its termination message
    // (FallbackToLogsOnError); a pod crash-looping on it:
    const app = modelOf({ database: {} });
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'shop-db-0-0',
        labels: { 'scalable.dev/database': 'shop', 'scalable.dev/cluster': 'shop-db-0' },
      },
      status: {
        conditions: [{ type: 'Ready', status: 'False' }],
        initContainerStatuses: [
          {
            name: DATA_VERSION_CHECK,
            lastState: { terminated: { exitCode: 1, message: r.stderr } },
          },
        ],
      },
    };
    expect(databaseReport(app, { objects: [], pods: [pod], missingApis: [] }).condition).toEqual({
      type: 'DatabaseReady',
      status: 'False',
      reason: 'MajorVersionMismatch',
      message: `shop-db-0-0: ${message}`,
    });
  });
});
