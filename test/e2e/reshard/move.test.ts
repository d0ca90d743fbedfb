// Online resharding on kind (issue 27): the sample app on 2 shards keyed by user_id, with
// signups and logins going on through the web Service the whole time; then `shards: 3`.
// The operator's resharding watch moves the new shard's buckets (schema copy, logical
// replication of the moving buckets, the fence, the map flip, the clean-up) with no hand
// on it. Asserted: the move ends (status.resharding gone, DatabaseReady ShardsReady, three
// shards owning buckets); no signup or login failed throughout (every user ever signed up
// could log in, so every key was readable at every moment); every acknowledged user is on
// exactly one shard, the one the final map names for its bucket. Then back to `shards: 2`
// under the same load: the departing shard 2 stays until its buckets have moved to shards 0
// and 1 (which lift their old fences on them first), then its StatefulSet goes and its
// volume stays; the same assertions over shards 0 and 1.
// Outside `npm test` (project e2e-reshard, `npm run test:reshard`): CI's budget.
import { describe, expect, it } from 'vitest';
import { bucketOf } from '../../../sdk/src/contract/hash.ts';
import { sampleApp, seconds, useSampleApp } from '../support/app.ts';
import { apply, appCondition, eventually, getJson, heldScript, kubectl } from '../support/kube.ts';
import { postgresFrom } from '../support/postgres.ts';
import { record } from '../support/results.ts';

const NS = 'e2e-reshard';
const APP = 'shop';
const SEED = 30;
const database = (shards: number) => ({ shards, replicasPerShard: 0, shardKey: 'user_id' });

interface Range {
  from: number;
  to: number;
  shard: number;
}
interface AppStatus {
  resharding?: { phase: string; note?: { reason: string; message: string } };
  shardMap?: { version: number; ranges: Range[] };
}

const app = useSampleApp({ namespace: NS, tiers: { database: database(2) } });
const { sql } = postgresFrom(NS, app.client);

const status = async (): Promise<AppStatus> =>
  (await getJson<{ status?: AppStatus }>(['get', 'scalableapp', APP, '-n', NS])).status ?? {};

/** Signups and logins of earlier users through the web Service until told to finish. */
const LOAD = `
const base = 'http://${APP}-web.${NS}.svc';
const post = async (path, body) => {
  const r = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(150000),
  });
  return { status: r.status, body: await r.text() };
};
const users = [];
const out = { signups: 0, logins: 0, failures: [], slowestMs: 0 };
let stop = false;
process.stdin.on('end', () => (stop = true));
process.stdin.resume();
while (!stop) {
  const at = Date.now();
  try {
    const s = await post('/signup', { name: 'u' + users.length, password: 'pw' });
    if (s.status === 201) { users.push(JSON.parse(s.body).userId); out.signups++; }
    else out.failures.push({ at, what: 'signup ' + s.status + ' ' + s.body.slice(0, 200) });
    const u = users[Math.floor(Math.random() * users.length)];
    if (u) {
      const l = await post('/login', { userId: u, password: 'pw' });
      if (l.status === 200) out.logins++;
      else out.failures.push({ at, what: 'login ' + u + ' ' + l.status + ' ' + l.body.slice(0, 200) });
    }
  } catch (e) {
    out.failures.push({ at, what: String(e) });
  }
  out.slowestMs = Math.max(out.slowestMs, Date.now() - at);
  if (users.length === ${SEED}) console.log('seeded');
  await new Promise((r) => setTimeout(r, 200));
}
console.log(JSON.stringify({ ...out, users }));
`;

interface LoadResult {
  signups: number;
  logins: number;
  failures: { at: number; what: string }[];
  slowestMs: number;
  users: string[];
}

/**
 * `shards` applied under the load; done when the move has ended by itself. `during` runs at
 * each poll while a move is recorded.
 */
async function reshardUnderLoad(
  shards: number,
  during: (s: AppStatus) => Promise<void> = async () => undefined,
): Promise<{ done: AppStatus; result: LoadResult; phases: string[]; ms: number }> {
  const load = heldScript(NS, app.client, LOAD);
  await load.line((l) => l === 'seeded');
  const start = Date.now();
  await apply(sampleApp(NS, APP, { database: database(shards) }));
  const phases: string[] = [];
  const owners = (s: AppStatus) => new Set((s.shardMap?.ranges ?? []).map((r) => r.shard)).size;
  const done = await eventually(
    `the move to ${shards} shards to end`,
    async () => {
      const s = await status();
      const phase = s.resharding?.phase;
      if (phase && phases.at(-1) !== phase) phases.push(phase);
      if (s.resharding?.note) return s; // stuck: said below
      if (s.resharding) await during(s);
      const ready = await appCondition(NS, APP, 'DatabaseReady');
      return !s.resharding && owners(s) === shards && ready?.reason === 'ShardsReady'
        ? s
        : undefined;
    },
    1_500_000,
    2000,
  );
  const ms = Date.now() - start;
  expect(done.resharding?.note, 'the move is stuck').toBeUndefined();
  const result = JSON.parse((await load.finish()).trim().split('\n').pop() ?? '{}') as LoadResult;
  return { done, result, phases, ms };
}

/** Every acknowledged user on exactly one of `shards`, the one the final map names; no stray row. */
async function expectPlaced(done: AppStatus, users: readonly string[], shards: number[]) {
  const ranges = done.shardMap?.ranges ?? [];
  const ownerOf = (id: string) =>
    ranges.find((r) => bucketOf(id) >= r.from && bucketOf(id) < r.to)?.shard;
  const where = new Map<string, number[]>();
  for (const shard of shards) {
    const rows = (await sql(`${APP}-db-${shard}.${NS}.svc`, 'SELECT user_id FROM users')) as {
      user_id: string;
    }[];
    for (const r of rows) where.set(r.user_id, [...(where.get(r.user_id) ?? []), shard]);
  }
  const misplaced = users.filter((id) => {
    const on = where.get(id) ?? [];
    return on.length !== 1 || on[0] !== ownerOf(id);
  });
  expect(misplaced).toEqual([]);
  // And no row anywhere but on its owner (a signup refused after waiting left nothing).
  const stray = [...where].filter(([id, on]) => on.length !== 1 || on[0] !== ownerOf(id));
  expect(stray).toEqual([]);
  expect(new Set(users.map(ownerOf))).toEqual(new Set(shards));
}

/** The move's time and what the load saw, in the run's results. */
function recordMove(what: string, during: string, ms: number, r: LoadResult, phases: string[]) {
  record({ name: `case: resharding ${what} (apply -> done)`, value: seconds(ms) });
  record({
    name: `case: resharding requests during ${during}`,
    value: r.signups + r.logins,
    unit: 'req',
    note: `${r.signups} signups, ${r.logins} logins, ${r.failures.length} failed, slowest ${r.slowestMs} ms; phases ${phases.join(' > ')}`,
  });
}

describe('online resharding on kind', () => {
  it('resharding: 2 -> 3 shards under signups and logins: done by the operator alone, no request failed, every user on its new owner once', async () => {
    const { done, result, phases, ms } = await reshardUnderLoad(3);
    recordMove('2 -> 3', 'the move', ms, result, phases);
    await expectPlaced(done, result.users, [0, 1, 2]);
    expect(phases).toContain('Cutover');
    expect(result.failures).toEqual([]);
    expect(result.signups).toBeGreaterThan(SEED);
  }, 1_800_000);

  it('resharding: back to 2 shards under the same load: shard 2 stays until its buckets moved out, then goes, its volume kept', async () => {
    const sts = async () =>
      (await kubectl(['get', 'statefulset', '-n', NS, '-o', 'name'])).split('\n').sort();
    let heldAfterFlip = false;
    const { done, result, phases, ms } = await reshardUnderLoad(2, async (s) => {
      // After the flip shard 2 owns nothing, but its rows are not deleted yet: it stays.
      if (
        s.resharding?.phase === 'Cleanup' &&
        (await sts()).includes(`statefulset.apps/${APP}-db-2`)
      )
        heldAfterFlip = true;
    });
    recordMove('3 -> 2', 'the shrink', ms, result, phases);
    expect(phases).toContain('Cleanup');
    expect(heldAfterFlip).toBe(true);
    // Gone once it owns nothing; its data volume stays (whenDeleted: Retain).
    await eventually(
      `${APP}-db-2 to be pruned`,
      async () => !(await sts()).includes(`statefulset.apps/${APP}-db-2`) || undefined,
      300_000,
      2000,
    );
    const pvcs = await kubectl(['get', 'pvc', '-n', NS, '-o', 'name']);
    expect(pvcs).toContain(`${APP}-db-2-0`);
    await expectPlaced(done, result.users, [0, 1]);
    expect(result.failures).toEqual([]);
    expect(result.signups).toBeGreaterThan(SEED);
  }, 1_800_000);
});
