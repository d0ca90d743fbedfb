// Is the operator's RBAC minimal? Read the API server's audit log (the devcluster audits
// default-namespace ServiceAccounts, where the suites' RBAC-bound operators run:
// devcluster/components.ts AUDIT_POLICY) and count, per rule of operator/rbac.ts, the
// requests that rule allows and the operators made. A pair nobody used is a right to drop,
// unless the operator holds it only to grant it (GRANT_ONLY_RULES: RBAC's no-escalation check).
// test/integration/rbac-minimal.test.ts asserts this for one operator it drives through every
// right; the script reports it for a whole run:
//
//   npm run rbac:audit [audit.log]    (default: the running devcluster's log)
// Prints a table and the refused requests per operator, exits 1 when a pair of the
// operator's own rules was never used.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  GRANT_ONLY_RULES,
  KUBELET_ONLY_RULES,
  OPERATOR_RULES,
  leaderElectionRules,
} from '../../operator/rbac.ts';
import type { PolicyRule } from '../../operator/rbac.ts';

export interface AuditEvent {
  /** One per request; a watch is audited twice under it (ResponseStarted, ResponseComplete). */
  readonly auditID?: string;
  readonly verb: string;
  readonly user: { readonly username: string };
  readonly requestURI?: string;
  readonly requestReceivedTimestamp?: string;
  readonly objectRef?: {
    readonly apiGroup?: string;
    readonly resource?: string;
    readonly subresource?: string;
    readonly namespace?: string;
    readonly name?: string;
  };
  readonly responseStatus?: { readonly code?: number; readonly message?: string };
  readonly annotations?: Readonly<Record<string, string>>;
}

/** The suites' operators run as ServiceAccounts named scalable-operator-<unique> in default. */
export const OPERATOR_USER = /^system:serviceaccount:default:scalable-operator-/;

export const serviceAccountUser = (name: string, namespace = 'default'): string =>
  `system:serviceaccount:${namespace}:${name}`;

/** A rule as bound: a ClusterRole's (namespace undefined) or a Role's in that namespace. */
export interface BoundRule extends PolicyRule {
  readonly namespace?: string;
}

export interface PairUse {
  readonly group: string;
  readonly resource: string;
  readonly verb: string;
  /** The Role's namespace; undefined for a ClusterRole's rule. */
  readonly namespace?: string;
  readonly resourceNames?: readonly string[];
  readonly uses: number;
  readonly grantOnly: boolean;
}

const pairKey = (group: string, resource: string, verb: string) => `${group}|${resource}|${verb}`;

const allowed = (e: AuditEvent) => e.annotations?.['authorization.k8s.io/decision'] === 'allow';

/**
 * A create in a namespace being deleted: NamespaceLifecycle answers 403 to an authorized
 * request. A cluster-wide operator meets other test files' namespaces as they go (CI saw 14
 * in rbac-minimal's cluster mode, RBAC's decision 'allow' on each): no right is missing.
 */
const intoTerminatingNamespace = (e: AuditEvent): boolean =>
  e.annotations?.['authorization.k8s.io/decision'] === 'allow' &&
  /because it is being terminated/.test(e.responseStatus?.message ?? '');

/** Requests the API server refused for lack of a right (403 Forbidden). */
export const refused = (events: readonly AuditEvent[]): AuditEvent[] =>
  events.filter(
    (e) =>
      (e.responseStatus?.code === 403 && !intoTerminatingNamespace(e)) ||
      e.annotations?.['authorization.k8s.io/decision'] === 'forbid',
  );

/** The RBAC verbs one request was checked for. */
function verbsOf(e: AuditEvent): string[] {
  // A server-side apply that creates is audited as a patch answered 201, and RBAC checks
  // create for it too: it is a use of both.
  return e.verb === 'patch' && e.responseStatus?.code === 201 ? ['patch', 'create'] : [e.verb];
}

/** Events of the users `user` matches, received in [since, until]. */
export function eventsOf(
  events: readonly AuditEvent[],
  user: RegExp | string,
  since?: Date,
  until?: Date,
): AuditEvent[] {
  return events.filter((e) => {
    const who = typeof user === 'string' ? e.user.username === user : user.test(e.user.username);
    // Microseconds in the log: Date.parse keeps the milliseconds.
    const at = Date.parse(e.requestReceivedTimestamp ?? '');
    return who && (!since || at >= since.getTime()) && (!until || at <= until.getTime());
  });
}

/**
 * Per (group, resource, verb) of every rule: the allowed requests among `events` that rule
 * covers (a Role's only in its namespace, a named rule's only for those names).
 */
export function ruleUse(
  events: readonly AuditEvent[],
  rules: readonly BoundRule[],
  grantOnly: readonly PolicyRule[],
): PairUse[] {
  const uses = events
    .filter((e) => allowed(e) && e.objectRef?.resource)
    .flatMap((e) => {
      const { apiGroup = '', resource = '', subresource, namespace, name } = e.objectRef ?? {};
      const res = subresource ? `${resource}/${subresource}` : resource;
      return verbsOf(e).map((verb) => ({ key: pairKey(apiGroup, res, verb), namespace, name }));
    });
  const granted = new Set(
    grantOnly.flatMap((r) =>
      r.apiGroups.flatMap((g) =>
        r.resources.flatMap((res) => r.verbs.map((v) => pairKey(g, res, v))),
      ),
    ),
  );
  return rules.flatMap((r) =>
    r.apiGroups.flatMap((group) =>
      r.resources.flatMap((resource) =>
        r.verbs.map((verb) => {
          const key = pairKey(group, resource, verb);
          const covered = uses.filter(
            (u) =>
              u.key === key &&
              (r.namespace === undefined || u.namespace === r.namespace) &&
              (r.resourceNames === undefined || r.resourceNames.includes(u.name ?? '')),
          );
          return {
            group,
            resource,
            verb,
            ...(r.namespace !== undefined ? { namespace: r.namespace } : {}),
            ...(r.resourceNames ? { resourceNames: r.resourceNames } : {}),
            uses: covered.length,
            grantOnly: granted.has(key),
          };
        }),
      ),
    ),
  );
}

export const describeRequest = (e: AuditEvent): string =>
  `${e.verb} ${e.requestURI ?? ''} -> ${e.responseStatus?.code ?? '?'}`;

export const describePair = (u: PairUse): string =>
  `${u.verb} ${u.group ? `${u.resource}.${u.group}` : u.resource}` +
  (u.namespace !== undefined ? ` in ${u.namespace}` : '') +
  (u.resourceNames ? ` named ${u.resourceNames.join(',')}` : '');

export function parseAuditLog(text: string): AuditEvent[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as AuditEvent);
}

/** The audit log of a devcluster log folder, rotated part first (--audit-log-maxbackup=1). */
export function readAuditLog(logDir: string): AuditEvent[] {
  const files = readdirSync(logDir)
    .filter((f) => /^kube-apiserver-audit.*\.log$/.test(f))
    .sort(
      (a, b) => Number(a === 'kube-apiserver-audit.log') - Number(b === 'kube-apiserver-audit.log'),
    );
  return files.flatMap((f) => parseAuditLog(readFileSync(join(logDir, f), 'utf8')));
}

async function main(): Promise<void> {
  let events: AuditEvent[];
  let source = process.argv[2];
  if (source) events = parseAuditLog(readFileSync(source, 'utf8'));
  else {
    const { readState } = await import('../../devcluster/cluster.ts');
    const state = await readState();
    if (!state) throw new Error('no running devcluster: pass the audit log path');
    source = state.logDir;
    events = readAuditLog(state.logDir);
  }
  // Every suite names its own Lease and runs in its own namespace: the Role's rules are
  // counted by verb only here (the test, which knows both, checks them bound).
  const leader = leaderElectionRules('any').map(({ resourceNames, ...r }) =>
    r.resources.includes('leases') ? r : { ...r, ...(resourceNames ? { resourceNames } : {}) },
  );
  const operators = eventsOf(events, OPERATOR_USER);
  const use = ruleUse(
    operators,
    [...OPERATOR_RULES, ...leader],
    [...GRANT_ONLY_RULES, ...KUBELET_ONLY_RULES],
  );
  console.log(`audit log: ${source} (${events.length} events, ${operators.length} by operators)`);
  console.log(`${'group'.padEnd(26)} ${'resource'.padEnd(26)} ${'verb'.padEnd(7)} uses`);
  for (const u of use)
    console.log(
      `${(u.group || "''").padEnd(26)} ${u.resource.padEnd(26)} ${u.verb.padEnd(7)} ${String(u.uses).padStart(5)}${u.resourceNames ? `  (named ${u.resourceNames.join(',')})` : ''}${u.grantOnly ? '  (held to grant it to Patroni)' : ''}`,
    );
  const unused = use.filter((u) => u.uses === 0 && !u.grantOnly);
  console.log(
    unused.length === 0
      ? 'every right the operator holds for itself was used'
      : `never used: ${unused.map(describePair).join(', ')}`,
  );
  // Not a failure here: some suites withhold a right on purpose (operator-partial-apis) or
  // remove an operator's RBAC before stopping it, and a namespace being deleted answers 403
  // to creates in it (admission, not RBAC). rbac-minimal.test.ts asserts none at all.
  const count = (events: readonly AuditEvent[]) => {
    const by = new Map<string, number>();
    for (const e of events) by.set(e.user.username, (by.get(e.user.username) ?? 0) + 1);
    return by.size === 0 ? 'none' : [...by].map(([u, n]) => `${n} by ${u}`).join(', ');
  };
  const denied = refused(operators);
  const byRbac = denied.filter(
    (e) => e.annotations?.['authorization.k8s.io/decision'] === 'forbid',
  );
  console.log(`refused by RBAC (403): ${count(byRbac)}`);
  console.log(
    `other 403 (RBAC allowed; e.g. a namespace being deleted): ${count(denied.filter((e) => !byRbac.includes(e)))}`,
  );
  if (unused.length > 0) process.exitCode = 1;
}

if (process.argv[1] === import.meta.filename) await main();
