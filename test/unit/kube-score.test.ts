// The lint step's judge: kube-score findings against the allow-list (test/lint).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { findingsOf, judge, parseAllowList } from '../lint/kube-score-findings.ts';

const scored = (kind: string, name: string, id: string, summary: string, path = '') =>
  JSON.stringify([
    {
      type_meta: { kind },
      object_meta: { name },
      checks: [
        {
          check: { id: 'stable-version', name: 'Stable version' },
          grade: 10,
          skipped: false,
          comments: null,
        },
        { check: { id, name: id }, grade: 1, skipped: false, comments: [{ path, summary }] },
        { check: { id: 'pod-probes', name: 'Pod Probes' }, grade: 1, skipped: true, comments: [] },
      ],
    },
  ]);

describe('kube-score findings', () => {
  it('keeps only graded, not skipped, checks', () => {
    const f = findingsOf(scored('Service', 'shop-db-0', 'service-targets-pod', 'no pods'));
    expect(f).toEqual([
      {
        check: 'service-targets-pod',
        kind: 'Service',
        name: 'shop-db-0',
        container: '',
        summary: 'no pods',
      },
    ]);
  });

  it('fails a finding the allow-list does not name, and an entry that matches nothing', () => {
    const allow = parseAllowList(
      '- {check: service-targets-pod, kind: Service, name: "-db-\\\\d+$", reason: "role-selected by Patroni at run time"}\n',
    );
    const ok = judge(findingsOf(scored('Service', 'shop-db-0', 'service-targets-pod', 'x')), allow);
    expect(ok).toEqual({ defects: [], unused: [] });
    const web = findingsOf(scored('Service', 'shop-web', 'service-targets-pod', 'x'));
    const bad = judge(web, allow);
    expect(bad.defects).toEqual(web);
    expect(bad.unused).toEqual(allow);
  });

  it('refuses an entry without a reason', () => {
    expect(() =>
      parseAllowList('- {check: container-resources, kind: Deployment, name: "-web$"}\n'),
    ).toThrow('allow-list entry 1 (container-resources): give a reason');
  });

  it('refuses an entry that does not name the kind and the objects it allows', () => {
    const reason = 'reason: "a decision, with its reason"';
    expect(() => parseAllowList(`- {check: container-image-pull-policy, ${reason}}\n`)).toThrow(
      'allow-list entry 1 (container-image-pull-policy): kind is required',
    );
    expect(() =>
      parseAllowList(`- {check: container-image-pull-policy, kind: Deployment, ${reason}}\n`),
    ).toThrow('allow-list entry 1 (container-image-pull-policy): name is required');
  });

  it('an entry allows its kind only', () => {
    const allow = parseAllowList(
      '- {check: service-targets-pod, kind: Service, name: "-db-0$", reason: "role-selected by Patroni at run time"}\n',
    );
    const pod = findingsOf(scored('Deployment', 'shop-db-0', 'service-targets-pod', 'x'));
    expect(judge(pod, allow).defects).toEqual(pod);
  });

  it('every entry of the real allow-list has a reason', () => {
    const text = readFileSync(new URL('../lint/kube-score-allow.yaml', import.meta.url), 'utf8');
    expect(parseAllowList(text).length).toBeGreaterThan(0);
  });
});
