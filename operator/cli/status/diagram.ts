// Pure: the app's live topology as a Mermaid flowchart, drawn from the status document: the
// chapter's figure (users -> load balancer -> web -> cache, sessions, queue, database shards
// with their replicas), with the pods and roles the cluster runs now.
import { formatBytes } from './text.ts';
import type { GroupView, PodView, StatusDocument } from './model.ts';

/** A Mermaid node id: letters, digits and underscores only. */
const id = (...parts: readonly (string | number)[]): string =>
  parts.join('_').replace(/[^A-Za-z0-9_]/g, '_');
/** A quoted Mermaid label: quotes and angle brackets as entities. */
const label = (...lines: readonly string[]): string =>
  `"${lines.map((l) => l.replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;')).join('<br/>')}"`;

const ROLE: Record<string, string> = { 'sync-standby': 'sync standby' };

function podNode(p: PodView): string {
  const role = p.role === null ? 'no role yet' : (ROLE[p.role] ?? p.role);
  const lag =
    p.lagBytes === undefined
      ? []
      : [p.lagBytes === null ? 'lag unknown' : `lag ${formatBytes(p.lagBytes)}`];
  const where = p.zone ?? 'zone unknown';
  const state = p.ready ? [] : ['not ready'];
  return `${id('pod', p.name)}[${label(p.name, `${role}, ${where}`, ...lag, ...state)}]`;
}

function groupLines(g: GroupView): string[] {
  const gid = id('group', g.name);
  const title =
    g.shard !== undefined
      ? `${g.name} (shard ${g.shard.index})`
      : g.master === null
        ? `${g.name} (master: ask Sentinel)`
        : g.name;
  const lines = [`  subgraph ${gid}[${label(title)}]`, ...g.pods.map((p) => `    ${podNode(p)}`)];
  if (g.pods.length === 0) lines.push(`    ${id('empty', g.name)}[${label('no pods')}]`);
  lines.push('  end');
  // Replication inside a shard: the primary streams to each standby and replica.
  const primary = g.shard?.primary;
  if (primary) {
    for (const p of g.pods) {
      if (p.name === primary) continue;
      const how = p.role === 'sync-standby' ? 'sync' : 'async';
      lines.push(`  ${id('pod', primary)} -->|${how}| ${id('pod', p.name)}`);
    }
  }
  return lines;
}

export function statusDiagram(doc: StatusDocument): string {
  const out = ['flowchart LR', `  users([${label('users')}])`];
  const entry =
    doc.urls.length > 0
      ? ['  lb{{' + label('load balancer', ...doc.urls.map((u) => u.url)) + '}}', '  users --> lb']
      : [];
  out.push(...entry);
  const web = doc.tiers.find((t) => t.tier === 'web');
  const front = entry.length > 0 ? 'lb' : 'users';
  for (const tier of doc.tiers) {
    out.push(`  subgraph ${id('tier', tier.tier)}[${label(tier.tier)}]`);
    out.push('  direction TB');
    for (const g of tier.groups) out.push(...groupLines(g).map((l) => `  ${l}`));
    out.push('  end');
  }
  for (const tier of doc.tiers) {
    const tid = id('tier', tier.tier);
    if (tier.tier === 'web') out.push(`  ${front} --> ${tid}`);
    else out.push(`  ${web ? id('tier', 'web') : front} --> ${tid}`);
  }
  return `${out.join('\n')}\n`;
}
