import { describe, expect, it } from 'vitest';
import type { K8sObject } from '../tiers/shared/chart.ts';
import { TLS_DNS_NAMES_ANNOTATION } from '../tiers/shared/tls/objects.ts';
import { issueCa, issueServerCert, joinBundle, signedBy } from '../tiers/shared/tls/x509.ts';
import type { KeyPair } from '../tiers/shared/tls/x509.ts';
import { TRUST_HOLD_MS, issuePlan } from './certificates.ts';
import type { AppCas, IssuePlan } from './certificates.ts';
import type { CachedChild } from './project.ts';

const now = new Date('2026-12-01T12:00:00Z');
const later = (ms: number) => new Date(now.getTime() + ms);
const names = ['shop-db-0.ns.svc', 'localhost'];
const secret: K8sObject = {
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'shop-db-0-tls', annotations: { [TLS_DNS_NAMES_ANNOTATION]: names.join(',') } },
};
/** The record (public ConfigMap) as the cache holds it. */
const record = (cert: string, bundle: readonly string[]): CachedChild =>
  ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'shop-db-0-tls-public', namespace: 'ns', uid: 'u', resourceVersion: '1' },
    body: JSON.stringify({ data: { 'tls.crt': cert, 'ca.crt': joinBundle(bundle) } }),
  }) as unknown as CachedChild;

/** Runs the plan until it settles, as the reconciler would with time passing: the states. */
async function walk(start: CachedChild, cas: AppCas, labels: Record<string, KeyPair>) {
  const label = (pem: string) => Object.entries(labels).find(([, c]) => c.cert === pem)?.[0];
  const steps: string[] = [];
  let rec = start;
  let t = now;
  for (let i = 0; i < 6; i++) {
    const early = issuePlan(secret, rec, cas, t);
    t = new Date(t.getTime() + TRUST_HOLD_MS);
    const plan: IssuePlan | undefined = early ?? issuePlan(secret, rec, cas, t);
    if (!plan) break;
    const leaf = await issueServerCert(plan.signer, names, t);
    steps.push(`${label(plan.signer.cert)} [${plan.bundle.map(label).join(' ')}]`);
    rec = record(leaf.cert, plan.bundle);
  }
  return steps;
}

describe('issuePlan', () => {
  it('issues a new Secret from the app CA, trusted alone', async () => {
    const ca = await issueCa('shop CA', now);
    const plan = issuePlan(secret, undefined, { current: ca }, now);
    expect(plan).toEqual({ reason: 'no certificate yet', signer: ca, bundle: [ca.cert] });
  });

  it('moves an app off the shared CA in three steps, each after the hold', async () => {
    const shared = await issueCa('scalable-operator CA', now);
    const own = await issueCa('shop CA', now);
    const leaf = await issueServerCert(shared, names, now);
    const cas = { current: own, legacy: shared };
    // Step 1 at once: the new CA joins the bundle, the certificate still from the shared CA.
    expect(issuePlan(secret, record(leaf.cert, [shared.cert]), cas, now)).toMatchObject({
      signer: shared,
      bundle: [shared.cert, own.cert],
    });
    // Step 2 waits for the hold: before it, nothing is issued.
    const step1 = await issueServerCert(shared, names, now);
    const rec1 = record(step1.cert, [shared.cert, own.cert]);
    expect(issuePlan(secret, rec1, cas, later(TRUST_HOLD_MS / 2))).toBeUndefined();
    expect(issuePlan(secret, rec1, cas, later(TRUST_HOLD_MS))).toMatchObject({
      reason: "issued from the app's new CA",
      signer: own,
      bundle: [shared.cert, own.cert],
    });
    expect(await walk(record(leaf.cert, [shared.cert]), cas, { shared, own })).toEqual([
      'shared [shared own]',
      'own [shared own]',
      'own [own]',
    ]);
  });

  it('rotates through the same steps, and renews as before once settled', async () => {
    const old = await issueCa('shop CA 1', now);
    const next = await issueCa('shop CA 2', now);
    const leaf = await issueServerCert(old, names, now);
    const cas = { current: next, previous: old };
    expect(await walk(record(leaf.cert, [old.cert]), cas, { old, next })).toEqual([
      'old [old next]',
      'next [old next]',
      'next [next]',
    ]);
    const settled = await issueServerCert(next, names, now);
    expect(
      issuePlan(secret, record(settled.cert, [next.cert]), cas, later(59 * 86_400_000)),
    ).toBeUndefined();
    expect(
      issuePlan(secret, record(settled.cert, [next.cert]), cas, later(61 * 86_400_000))?.reason,
    ).toMatch(/^it expires /);
  });

  it('gives a certificate of a CA it does not hold (a replaced one) a fresh one at once', async () => {
    const theirs = await issueCa('someone CA', now);
    const own = await issueCa('shop CA', now);
    const leaf = await issueServerCert(theirs, names, now);
    const plan = issuePlan(secret, record(leaf.cert, [theirs.cert]), { current: own }, now);
    expect(plan).toEqual({ reason: 'the CA changed', signer: own, bundle: [own.cert] });
    expect(signedBy(leaf.cert, own.cert)).toBe(false);
  });
});
