// The engine harness stops a member as the kubelet stops its container, and a container
// ends with its main process: nothing of it may outlive Patroni. Patroni 3.0 stopped by
// SIGTERM while it restarts Postgres after a demotion exits with the new postmaster running;
// in a pod the runtime kills that one, and the harness must too, or the member keeps
// streaming from the new primary with no Patroni and no pod (the patroni-rollout scale-down
// hung on exactly that: two replication rows where one replica was left).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, postmastersOf, sql, startDatabase } from './patroni-harness.ts';
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
