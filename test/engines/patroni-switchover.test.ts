// `scalable switchover` as a user runs it: the real CLI (bin/scalable.js) as a child process
// against a real Patroni shard (patroni-harness.ts: Patroni 4 and Postgres from our image,
// the embedded control plane's API as the DCS), a ScalableApp object beside it (no operator
// runs: the CLI needs none). A writer on every member commits all along; the switchover must
// move the lock, the label and the primary Service to the synchronous standby, leave the old
// primary a streaming replica and lose no acknowledged write. Refusals are asserted by the
// reason they name, and by nothing having been written.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SwitchoverResult } from '../../operator/cli/switchover/command.ts';
import { RELEASE_ANNOTATION } from '../../operator/tiers/database/lease-break.ts';
import { REPLICA_ROLE } from '../../operator/tiers/database/names.ts';
import { installCrd } from '../../operator/runtime/embedded.ts';
import { Writers, createWritesTable, settled, syncStandbyRecorded } from './failover-faults.ts';
import { eventually, sql, startDatabase } from './patroni-harness.ts';
import { settled as bootstrapped } from './patroni-rollout-scenarios.ts';
import type { Harness, Member } from './patroni-harness.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'scalable.js');
const DATABASE = { replicasPerShard: 2, synchronous: true } as const;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

let h: Harness;
let writers: Writers | undefined;

/** The CLI as a process, with the cluster's admin kubeconfig, run to its end. */
function scalable(args: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: tmpdir(),
      env: { ...process.env, KUBECONFIG: h.kubeconfig, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const switchover = async (...extra: string[]) => {
  const r = await scalable([
    'switchover',
    'shop',
    '-n',
    h.ns,
    '--shard',
    '0',
    '-o',
    'json',
    ...extra,
  ]);
  return { ...r, doc: JSON.parse(r.stdout) as SwitchoverResult };
};

const annotationsOf = (name: string): Record<string, string> =>
  (
    JSON.parse(h.kubectl(['-n', h.ns, 'get', 'configmap', name, '-o', 'json'])) as {
      metadata: { annotations?: Record<string, string> };
    }
  ).metadata.annotations ?? {};

/** No request in `<scope>-failover` (absent, or emptied by Patroni). */
const noRequest = () => {
  try {
    const a = annotationsOf('shop-db-0-failover');
    return !a['leader'] && !a['member'];
  } catch {
    return true; // not created
  }
};

const lockHolder = () => annotationsOf('shop-db-0-leader')['leader'];

const member = (name: string): Member => {
  const m = h.members.find((x) => x.name === name);
  if (!m) throw new Error(`no member ${name}`);
  return m;
};

describe('scalable switchover on a real synchronous shard: primary + 2 replicas', () => {
  let primary: Member;
  let syncStandby: string;
  let asyncReplica: string;

  beforeAll(async () => {
    h = await startDatabase('pg-switch', { ...DATABASE });
    await installCrd(h.kubeconfig);
    h.kubectl(
      ['apply', '--server-side', '-f', '-'],
      JSON.stringify({
        apiVersion: 'scalable.dev/v1alpha1',
        kind: 'ScalableApp',
        metadata: { name: 'shop', namespace: h.ns },
        spec: { web: { image: 'shop:1' }, database: DATABASE },
      }),
    );
    primary = await bootstrapped(h);
    await createWritesTable(primary);
    const sync = await syncStandbyRecorded(h);
    expect(sync).toHaveLength(1);
    syncStandby = sync[0] ?? '';
    asyncReplica = h.members.find((m) => m !== primary && m.name !== syncStandby)?.name ?? '';
  }, 400_000);

  afterAll(async ({}, suite) => {
    await writers?.stop();
    await h?.stop(suite);
  });

  it('refuses, naming the reason, and writes nothing: not a synchronous standby, no such member or shard, a lock release in flight', async () => {
    const notSync = await switchover('--to', asyncReplica);
    expect(notSync.code).toBe(1);
    expect(notSync.doc).toMatchObject({ outcome: 'refused', code: 'not-synchronous' });
    expect(notSync.doc.message).toContain(`${asyncReplica} cannot take over`);
    expect(notSync.doc.message).toContain(`shop-db-0-sync names ${syncStandby}`);

    const text = await scalable([
      'switchover',
      'shop',
      '-n',
      h.ns,
      '--shard',
      '0',
      '--to',
      'shop-db-0-9',
    ]);
    expect(text.code).toBe(1);
    expect(text.stderr).toContain('refused: shop-db-0-9 is no member of shop-db-0');

    const shard = await switchover('--shard', '3');
    expect(shard.doc).toMatchObject({ outcome: 'refused', code: 'no-such-shard' });

    // The operator's record of a lock release (lease-break.ts), as it writes it on the lock.
    const at = new Date().toISOString();
    const intent = JSON.stringify({ member: primary.name, uid: 'test', at });
    h.kubectl([
      '-n',
      h.ns,
      'annotate',
      'configmap',
      'shop-db-0-leader',
      `${RELEASE_ANNOTATION}=${intent}`,
    ]);
    try {
      const inFlight = await switchover();
      expect(inFlight.code).toBe(1);
      expect(inFlight.doc).toMatchObject({ outcome: 'refused', code: 'release-in-flight' });
      expect(inFlight.doc.message).toContain(`released ${primary.name}'s leader lock at ${at}`);
    } finally {
      h.kubectl([
        '-n',
        h.ns,
        'annotate',
        'configmap',
        'shop-db-0-leader',
        `${RELEASE_ANNOTATION}-`,
      ]);
    }

    // Nothing was asked of Patroni, and nothing moved.
    expect(noRequest()).toBe(true);
    expect(lockHolder()).toBe(primary.name);
    expect(h.primaryOf(0)?.name).toBe(primary.name);
  }, 400_000);

  it('hands the primary to the synchronous standby: lock, label and -rw follow, the old primary streams from it, no write lost', async () => {
    writers = new Writers(h.members);
    await eventually('acknowledged writes before the switchover', async () =>
      writers && writers.acks.length >= 20 ? true : undefined,
    );
    const r = await switchover();
    console.log(`[patroni-switchover] ${r.stderr.trim()}`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.doc).toMatchObject({
      outcome: 'done',
      code: null,
      from: primary.name,
      to: syncStandby,
      primary: syncStandby,
    });
    // The world as the CLI said it was when it returned.
    expect(lockHolder()).toBe(syncStandby);
    expect(h.primaryOf(0)?.name).toBe(syncStandby);
    expect(h.endpointsOf('shop-db-0')).toEqual([syncStandby]);
    const [row] = await sql<{ r: boolean }>(
      member(syncStandby).pgPort,
      'SELECT pg_is_in_recovery() AS r',
    );
    expect(row?.r).toBe(false);
    // Patroni took the request up and cleared it.
    expect(noRequest()).toBe(true);

    // The old primary rejoins as a replica streaming from the new one; every acknowledged
    // write is on the new primary.
    await eventually(
      `${primary.name} labelled replica`,
      async () => (h.roleOf(primary.name) === REPLICA_ROLE ? true : undefined),
      120_000,
    );
    await writers.stop();
    const after = await settled(h, writers.acks);
    expect(after.primary.name).toBe(syncStandby);
    const [old] = await sql<{ r: boolean }>(primary.pgPort, 'SELECT pg_is_in_recovery() AS r');
    expect(old?.r).toBe(true);
    expect(writers.acks.length).toBeGreaterThan(20);
    expect(after.lost).toEqual([]);
    writers = undefined;
  }, 400_000);
});
