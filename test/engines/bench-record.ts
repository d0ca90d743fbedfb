// Engine and e2e tests assert correctness; the times they see go to `npm run bench:failover`
// and `bench:failover-kind`, which run them with SCALABLE_BENCH_OUT set and read one JSON line
// per measurement from it.
import { appendFileSync } from 'node:fs';

export function recordForBench(
  name: string,
  numbers: Readonly<Record<string, number | string>>,
): void {
  const out = process.env['SCALABLE_BENCH_OUT'];
  if (out) appendFileSync(out, `${JSON.stringify({ name, ...numbers })}\n`);
}
