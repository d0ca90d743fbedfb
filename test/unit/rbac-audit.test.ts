// The audit-log reading that test/integration/rbac-minimal.test.ts rests on: which requests
// count as a use of which rule, which are refusals, which fall in a test's window.
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '../integration/rbac-audit.ts';
import { eventsOf, refused, ruleUse, serviceAccountUser } from '../integration/rbac-audit.ts';

const op = serviceAccountUser('scalable-operator-x');

function event(
  verb: string,
  resource: string,
  opts: {
    group?: string;
    ns?: string;
    name?: string;
    code?: number;
    decision?: string;
    at?: string;
    user?: string;
  } = {},
): AuditEvent {
  return {
    verb,
    user: { username: opts.user ?? op },
    requestReceivedTimestamp: opts.at ?? '2026-11-30T18:00:00.000001Z',
    objectRef: {
      ...(opts.group ? { apiGroup: opts.group } : {}),
      resource,
      ...(opts.ns ? { namespace: opts.ns } : {}),
      ...(opts.name ? { name: opts.name } : {}),
    },
    responseStatus: { code: opts.code ?? 200 },
    annotations: { 'authorization.k8s.io/decision': opts.decision ?? 'allow' },
  };
}

const usesOf = (events: AuditEvent[], rules: Parameters<typeof ruleUse>[1]) =>
  ruleUse(events, rules, [{ apiGroups: [''], resources: ['pods'], verbs: ['patch'] }]).map(
    (u) =>
      `${u.verb} ${u.resource}${u.namespace ? ` in ${u.namespace}` : ''}: ${u.uses}${u.grantOnly ? ' (grant)' : ''}`,
  );

describe('rbac audit', () => {
  it('counts a server-side apply that created as a use of patch and of create', () => {
    const events = [
      event('patch', 'services', { ns: 'a', code: 201 }),
      event('patch', 'services', { ns: 'a' }),
    ];
    expect(
      usesOf(events, [
        { apiGroups: [''], resources: ['services'], verbs: ['create', 'patch', 'delete'] },
      ]),
    ).toEqual(['create services: 1', 'patch services: 2', 'delete services: 0']);
  });

  it("counts a Role's rule only in its namespace and for its resourceNames", () => {
    const events = [
      event('get', 'secrets', { ns: 'home', name: 'ca' }),
      event('get', 'secrets', { ns: 'other', name: 'ca' }),
      event('update', 'secrets', { ns: 'home', name: 'not-the-ca' }),
    ];
    expect(
      usesOf(events, [
        {
          apiGroups: [''],
          resources: ['secrets'],
          resourceNames: ['ca'],
          verbs: ['get', 'update'],
          namespace: 'home',
        },
      ]),
    ).toEqual(['get secrets in home: 1', 'update secrets in home: 0']);
  });

  it('counts only allowed requests, tells refusals apart, and marks grant-only rights', () => {
    const denied = event('delete', 'pods', { ns: 'a', code: 403, decision: 'forbid' });
    expect(
      usesOf([denied], [{ apiGroups: [''], resources: ['pods'], verbs: ['delete', 'patch'] }]),
    ).toEqual(['delete pods: 0', 'patch pods: 0 (grant)']);
    expect(refused([denied, event('get', 'pods', { code: 404 })])).toEqual([denied]);
  });

  it("keeps one user's events in a window given to the microsecond", () => {
    const events = [
      event('list', 'pods', { at: '2026-11-30T18:00:00.999999Z' }),
      event('list', 'pods', { at: '2026-11-30T18:00:01.000001Z' }),
      event('list', 'pods', { at: '2026-11-30T18:00:02.000000Z', user: 'admin' }),
    ];
    expect(eventsOf(events, op, new Date('2026-11-30T18:00:01.000Z'))).toEqual([events[1]]);
    expect(eventsOf(events, /^system:serviceaccount:/)).toHaveLength(2);
  });
});
