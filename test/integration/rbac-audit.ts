// Is the operator's RBAC minimal? Read the API server's audit log of an integration run (the
// devcluster audits default-namespace ServiceAccounts, where the suites' RBAC-bound operators
// run: devcluster/components.ts AUDIT_POLICY) and list, per rule of operator/rbac.ts, which of
// its (resource, verb) pairs the operators used. A pair nobody used is a right to drop, unless
// the operator holds it only to grant it (GRANT_ONLY_RULES: RBAC's no-escalation check).
//
//   npm run rbac:audit [audit.log]    (default: the running devcluster's log)
// Prints a table, exits 1 when a pair of the operator's own rules was never used.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GRANT_ONLY_RULES, OPERATOR_RULES, leaderElectionRules } from '../../operator/rbac.ts';
import type { PolicyRule } from '../../operator/rbac.ts';

export interface AuditEvent {
  readonly verb: string;
  readonly user: { readonly username: string };
  readonly requestReceivedTimestamp?: string;
  readonly objectRef?: {
    readonly apiGroup?: string;
    readonly resource?: string;
    readonly subresource?: string;
  };
  readonly responseStatus?: { readonly code?: number };
  readonly annotations?: Readonly<Record<string, string>>;
}

/** The suites' operators run as ServiceAccounts named scalable-operator-<unique> in default. */
export const OPERATOR_USER = /^system:serviceaccount:default:scalable-operator-/;

export interface PairUse {
  readonly group: string;
  readonly resource: string;
  readonly verb: string;
  readonly uses: number;
  readonly grantOnly: boolean;
}

const pairKey = (group: string, resource: string, verb: string) => `${group}|${resource}|${verb}`;

/** Uses of every (group, resource, verb) the rules allow, by the operator's identities. */
export function ruleUse(
  events: readonly AuditEvent[],
  rules: readonly PolicyRule[],
  grantOnly: readonly PolicyRule[],
): PairUse[] {
  const counts = new Map<string, number>();
  for (const e of events) {
    if (!OPERATOR_USER.test(e.user.username) || !e.objectRef?.resource) continue;
    if (e.annotations?.['authorization.k8s.io/decision'] !== 'allow') continue;
    const { apiGroup = '', resource, subresource } = e.objectRef;
    const res = subresource ? `${resource}/${subresource}` : resource;
    // A server-side apply that creates is audited as a patch answered 201, and RBAC checks
    // create for it too: it is a use of both.
    const verbs =
      e.verb === 'patch' && e.responseStatus?.code === 201 ? ['patch', 'create'] : [e.verb];
    for (const verb of verbs) {
      const k = pairKey(apiGroup, res, verb);
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
  }
  const pairs = (rs: readonly PolicyRule[]) =>
    rs.flatMap((r) =>
      r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => [g, res, v]))),
    );
  const granted = new Set(pairs(grantOnly).map(([g, res, v]) => pairKey(g!, res!, v!)));
  return pairs(rules).map(([group = '', resource = '', verb = '']) => ({
    group,
    resource,
    verb,
    uses: counts.get(pairKey(group, resource, verb)) ?? 0,
    grantOnly: granted.has(pairKey(group, resource, verb)),
  }));
}

export function parseAuditLog(text: string): AuditEvent[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as AuditEvent);
}

async function main(): Promise<void> {
  let file = process.argv[2];
  if (!file) {
    const { readState } = await import('../../devcluster/cluster.ts');
    const state = await readState();
    if (!state) throw new Error('no running devcluster: pass the audit log path');
    file = join(state.logDir, 'kube-apiserver-audit.log');
  }
  const events = parseAuditLog(readFileSync(file, 'utf8'));
  const use = ruleUse(events, [...OPERATOR_RULES, ...leaderElectionRules('any')], GRANT_ONLY_RULES);
  console.log(`audit log: ${file} (${events.length} events)`);
  console.log(`${'group'.padEnd(26)} ${'resource'.padEnd(26)} ${'verb'.padEnd(7)} uses`);
  for (const u of use)
    console.log(
      `${(u.group || "''").padEnd(26)} ${u.resource.padEnd(26)} ${u.verb.padEnd(7)} ${String(u.uses).padStart(5)}${u.grantOnly ? '  (held to grant it to Patroni)' : ''}`,
    );
  const unused = use.filter((u) => u.uses === 0 && !u.grantOnly);
  console.log(
    unused.length === 0
      ? 'every right the operator holds for itself was used'
      : `never used: ${unused.map((u) => `${u.verb} ${u.group ? `${u.resource}.${u.group}` : u.resource}`).join(', ')}`,
  );
  if (unused.length > 0) process.exitCode = 1;
}

if (process.argv[1] === import.meta.filename) await main();
