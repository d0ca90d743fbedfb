// Pure: the status document as the tree `scalable status` prints. Colour (ANSI) only when
// asked: the command asks when stdout is a terminal and NO_COLOR is not set.
import type { ConditionView, GroupView, PodView, StatusDocument } from './model.ts';

type Paint = (s: string) => string;
interface Palette {
  readonly good: Paint;
  readonly bad: Paint;
  readonly warn: Paint;
  readonly dim: Paint;
  readonly bold: Paint;
}

const ansi =
  (code: string): Paint =>
  (s) =>
    `\x1b[${code}m${s}\x1b[0m`;
const plain: Paint = (s) => s;
const COLOURS: Palette = {
  good: ansi('32'),
  bad: ansi('31'),
  warn: ansi('33'),
  dim: ansi('2'),
  bold: ansi('1'),
};
const NO_COLOURS: Palette = { good: plain, bad: plain, warn: plain, dim: plain, bold: plain };

/** 1536 -> "1.5 KiB"; exact below 1 KiB. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

const ROLE_TEXT: Record<string, string> = {
  'sync-standby': 'sync standby',
};
const roleText = (p: PodView): string =>
  p.role === null ? 'no role yet' : (ROLE_TEXT[p.role] ?? p.role);

function podLine(p: PodView, nameWidth: number, c: Palette): string {
  const ready = p.ready ? c.good('ready    ') : c.bad('not ready');
  const where =
    p.node === null
      ? c.warn('not scheduled')
      : `${p.node}  ${p.zone === null ? c.warn('zone unknown') : `zone ${p.zone}`}`;
  const parts = [p.name.padEnd(nameWidth), roleText(p).padEnd(12), ready, where];
  if (p.lagBytes !== undefined)
    parts.push(p.lagBytes === null ? c.warn('lag unknown') : `lag ${formatBytes(p.lagBytes)}`);
  if (p.phase !== 'Running') parts.push(c.warn(`(${p.phase})`));
  return parts.join('  ');
}

function groupHeading(g: GroupView, c: Palette): string {
  if (g.shard) {
    const s = g.shard;
    const primary = s.primary === null ? c.bad('no primary') : `primary ${s.primary}`;
    const sync = s.syncStandbys.length > 0 ? `, sync standby ${s.syncStandbys.join(', ')}` : '';
    return `${c.bold(g.name)}  shard ${s.index}: ${primary}${sync}`;
  }
  if (g.master !== undefined) {
    const master =
      g.master !== null
        ? `master ${g.master}`
        : `master known to Sentinel only (SENTINEL get-master-addr-by-name ${g.sentinelMasterName ?? g.name})`;
    return `${c.bold(g.name)}  ${master}`;
  }
  return c.bold(g.name);
}

const branch = (last: boolean) => (last ? '└─ ' : '├─ ');
const stem = (last: boolean) => (last ? '   ' : '│  ');

function conditionLines(cond: ConditionView, typeWidth: number, c: Palette): string[] {
  const mark = cond.problem ? c.bad('✗') : cond.status === 'True' ? c.good('✓') : c.dim('·');
  const status = cond.problem ? c.bad(cond.status.padEnd(7)) : cond.status.padEnd(7);
  const head = `  ${mark} ${cond.type.padEnd(typeWidth)}  ${status}  ${cond.reason}`;
  const lines = [cond.message ? `${head}: ${cond.message}` : head];
  if (cond.next !== null) lines.push(`      ${c.warn('next:')} ${cond.next}`);
  return lines;
}

export interface TextOptions {
  readonly colour: boolean;
}

export function statusText(doc: StatusDocument, opts: TextOptions): string {
  const c = opts.colour ? COLOURS : NO_COLOURS;
  const out: string[] = [];
  const ready =
    doc.ready === 'True'
      ? c.good('Ready')
      : c.bad(doc.ready === 'False' ? 'not Ready' : 'Ready unknown');
  const generation =
    doc.app.generation === null
      ? ''
      : `  (generation ${doc.app.generation}, observed ${doc.app.observedGeneration ?? 'never'})`;
  out.push(`${c.bold(`ScalableApp ${doc.app.namespace}/${doc.app.name}`)}  ${ready}${generation}`);

  const pods = doc.tiers.flatMap((t) => t.groups.flatMap((g) => g.pods));
  const nameWidth = Math.max(0, ...pods.map((p) => p.name.length));
  for (const tier of doc.tiers) {
    out.push('');
    out.push(`${c.bold(tier.tier)}${tier.ready === null ? '' : `  ${tier.ready} ready`}`);
    tier.groups.forEach((g, gi) => {
      const lastGroup = gi === tier.groups.length - 1;
      out.push(`${branch(lastGroup)}${groupHeading(g, c)}`);
      if (g.pods.length === 0) out.push(`${stem(lastGroup)}└─ ${c.warn('no pods')}`);
      g.pods.forEach((p, pi) => {
        out.push(
          `${stem(lastGroup)}${branch(pi === g.pods.length - 1)}${podLine(p, nameWidth, c)}`,
        );
      });
    });
  }

  if (doc.shardMap) {
    const m = doc.shardMap;
    out.push('');
    const per = m.perShard.map((s) => `shard ${s.shard}: ${s.buckets}`).join(', ');
    out.push(
      `${c.bold('shard map')}  version ${m.version}, ${m.buckets} buckets (${per}); ConfigMap ${m.configMapName}`,
    );
    if (m.move) out.push(`  ${c.warn(m.move.reason)}: ${m.move.message}`);
  }

  out.push('');
  out.push(c.bold('urls'));
  if (doc.urls.length === 0) out.push(`  ${c.warn('none yet')}`);
  const urlWidth = Math.max(0, ...doc.urls.map((u) => u.url.length));
  for (const u of doc.urls) out.push(`  ${u.url.padEnd(urlWidth)}  ${c.dim(u.via)}`);

  out.push('');
  out.push(c.bold('conditions'));
  if (doc.conditions.length === 0)
    out.push(`  ${c.warn('none yet: has the operator seen the app?')}`);
  const typeWidth = Math.max(0, ...doc.conditions.map((x) => x.type.length));
  for (const cond of doc.conditions) out.push(...conditionLines(cond, typeWidth, c));

  if (doc.notes.length > 0) {
    out.push('');
    out.push(c.bold('notes'));
    for (const n of doc.notes) out.push(`  ${c.warn(n)}`);
  }
  return `${out.join('\n')}\n`;
}
