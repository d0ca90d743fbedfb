import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  CA_VALIDITY_DAYS,
  SERVER_VALIDITY_DAYS,
  caRenewalReason,
  certInfo,
  issueCa,
  issueServerCert,
  renewalReason,
  signedBy,
} from './x509.ts';

const DAY = 86_400_000;
const now = new Date('2026-11-30T12:00:00Z');
const names = ['shop-db-0.ns.svc', '*.shop-db-0-hl.ns.svc', 'localhost'];

describe('x509', () => {
  it('issues an ECDSA P-256 CA that may sign server certificates only', async () => {
    const ca = await issueCa('test CA', now);
    const c = new X509Certificate(ca.cert);
    expect(c.ca).toBe(true);
    expect(c.subject).toBe('CN=test CA');
    expect(c.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(c.checkIssued(c)).toBe(true);
    expect(createPrivateKey(ca.key).asymmetricKeyType).toBe('ec');
    // Two years, not ten (issue 36).
    expect(CA_VALIDITY_DAYS).toBe(730);
    expect((new Date(c.validTo).getTime() - now.getTime()) / DAY).toBeCloseTo(730, 0);
  });

  it('renews a CA two thirds through its life, or when a rotation is asked for', async () => {
    const ca = await issueCa('test CA', now);
    expect(caRenewalReason(undefined, now)).toBe('no CA yet');
    expect(caRenewalReason(ca.cert, now)).toBeUndefined();
    expect(caRenewalReason(ca.cert, now, true)).toBe('a rotation was asked for');
    expect(caRenewalReason(ca.cert, new Date(now.getTime() + 480 * DAY))).toBeUndefined();
    expect(caRenewalReason(ca.cert, new Date(now.getTime() + 490 * DAY))).toMatch(
      /^the CA expires /,
    );
  });

  it('issues server certificates for server authentication only (no clientAuth)', async () => {
    const ca = await issueCa('test CA', now);
    const c = new X509Certificate((await issueServerCert(ca, names, now)).cert);
    expect(c.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
  });

  it('issues a server certificate for the names, signed by the CA, with a matching key', async () => {
    const ca = await issueCa('test CA', now);
    const s = await issueServerCert(ca, names, now);
    const c = new X509Certificate(s.cert);
    expect(c.ca).toBe(false);
    expect(signedBy(s.cert, ca.cert)).toBe(true);
    expect(c.checkHost('shop-db-0.ns.svc')).toBe('shop-db-0.ns.svc');
    expect(c.checkHost('shop-db-0-1.shop-db-0-hl.ns.svc')).toBeDefined();
    expect(c.checkHost('shop-db-1.ns.svc')).toBeUndefined();
    expect(c.checkPrivateKey(createPrivateKey(s.key))).toBe(true);
    const info = certInfo(s.cert);
    expect(info?.dnsNames).toEqual(names);
    expect((info!.notAfter.getTime() - now.getTime()) / DAY).toBeCloseTo(SERVER_VALIDITY_DAYS, 0);
    // Another CA's certificate is not this CA's.
    const other = await issueCa('other CA', now);
    expect(signedBy(s.cert, other.cert)).toBe(false);
    expect(createPublicKey(s.key).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  });

  it('renews when there is none, the names or the CA changed, or two thirds of its life are gone', async () => {
    const ca = await issueCa('test CA', now);
    const s = await issueServerCert(ca, names, now);
    expect(renewalReason(undefined, ca.cert, names, now)).toBe('no certificate yet');
    expect(renewalReason('not a pem', ca.cert, names, now)).toBe('no certificate yet');
    expect(renewalReason(s.cert, ca.cert, [...names].reverse(), now)).toBeUndefined();
    expect(renewalReason(s.cert, ca.cert, names.slice(1), now)).toBe('the DNS names changed');
    const other = await issueCa('other CA', now);
    expect(renewalReason(s.cert, other.cert, names, now)).toBe('the CA changed');
    expect(
      renewalReason(s.cert, ca.cert, names, new Date(now.getTime() + 59 * DAY)),
    ).toBeUndefined();
    expect(renewalReason(s.cert, ca.cert, names, new Date(now.getTime() + 61 * DAY))).toMatch(
      /^it expires /,
    );
  });

  it('puts IP addresses in IP SANs', async () => {
    const ca = await issueCa('test CA', now);
    const s = await issueServerCert(ca, ['localhost', '127.0.1.10'], now);
    const c = new X509Certificate(s.cert);
    expect(c.checkIP('127.0.1.10')).toBe('127.0.1.10');
    expect(c.checkIP('127.0.1.11')).toBeUndefined();
    expect(certInfo(s.cert)?.dnsNames).toEqual(['localhost', '127.0.1.10']);
  });

  it('refuses to issue for no name', async () => {
    const ca = await issueCa('test CA', now);
    await expect(issueServerCert(ca, [], now)).rejects.toThrow(/no DNS names/);
  });
});
