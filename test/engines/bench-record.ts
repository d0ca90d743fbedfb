// Engine tests assert correctness; the times they see go to `npm run bench:failover`, which
// runs them with SCALABLE_BENCH_OUT set and reads one JSON line per measurement from it.
import { appendFileSync } from 'node:fs';

export function recordForBench(name: string, numbers: Readonly<Record<string, number>>): void {
  const out = process.env['SCALABLE_BENCH_OUT'];
  if (out) appendFileSync(out, `${JSON.stringify({ name, ...numbers })}\n`);
}
