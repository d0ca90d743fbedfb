// `npm run bench:failover`: what kill -9 of a primary costs an app, and what a short
// Patroni lease costs the API server. Printed as a table and written to BENCHMARKS.md.
//   Patroni   test/engines/patroni-ha.test.ts: one shard, primary + 2 replicas, synchronous,
//             1,000 acknowledged commits, kill -9 of the primary -> first write on a survivor,
//             with the operator's LeaseWatch releasing the silent primary's lock
//   Sentinel  test/engines/redis-sentinel.test.ts: 3 Redis + 3 Sentinels, kill -9 of the
//             master -> the first ioredis write+read that succeeds; and the preStop handover
//   API cost  one shard of 3 Patroni members on the embedded control plane: their API-server
//             requests per second over a window, counted from the audit log by their own
//             identity, at the default failoverSeconds 10 (loop_wait 1 s), at 20 (Patroni's
//             shortest lease, loop_wait 2 s) and at 100 (loop_wait 10 s, the old default)
// The engine tests assert correctness (no acknowledged write lost, a new primary); they hand
// their times to this script through SCALABLE_BENCH_OUT. BENCH_FAILOVER_TRIALS (3) runs.
import { writeBenchSection } from './benchmarks-file.ts';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readState } from '../devcluster/index.ts';
import {
  DEFAULT_FAILOVER_SECONDS,
  releaseAfterSeconds,
  timingsOf,
} from '../operator/tiers/database/lease-break.ts';
import {
  SENTINEL_DOWN_AFTER_MS,
  SENTINEL_FAILOVER_TIMEOUT_MS,
} from '../operator/engines/redis/config.ts';
import { REPLICA_ROLE, ROLE_LABEL } from '../operator/tiers/database/names.ts';
import { eventually, startDatabase } from '../test/engines/patroni-harness.ts';
import { ENGINE_IMAGE_NAMES, engineVersions } from '../test/engines/containers.ts';
import { buildImages } from '../test/images/build.ts';
import { eventsOf, readAuditLog, serviceAccountUser } from '../test/integration/rbac-audit.ts';

const TRIALS = Number(process.env['BENCH_FAILOVER_TRIALS'] ?? 3);
const WINDOW_S = Number(process.env['BENCH_FAILOVER_WINDOW_S'] ?? 30);
const REPO = join(import.meta.dirname, '..');
const DEFAULT_FAILOVER = DEFAULT_FAILOVER_SECONDS.synchronous;
const log = (m: string) => console.log(`[bench] ${m}`);

type Record_ = { name: string } & Record<string, number>;

function runEngineTests(out: string): void {
  const r = spawnSync(
    'npx',
    [
      'vitest',
      'run',
      '--project',
      'engines',
      'test/engines/patroni-ha.test.ts',
      'test/engines/redis-sentinel.test.ts',
    ],
    { cwd: REPO, stdio: 'inherit', env: { ...process.env, SCALABLE_BENCH_OUT: out } },
  );
  // A failed run means a lost write or no new primary: no time is worth reporting then.
  if (r.status !== 0) throw new Error('the failover engine tests failed; see above');
}

/** Requests `username` made that the API server received in the window, by verb and resource. */
async function requestsBy(username: string, from: Date, to: Date): Promise<Map<string, number>> {
  const state = await readState();
  if (!state) throw new Error('no running devcluster');
  const seen = new Set<string>();
  const counts = new Map<string, number>();
  for (const e of eventsOf(readAuditLog(state.logDir), username, from, to)) {
    if (e.auditID !== undefined && seen.has(e.auditID)) continue;
    if (e.auditID !== undefined) seen.add(e.auditID);
    const key = `${e.verb} ${e.objectRef?.resource ?? '?'}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

interface ApiCost {
  readonly lease: number;
  readonly perMember: number;
  /** Of those, writes (create, update, patch, delete) per member per second. */
  readonly writesPerMember: number;
  readonly byKind: string;
}

/**
 * Requests per second per member at this lease: the 3 members of one shard authenticate as an
 * audited ServiceAccount (bound to the rendered Role), so every request they make is counted
 * from the audit log and nothing else's is.
 */
async function apiCost(lease: number): Promise<ApiCost> {
  const identity = `patroni-bench-${lease}-${process.pid}`;
  const username = serviceAccountUser(identity);
  const h = await startDatabase('bench-api', { replicasPerShard: 2, failoverSeconds: lease }, [], {
    auditedIdentity: identity,
  });
  try {
    await eventually(
      'a primary and 2 replicas',
      async () =>
        h.pods().filter((p) => p.metadata.labels?.[ROLE_LABEL] === REPLICA_ROLE).length === 2 &&
        h.primaryOf(0)
          ? true
          : undefined,
      180_000,
      1000,
    );
    await sleep(5_000);
    const from = new Date();
    await sleep(WINDOW_S * 1000);
    const to = new Date();
    await sleep(2_000); // the audit backend writes in batches
    const counts = await requestsBy(username, from, to);
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    const writes = [...counts]
      .filter(([k]) => /^(create|update|patch|delete) /.test(k))
      .reduce((a, [, n]) => a + n, 0);
    const per = (n: number) => Number((n / WINDOW_S / h.members.length).toFixed(2));
    return {
      lease,
      perMember: per(total),
      writesPerMember: per(writes),
      byKind: [...counts]
        .sort((a, b) => b[1] - a[1])
        .map(([k, n]) => `${k} ${n}`)
        .join(', '),
    };
  } finally {
    await h.stop();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
};
const range = (xs: number[]) => `${Math.min(...xs)}–${Math.max(...xs)}`;
const s2 = (ms: number) => Number((ms / 1000).toFixed(2));

async function main(): Promise<void> {
  buildImages(ENGINE_IMAGE_NAMES);
  const v = engineVersions();
  const loads: number[] = [];
  const records: Record_[] = [];
  for (let i = 0; i < TRIALS; i++) {
    const out = join(tmpdir(), `bench-failover-${process.pid}-${i}.jsonl`);
    rmSync(out, { force: true });
    log(`engine tests, run ${i + 1}/${TRIALS}`);
    runEngineTests(out);
    loads.push(loadavg()[0] ?? 0);
    records.push(
      ...readFileSync(out, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record_),
    );
    rmSync(out, { force: true });
  }
  const of = (name: string, key: string) =>
    records.filter((r) => r.name === name).map((r) => r[key] ?? NaN);
  const costs: ApiCost[] = [];
  for (const lease of [DEFAULT_FAILOVER, 20, 100]) {
    log(`API-server cost at failoverSeconds ${lease}`);
    costs.push(await apiCost(lease));
  }

  const pg = of('patroni-ha', 'failoverSeconds');
  const acked = of('patroni-ha', 'ackedWrites');
  const promoted = of('sentinel-failover', 'promotedAfterMs').map(s2);
  const firstWrite = of('sentinel-failover', 'firstWriteAfterMs').map(s2);
  const handover = of('sentinel-handover', 'longestWriteWaitMs').map(s2);
  const t = timingsOf(DEFAULT_FAILOVER);
  const releaseAfter = releaseAfterSeconds({
    synchronous: true,
    failoverSeconds: DEFAULT_FAILOVER,
  });
  const row = (what: string, xs: number[], goal: string, ok: boolean | undefined) =>
    `| ${what} | ${median(xs)} s | ${range(xs)} s | ${goal} | ${ok === undefined ? '' : ok ? 'yes' : 'no'} |`;
  const table = [
    '| measure | median | range | goal | met |',
    '|---|---|---|---|---|',
    row(
      `Patroni: kill -9 of the primary -> first write on the new primary (synchronous, 3 members, failoverSeconds ${DEFAULT_FAILOVER}: ttl ${t.ttl} / loop_wait ${t.loop_wait} / retry_timeout ${t.retry_timeout}, lock released by the operator after ${releaseAfter} s of silence)`,
      pg,
      '<= 10 s',
      median(pg) <= 10,
    ),
    `| Patroni: acknowledged writes lost (1,000 synchronous commits before the kill, per run) | 0 of ${acked.join(', ')} | | 0 | yes |`,
    row(
      `Sentinel: kill -9 of the master -> promotion agreed by all 3 Sentinels (down-after-milliseconds ${SENTINEL_DOWN_AFTER_MS}, failover-timeout ${SENTINEL_FAILOVER_TIMEOUT_MS})`,
      promoted,
      '',
      undefined,
    ),
    row(
      'Sentinel: kill -9 of the master -> first ioredis write+read that succeeds',
      firstWrite,
      '<= 5 s',
      median(firstWrite) <= 5,
    ),
    row('Sentinel: preStop handover, longest wait of a write', handover, '', undefined),
  ].join('\n');
  const costRows = costs.map((c) => {
    const ct = timingsOf(c.lease);
    return `| ${c.lease} (ttl ${ct.ttl}, loop_wait ${ct.loop_wait}) | ${c.perMember} | ${c.writesPerMember} | ${(c.perMember * 30).toFixed(1)} | ${(c.perMember * 300).toFixed(0)} |`;
  });
  const costTable = [
    '| failoverSeconds | API-server requests/s per member | of which writes | 10 shards x 3 pods (req/s) | 100 shards x 3 pods (req/s) |',
    '|---|---|---|---|---|',
    ...costRows,
  ].join('\n');
  console.log(`\n${table}\n\n${costTable}\n`);
  const machine = `${cpus()[0]?.model ?? 'unknown CPU'} x ${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Linux ${release()}, Node ${process.version}`;
  const section = [
    '<!-- bench:failover -->',
    '## Failover (`npm run bench:failover`)',
    '',
    `Run ${new Date().toISOString()} on ${machine}; ${TRIALS} runs of the failover engine tests (load average after each: ${loads.map((l) => l.toFixed(1)).join(', ')}). Patroni ${v.patroni} and Postgres ${v.postgres} (the postgres-patroni image), Redis and Sentinel ${v.redis} (the redis image), on loopback; the embedded control plane as Patroni's DCS.`,
    '',
    table,
    '',
    costTable,
    '',
    `- Patroni replaces a primary only when its leader lock is free: its lease (\`ttl\`) expired, or released. Patroni 4 (the image) refuses a ttl under 20 s, which puts kill -9 -> new primary at about 20 s (19.7 s median, 18.7–20.6 s, measured with failoverSeconds 20 before the operator released locks). Below 20 s (the default is ${DEFAULT_FAILOVER}) the ttl stays 20 and the operator's LeaseWatch releases the lock of a primary it has seen silent for loop_wait + retry_timeout + 1 s (${releaseAfter} s), re-reading the lock first and releasing it under a resourceVersion precondition; the replicas, which watch the lock, race at once, and only the synchronous standby may win. retry_timeout is short enough that a primary cut off from the API server has demoted itself before that. A false alarm (a live primary's lock released) is taken back by that primary on its next loop: the replicas do not race while a member still answers as primary (the engine test checks it).`,
    `- API cost: every member runs its loop every loop_wait = max(1, failoverSeconds/10) s (the primary renews the leader ConfigMap, members update their pods). Measured from the API server's audit log: the 3 members of one shard authenticate as a ServiceAccount of their own (bound to the rendered Role), and every request that identity made in a ${WINDOW_S} s window is counted, divided by 3 (${costs.map((c) => `failoverSeconds ${c.lease}: ${c.byKind}`).join('; ')}); N shards x M pods cost about N x M times the per-member rate. failoverSeconds 100 has the old loop_wait of 10 s; the operator's LeaseWatch adds no request per renewal (one watch over all leader ConfigMaps) and two (a read and the release) per silent primary. The per-member rate is small against an API server's default 400 + 200 in-flight request limits, but with 100 shards it is a steady write load on etcd (the leader renewals are writes).`,
    '- Sentinel: a master is called down after down-after-milliseconds without an answer; then the Sentinels elect a leader, which promotes a replica; ioredis asks the Sentinels again on its next retry.',
    '<!-- /bench:failover -->',
  ].join('\n');
  log(`wrote ${writeBenchSection('failover', section)}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
