import { describe, expect, it } from 'vitest';
import { OWNED_KINDS } from './reconcile/kinds.ts';
import { LEADER_ELECTION_RULES, OPERATOR_RULES, clusterRole } from './rbac.ts';

const allows = (group: string, resource: string, verb: string) =>
  OPERATOR_RULES.some(
    (r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb),
  );

describe('operator RBAC', () => {
  it('has no wildcard', () => {
    for (const r of OPERATOR_RULES) {
      expect([...r.apiGroups, ...r.resources, ...r.verbs]).not.toContain('*');
    }
  });
  it('lets the operator watch, apply and prune every kind it owns', () => {
    for (const k of OWNED_KINDS.filter((o) => !o.createOnly)) {
      for (const verb of ['get', 'list', 'watch', 'create', 'patch', 'delete']) {
        expect(allows(k.group, k.plural, verb), `${verb} ${k.plural}`).toBe(true);
      }
    }
  });
  it('may create, replace and delete Secrets by name but never read one', () => {
    expect(allows('', 'secrets', 'create')).toBe(true);
    expect(allows('', 'secrets', 'delete')).toBe(true);
    // A renewed certificate replaces its Secret whole (PUT answers with what was sent).
    expect(allows('', 'secrets', 'update')).toBe(true);
    for (const verb of ['get', 'list', 'watch', 'patch', 'deletecollection']) {
      expect(allows('', 'secrets', verb), `${verb} secrets`).toBe(false);
    }
  });
  it('covers status, events, leases and pods', () => {
    expect(allows('scalable.dev', 'scalableapps/status', 'patch')).toBe(true);
    expect(allows('', 'events', 'create')).toBe(true);
    expect(
      LEADER_ELECTION_RULES.some(
        (r) => r.resources.includes('leases') && r.verbs.includes('update'),
      ),
    ).toBe(true);
    expect(allows('', 'pods', 'watch')).toBe(true);
    // The database tier restarts Postgres pods itself (OnDelete rollouts).
    expect(allows('', 'pods', 'delete')).toBe(true);
    expect(clusterRole().kind).toBe('ClusterRole');
  });
  it('reads exactly one Secret, its CA, and only in its own namespace', () => {
    const reads = LEADER_ELECTION_RULES.filter(
      (r) =>
        r.resources.includes('secrets') &&
        r.verbs.some((v) => ['get', 'list', 'watch'].includes(v)),
    );
    expect(reads.map((r) => [r.verbs, r.resourceNames])).toEqual([
      [['get', 'update'], ['scalable-operator-ca']],
    ]);
  });
  it('holds Leases only in its own namespace (the leader-election Role)', () => {
    expect(allows('coordination.k8s.io', 'leases', 'update')).toBe(false);
    expect(allows('coordination.k8s.io', 'leases', 'get')).toBe(false);
  });
});
