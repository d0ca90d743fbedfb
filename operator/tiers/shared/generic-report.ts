// The verdict for a tier without a status function of its own: every object it wants
// exists, and its workloads have rolled out with their pods ready.
import { condition } from './report.ts';
import type { Observed, ObservedObject, TierReport } from './report.ts';

type Json = Record<string, unknown>;

const num = (v: unknown, dflt = 0): number => (typeof v === 'number' ? v : dflt);

/** Why a Deployment or StatefulSet is not ready yet; undefined when it is. */
export function workloadNotReady(o: ObservedObject): string | undefined {
  if (o.kind !== 'Deployment' && o.kind !== 'StatefulSet') return undefined;
  const spec = (o['spec'] ?? {}) as Json;
  const status = (o.status ?? {}) as Json;
  const want = num(spec['replicas'], 1);
  const ready = num(status['readyReplicas']);
  if (num(status['observedGeneration']) < num(o.metadata['generation']))
    return `${o.kind} ${o.metadata.name} rolling out`;
  if (ready < want) return `${o.kind} ${o.metadata.name}: ${ready}/${want} pods ready`;
  return undefined;
}

export function genericReport(
  type: string,
  observed: Observed,
  wanted: readonly { kind: string; name: string }[],
): TierReport {
  const found = wanted.map((w) => ({
    w,
    o: observed.objects.find((o) => o.kind === w.kind && o.metadata.name === w.name),
  }));
  const missing = found.filter((f) => !f.o).map((f) => `${f.w.kind} ${f.w.name}`);
  if (missing.length > 0)
    return { condition: condition(type, 'False', 'NotFound', `missing ${missing.join(', ')}`) };
  const waiting = found
    .flatMap((f) => (f.o ? [workloadNotReady(f.o)] : []))
    .filter((x): x is string => !!x);
  if (waiting.length > 0)
    return { condition: condition(type, 'False', 'PodsNotReady', waiting.join('; ')) };
  return { condition: condition(type, 'True', 'Ready', `${wanted.length} objects in place`) };
}
