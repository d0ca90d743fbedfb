// The engine harness stops a member as the kubelet stops its container, and a container
// ends with its main process: nothing of it may outlive Patroni. Patroni (3.0 did) stopped
// by SIGTERM while it restarts Postgres after a demotion can exit with the new postmaster
// running; in a pod the runtime ends that one with the container, and so does the harness's
// container, or the member keeps streaming from the new primary with no Patroni and no pod
// (the patroni-rollout scale-down hung on exactly that: two replication rows where one
// replica was left).
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, postmastersOf, running, sql, startDatabase } from './patroni-harness.ts';
import { stateOf } from './containers.ts';
import type { Harness } from './patroni-harness.ts';
import { requestSwitchover, settled } from './patroni-rollout-scenarios.ts';

describe('a member stopped in the middle of its demotion', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startDatabase('pg-container', { replicasPerShard: 1 });
  });

  afterAll(async ({}, suite) => h?.stop(suite));

  it('leaves no postmaster behind and no replication from it', async () => {
    const primary = await settled(h);
    const replica = h.members.find((m) => m !== primary);
    if (!replica) throw new Error('no replica');
    // A switchover through Patroni's DCS, as the operator requests it.
    requestSwitchover(h, primary.name, replica.name);
    // The old primary's Postgres stops for the demotion; Patroni starts it again as a replica.
    await eventually(
      `${primary.name}'s Postgres stopped for the demotion`,
      async () => (postmastersOf(primary.dataDir).length === 0 ? true : undefined),
      60_000,
      10,
    );
    await h.stopMember(primary);

    expect(postmastersOf(primary.dataDir)).toEqual([]);
    await eventually(
      `${replica.name} labelled primary`,
      async () => (h.primaryOf(0)?.name === replica.name ? true : undefined),
      90_000,
    );
    // Nothing streams from the new primary: the only other member is stopped.
    await eventually(
      'pg_stat_replication empty on the new primary',
      async () => {
        const rows = await sql(replica.pgPort, 'SELECT 1 FROM pg_stat_replication');
        return rows.length === 0 ? true : undefined;
      },
      30_000,
    );
  });
});

// The harness's stall: Patroni stopped (SIGSTOP) while its Postgres keeps serving, as a
// Patroni starved of CPU or stuck in a long pause looks to everyone else.
describe('a member whose Patroni is paused', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startDatabase('pg-pause', { replicasPerShard: 0, tls: false });
  });

  afterAll(async ({}, suite) => h?.stop(suite));

  const renewTime = () =>
    (
      JSON.parse(h.kubectl(['-n', h.ns, 'get', 'configmap', 'shop-db-0-leader', '-o', 'json'])) as {
        metadata: { annotations?: Record<string, string> };
      }
    ).metadata.annotations?.['renewTime'];
  const restAnswers = () =>
    fetch(`http://127.0.0.1:${m().restPort}/patroni`, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.ok,
      () => false,
    );
  const m = () => {
    const p = h.members[0];
    if (!p) throw new Error('no member');
    return p;
  };

  it('stops Patroni alone: Postgres keeps serving, the lock is not renewed until it resumes', async () => {
    await eventually('a primary', async () => h.primaryOf(0), 120_000, 500);
    await sql(m().pgPort, 'CREATE TABLE paused (id int PRIMARY KEY)');
    const [postmaster] = postmastersOf(m().dataDir);
    if (postmaster === undefined) throw new Error('no postmaster');

    const stopped = await h.pauseMember(m());
    expect(stopped.length).toBeGreaterThan(0);
    expect(stopped).not.toContain(postmaster);
    for (const pid of stopped) expect(stateOf(pid)).toBe('T');
    expect(stateOf(postmaster)).not.toBe('T');
    expect(running(m())).toBe(true);
    // loop_wait is 1 s: a live Patroni renews every second; this one does not for 4 s.
    const held = renewTime();
    const until = Date.now() + 4000;
    let n = 0;
    while (Date.now() < until) {
      await sql(m().pgPort, 'INSERT INTO paused VALUES ($1)', [++n]);
      await sleep(200);
    }
    expect(renewTime()).toBe(held);
    expect(await restAnswers()).toBe(false);
    expect(
      Number((await sql<{ n: string }>(m().pgPort, 'SELECT count(*) AS n FROM paused'))[0]?.n),
    ).toBe(n);

    h.resumeMember(m());
    await eventually('Patroni running again', async () =>
      stopped.every((pid) => stateOf(pid) !== 'T') ? true : undefined,
    );
    await eventually('the lock renewed again', async () =>
      renewTime() !== held ? true : undefined,
    );
    expect(await restAnswers()).toBe(true);
    expect(h.primaryOf(0)?.name).toBe(m().name);
  });
});
