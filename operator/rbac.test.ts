import { describe, expect, it } from 'vitest';
import { OWNED_KINDS } from './reconcile/kinds.ts';
import { buildAll } from './tiers/index.ts';
import { modelOf } from './tiers/shared/test-helpers.ts';
import {
  GRANT_ONLY_RULES,
  OPERATOR_RULES,
  clusterRole,
  leaderElectionRules,
  operatorRules,
} from './rbac.ts';

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
    for (const k of OWNED_KINDS.filter((o) => !o.createOnly && !o.pruneOnly)) {
      for (const verb of ['list', 'watch', 'create', 'patch']) {
        expect(allows(k.group, k.plural, verb), `${verb} ${k.plural}`).toBe(true);
      }
      expect(allows(k.group, k.plural, 'delete'), `delete ${k.plural}`).toBe(!k.neverPruned);
    }
  });
  it('never deletes an HPA: every app, minimal or full, always wants exactly its web HPA', () => {
    const never = OWNED_KINDS.filter((k) => k.neverPruned).map((k) => k.kind);
    expect(never).toEqual(['HorizontalPodAutoscaler']);
    for (const app of [
      modelOf({ web: { image: 'x' } }),
      modelOf({
        web: { image: 'x' },
        ingress: { host: 'a.example.com' },
        cache: {},
        sessions: {},
        database: { shards: 2, shardKey: 'tenant' },
        queue: { consumers: [{ name: 'mail', image: 'w' }] },
        monitoring: {},
      }),
    ])
      expect(
        buildAll(app)
          .filter((o) => o.kind === 'HorizontalPodAutoscaler')
          .map((o) => o.metadata.name),
      ).toEqual([`${app.name}-web`]);
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
      leaderElectionRules('op').some(
        (r) => r.resources.includes('leases') && r.verbs.includes('update'),
      ),
    ).toBe(true);
    expect(allows('', 'pods', 'watch')).toBe(true);
    // The database tier restarts Postgres pods itself (OnDelete rollouts).
    expect(allows('', 'pods', 'delete')).toBe(true);
    expect(clusterRole().kind).toBe('ClusterRole');
  });
  it('reads exactly one Secret, its CA, and only in its own namespace', () => {
    const reads = leaderElectionRules('op').filter(
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
  it('reads and writes only its own Lease by name; create alone cannot be named', () => {
    const rules = leaderElectionRules('op').filter((r) => r.resources.includes('leases'));
    for (const r of rules) {
      if (r.verbs.some((v) => v !== 'create')) expect(r.resourceNames).toEqual(['op']);
      else expect(r.resourceNames).toBeUndefined();
    }
    expect(rules.flatMap((r) => r.verbs).sort()).toEqual(['create', 'get', 'update']);
  });
  it('holds nothing on Endpoints (Patroni runs in ConfigMap mode)', () => {
    expect(OPERATOR_RULES.some((r) => r.resources.includes('endpoints'))).toBe(false);
  });
  it("holds none of Patroni's write rights, only bind on the chart's Patroni ClusterRole (issue 36)", () => {
    // Before: pod get/update/patch and ConfigMap update in every namespace, held only so that
    // RBAC let it write Patroni a Role.
    expect(allows('', 'pods', 'update')).toBe(false);
    expect(allows('', 'pods', 'patch')).toBe(false);
    expect(allows('', 'pods', 'get')).toBe(false);
    expect(allows('', 'configmaps', 'update')).toBe(false);
    for (const verb of ['create', 'patch', 'update', 'escalate', 'bind'])
      expect(allows('rbac.authorization.k8s.io', 'roles', verb), `${verb} roles`).toBe(false);
    // Old Roles are still pruned.
    expect(allows('rbac.authorization.k8s.io', 'roles', 'delete')).toBe(true);
    const binds = OPERATOR_RULES.filter((r) => r.verbs.includes('bind'));
    expect(binds).toEqual([
      {
        apiGroups: ['rbac.authorization.k8s.io'],
        resources: ['clusterroles'],
        resourceNames: ['scalable-operator-patroni'],
        verbs: ['bind'],
      },
    ]);
    expect(GRANT_ONLY_RULES).toEqual(binds);
    expect(
      operatorRules('rel-patroni').filter((r) => r.verbs.includes('bind'))[0]?.resourceNames,
    ).toEqual(['rel-patroni']);
  });
  it('reads children through its caches: get only where a hook reads one object fresh', () => {
    const gets = OPERATOR_RULES.filter(
      (r) => r.verbs.includes('get') && !GRANT_ONLY_RULES.includes(r),
    ).flatMap((r) => r.resources);
    // pods/exec: get is the exec's WebSocket upgrade, not a read of an object.
    expect(gets.sort()).toEqual(['configmaps', 'pods/exec', 'statefulsets']);
    expect(OPERATOR_RULES.some((r) => r.apiGroups.includes('events.k8s.io'))).toBe(false);
    expect(OPERATOR_RULES.some((r) => r.resources.includes('servicemonitors'))).toBe(false);
  });
});
