// fence.py, the database container's entrypoint, with real Patroni and Postgres: it arms
// when Patroni activates its watchdog (on becoming primary), stands down when Patroni
// disarms it (a clean stop), and stops the postmaster at once when Patroni dies while it
// leads (its Postgres would otherwise serve on as primary with nobody renewing its lock).
// The timer itself (Patroni frozen) is in patroni-failover.test.ts.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fenceSeconds, timingsOf } from '../../operator/tiers/database/lease-break.ts';
import { PRIMARY_ROLE } from '../../operator/tiers/database/names.ts';
import { killPatroni, syncStandbyRecorded } from './failover-faults.ts';
import { eventually, postmastersOf, startDatabase } from './patroni-harness.ts';
import type { Harness, Member } from './patroni-harness.ts';

describe('fence.py with Patroni', () => {
  let h: Harness;
  let primary: Member;
  const logOf = (m: Member) => readFileSync(m.log, 'utf8');

  beforeAll(async () => {
    h = await startDatabase('pg-fence', { replicasPerShard: 1, synchronous: true });
    primary = await eventually('a primary', async () => h.primaryOf(0), 120_000, 500);
  });

  afterAll(async ({}, suite) => h?.stop(suite));

  it('is armed on the primary with the timeout Patroni asks for (ttl - 15)', async () => {
    const fence = fenceSeconds(timingsOf(h.app.database?.failoverSeconds ?? NaN));
    await eventually('the primary’s fence armed', async () =>
      logOf(primary).includes(`fence: armed: Postgres is stopped ${fence} s after the last renewal`)
        ? true
        : undefined,
    );
    const replica = h.members.find((m) => m !== primary);
    expect(replica && logOf(replica)).not.toMatch(/fence: armed/);
  });

  it('stops the postmaster at once when Patroni dies while it leads', async () => {
    // The standby that may take over once the lease ends (next case) must be recorded first.
    await syncStandbyRecorded(h);
    const postmasters = postmastersOf(primary.dataDir);
    expect(postmasters).toHaveLength(1);
    killPatroni(primary);
    await eventually(
      'the orphaned postmaster stopped',
      async () => (postmastersOf(primary.dataDir).length === 0 ? true : undefined),
      30_000,
      100,
    );
    expect(logOf(primary)).toMatch(
      /fence: Patroni exited \(-9\) while it led; killed the postmaster \(pid \d+\) and its backends/,
    );
  });

  it('stands down when Patroni stops cleanly', async () => {
    // Patroni's lease ends (no operator here) and the standby takes over; the dead primary's
    // pod keeps its label (nobody fences it here), so the standby is looked at by name.
    const next = h.members.find((m) => m !== primary);
    if (!next) throw new Error('no standby');
    await eventually(
      'the standby promoted',
      async () => (h.roleOf(next.name) === PRIMARY_ROLE ? true : undefined),
      120_000,
      500,
    );
    await eventually('its fence armed', async () =>
      logOf(next).includes('fence: armed') ? true : undefined,
    );
    await h.stopMember(next);
    const log = logOf(next);
    expect(log).toMatch(/fence: disarmed/);
    expect(log).not.toMatch(/killed the postmaster/);
  });
});
