// `npm run bench:rollout`: what a database rollout and a scale-down cost a writing app, on the
// engine harness (real Patroni + Postgres on loopback, the embedded control plane as DCS, the
// database tier's step hook driving; see test/engines/patroni-rollout-scenarios.ts). Printed
// as a table and written to BENCHMARKS.md (its own section).
//   rollout     a pod template change on a 3-pod shard: replicas, switchover, old primary
//   scale-down  replicasPerShard 2 -> 1 with the primary on ordinal 2
// Per mode (async, synchronous) BENCH_ROLLOUT_TRIALS (2) fresh shards.
import { writeBenchSection } from './benchmarks-file.ts';
import { cpus, release, totalmem } from 'node:os';
import { DEFAULT_FAILOVER_SECONDS, timingsOf } from '../operator/tiers/database/lease-break.ts';
import { buildImages } from '../test/images/build.ts';
import { ENGINE_IMAGE_NAMES, engineVersions } from '../test/engines/containers.ts';
import { startDatabase } from '../test/engines/patroni-harness.ts';
import { operatorAccess, startKubelet } from '../test/engines/patroni-kubelet.ts';
import { rollout, scaleDown, settled } from '../test/engines/patroni-rollout-scenarios.ts';
import type { Outcome } from '../test/engines/patroni-rollout-scenarios.ts';

const TRIALS = Number(process.env['BENCH_ROLLOUT_TRIALS'] ?? 2);
const log = (m: string) => console.log(`[bench] ${m}`);

interface Trial {
  readonly mode: string;
  readonly rollout: Outcome;
  readonly scaleDown: Outcome;
}

async function trial(synchronous: boolean): Promise<Trial> {
  const h = await startDatabase('bench-roll', { replicasPerShard: 2, synchronous });
  const kubelet = startKubelet(h);
  try {
    await settled(h);
    const cluster = await operatorAccess(h);
    const r = await rollout(h, cluster);
    const s = await scaleDown(h, cluster, kubelet);
    return { mode: synchronous ? 'synchronous' : 'async', rollout: r, scaleDown: s };
  } finally {
    await kubelet.stop();
    await h.stop();
  }
}

const span = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 1 ? `${s[0]}` : `${s[0]}–${s.at(-1)}`;
};
const sec = (ms: number) => Number((ms / 1000).toFixed(2));

async function main(): Promise<void> {
  buildImages(ENGINE_IMAGE_NAMES);
  const v = engineVersions();
  // Each mode's default failoverSeconds: Patroni's timings differ between them.
  const ta = timingsOf(DEFAULT_FAILOVER_SECONDS.asynchronous);
  const ts = timingsOf(DEFAULT_FAILOVER_SECONDS.synchronous);
  const trials: Trial[] = [];
  for (const synchronous of [false, true])
    for (let i = 0; i < TRIALS; i++) {
      log(`${synchronous ? 'synchronous' : 'async'} trial ${i + 1}/${TRIALS}`);
      const t = await trial(synchronous);
      log(JSON.stringify(t, (k, v) => (k === 'writes' ? undefined : v)));
      trials.push(t);
    }
  const rows: string[] = [];
  for (const mode of ['async', 'synchronous'])
    for (const kind of ['rollout', 'scaleDown'] as const) {
      const outs = trials.filter((t) => t.mode === mode).map((t) => t[kind]);
      rows.push(
        `| ${kind === 'rollout' ? 'rollout (3 pods)' : 'scale-down 3 -> 2, primary on ordinal 2'} | ${mode} | ` +
          `${span(outs.map((o) => sec(o.maxWriteGapMs)))} s | ${span(outs.map((o) => sec(o.durationMs)))} s | ` +
          `${span(outs.map((o) => o.switchovers))} | ${span(outs.map((o) => o.promotions - o.switchovers))} | ` +
          `${outs.reduce((n, o) => n + o.lost, 0)} of ${outs.reduce((n, o) => n + o.acked, 0)} | ${span(outs.map((o) => o.writeErrors))} |`,
      );
    }
  const table = [
    '| scenario | replication | longest write gap | duration | switchovers | failovers | acknowledged writes lost | failed write attempts |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
  console.log(`\n${table}\n`);
  const machine = `${cpus()[0]?.model ?? 'unknown CPU'} x ${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Linux ${release()}, Node ${process.version}`;
  const section = [
    '<!-- bench:rollout -->',
    '## Database rollout and scale-down (`npm run bench:rollout`)',
    '',
    `Run ${new Date().toISOString()} on ${machine}; ${TRIALS} fresh shard(s) per replication mode, ranges over them.`,
    `Patroni ${v.patroni} and Postgres ${v.postgres} (the postgres-patroni image; async: \`ttl\` ${ta.ttl} s, \`loop_wait\` ${ta.loop_wait} s; synchronous: \`ttl\` ${ts.ttl} s, \`loop_wait\` ${ts.loop_wait} s) on loopback, the embedded control plane as DCS, kwok pods; the database tier's step hook runs every 500 ms (the operator runs it on every pod event) and a kubelet stand-in stops (SIGTERM) and restarts a member's container as its pod is deleted and re-created. One writer commits single-row INSERTs back to back through the pod labelled primary (what the primary Service selects), reconnecting on any error.`,
    '',
    table,
    '',
    "- Longest write gap: the longest time without an acknowledged write over the whole scenario, replicas' restarts and the switchover included. The writer keeps writing to the old primary until Patroni takes the request up on its next loop; the gap is its graceful demote, the candidate's promotion and the role label moving.",
    '- Failovers: promotions seen by Postgres (timeline increments on the final primary) minus the switchovers the operator requested; 0 means the primary moved only by the switchover.',
    "- Duration: from the first write to the shard settled on the new spec; it includes the replicas' restarts, each up to a Patroni loop until ready.",
    '<!-- /bench:rollout -->',
  ].join('\n');
  log(`wrote ${writeBenchSection('rollout', section)}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
