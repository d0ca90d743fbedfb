// The data-version check the database pods run before Postgres (an init container), run
// here as one (the postgres-patroni image, the data mounted read-only) with the real script
// against a real data directory made by the image's initdb.
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelOf } from '../../operator/tiers/shared/test-helpers.ts';
import { databaseReport } from '../../operator/tiers/database/status.ts';
import {
  DATA_VERSION_CHECK,
  dataVersionScript,
} from '../../operator/tiers/database/statefulset.ts';
import { binDir } from '../../operator/tiers/database/patroni-config.ts';
import { ENGINE_IMAGES, ENGINE_UID, PG_MAJOR as MAJOR, runOnce } from './containers.ts';

describe('data-version check before Postgres starts', () => {
  let dir: string;
  let pgdata: string;
  /** The init container as rendered: the script, PGDATA and PG_BIN, the data read-only. */
  const check = (data = pgdata) =>
    runOnce({
      image: ENGINE_IMAGES.postgres,
      name: 'pg-version-check',
      entrypoint: 'sh',
      args: ['-c', dataVersionScript()],
      env: { PGDATA: data, PG_BIN: binDir(MAJOR) },
      readOnlyMounts: [dir],
    });

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pg-version-'));
    chownSync(dir, ENGINE_UID, ENGINE_UID);
    pgdata = join(dir, 'pgdata');
    const init = runOnce({
      image: ENGINE_IMAGES.postgres,
      name: 'pg-version-initdb',
      entrypoint: 'initdb',
      args: ['-D', pgdata, '-A', 'trust', '-U', 'postgres'],
      mounts: [dir],
    });
    if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('passes a fresh volume and a data directory of the image major', () => {
    expect(check(join(dir, 'empty')).status).toBe(0);
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
