// Timings of an e2e run (phases and failovers): printed, and appended as JSON lines to the
// results file the global setup names (never asserted on).
import { appendFileSync } from 'node:fs';

export const RESULTS_ENV = 'SCALABLE_E2E_RESULTS';

export interface Timing {
  readonly name: string;
  readonly value: number;
  /** s unless said. */
  readonly unit?: string;
  readonly note?: string;
}

export function record(t: Timing): void {
  const line = `[e2e] ${t.name}: ${t.value.toFixed(1)} ${t.unit ?? 's'}${t.note ? ` (${t.note})` : ''}`;
  console.log(line);
  const file = process.env[RESULTS_ENV];
  if (file) appendFileSync(file, JSON.stringify({ ...t, at: new Date().toISOString() }) + '\n');
}

/** Runs fn and records how long it took. */
export async function timed<T>(name: string, fn: () => Promise<T>, note?: string): Promise<T> {
  const start = performance.now();
  const value = await fn();
  record({ name, value: (performance.now() - start) / 1000, ...(note ? { note } : {}) });
  return value;
}

export function table(lines: readonly Timing[]): string {
  const width = Math.max(...lines.map((l) => l.name.length), 5);
  return lines
    .map(
      (l) =>
        `${l.name.padEnd(width)}  ${l.value.toFixed(1).padStart(7)} ${(l.unit ?? 's').padEnd(3)}${l.note ? `  ${l.note}` : ''}`,
    )
    .join('\n');
}
