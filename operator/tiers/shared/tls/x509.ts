// Certificates, as PEM text in and out: an ECDSA P-256 CA, server certificates it signs for a
// list of DNS names, and the renewal rule. @peculiar/x509 builds and signs them on Node's
// WebCrypto; node:crypto's X509Certificate reads them back (names, dates, issuer check).
// No I/O: the caller decides where keys live (reconcile/certificates.ts).
import { X509Certificate as NodeX509, createPrivateKey, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import type * as X509 from '@peculiar/x509';

/**
 * @peculiar/x509 (with its ASN.1 schemas and tsyringe, ~20 MiB of RSS) is loaded on first
 * issue, not with the builders: reading certificates back needs only node:crypto, and an
 * operator whose apps use no TLS never issues one.
 */
let library: Promise<typeof X509> | undefined;
const x509lib = (): Promise<typeof X509> =>
  // tsyringe, which resolves its algorithms, needs the Reflect metadata polyfill loaded first
  // (the library's documented requirement).
  (library ??= import('reflect-metadata').then(() => import('@peculiar/x509')));

type CryptoKey = webcrypto.CryptoKey;
const crypto = webcrypto;
const EC: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGN: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const DAY = 86_400_000;

/** A certificate and its private key (PKCS#8), both PEM. */
export interface KeyPair {
  readonly cert: string;
  readonly key: string;
}

/**
 * Two years, one CA per app (issue 36: one CA for every tenant, ten years, never rotated).
 * Renewed like a server certificate, once two thirds are gone (reconcile/certificates.ts
 * rotates it through a trust bundle that carries both CAs), so a CA key is in use for about
 * 16 months and a leaked one stops being trusted without anyone remembering to rotate it.
 */
export const CA_VALIDITY_DAYS = 730;
/** 90 days (as Let's Encrypt), renewed once two thirds are gone: 30 days of slack. */
export const SERVER_VALIDITY_DAYS = 90;
export const RENEW_AFTER_FRACTION = 2 / 3;
/** Clocks differ between the operator and the pods: certificates start an hour early. */
export const BACKDATE_MS = 3_600_000;

async function keyPair(): Promise<webcrypto.CryptoKeyPair> {
  return crypto.subtle.generateKey(EC, true, ['sign', 'verify']);
}

async function pkcs8(x509: typeof X509, key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await crypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

async function importKey(pem: string): Promise<CryptoKey> {
  const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  return crypto.subtle.importKey('pkcs8', der, EC, false, ['sign']);
}

/** A self-signed CA (pathLen 0: it signs server certificates, never another CA). */
export async function issueCa(commonName: string, now: Date): Promise<KeyPair> {
  const x509 = await x509lib();
  const keys = await keyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      name: `CN=${commonName}`,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + CA_VALIDITY_DAYS * DAY),
      keys,
      signingAlgorithm: SIGN,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { cert: cert.toString('pem'), key: await pkcs8(x509, keys.privateKey) };
}

/**
 * A server certificate for `dnsNames` (the first is the subject's CN), signed by `ca`. An
 * entry that is an IP address becomes an IP SAN (the engine tests connect by loopback IP).
 */
export async function issueServerCert(
  ca: KeyPair,
  dnsNames: readonly string[],
  now: Date,
): Promise<KeyPair> {
  const [first] = dnsNames;
  if (first === undefined) throw new Error('issueServerCert: no DNS names');
  // serverAuth only: no peer asks a server's key for a client certificate (Redis and
  // Sentinel run with tls-auth-clients no, Patroni's REST API sets no verify_client, pg_hba's
  // only cert lines are for the pooler's client certificate, replication and pg_rewind name
  // no sslcert), so a server key cannot log in as a client anywhere that checks them.
  return issueLeaf(ca, first, 'serverAuth', dnsNames, now);
}

/** A leaf certificate for one extended key usage, its names as SANs, signed by `ca`. */
async function issueLeaf(
  ca: KeyPair,
  commonName: string,
  usage: 'serverAuth' | 'clientAuth',
  names: readonly string[],
  now: Date,
): Promise<KeyPair> {
  const x509 = await x509lib();
  const caCert = new x509.X509Certificate(ca.cert);
  const keys = await keyPair();
  const cert = await x509.X509CertificateGenerator.create(
    {
      subject: `CN=${commonName}`,
      issuer: caCert.subject,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + SERVER_VALIDITY_DAYS * DAY),
      publicKey: keys.publicKey,
      signingKey: await importKey(ca.key),
      signingAlgorithm: SIGN,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage[usage]], false),
        new x509.SubjectAlternativeNameExtension(
          names.map((value) => ({
            type: isIP(value) ? ('ip' as const) : ('dns' as const),
            value,
          })),
          false,
        ),
        await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { cert: cert.toString('pem'), key: await pkcs8(x509, keys.privateKey) };
}

/**
 * A client certificate for `commonName` (a Postgres role: pg_hba `cert` compares the CN
 * with the user name), clientAuth only, so it can serve nowhere. Signed by `ca`.
 */
export async function issueClientCert(
  ca: KeyPair,
  commonName: string,
  now: Date,
): Promise<KeyPair> {
  // The CN as a SAN too: the renewal rule compares a certificate's names.
  return issueLeaf(ca, commonName, 'clientAuth', [commonName], now);
}

/** What the renewal rule needs to know about a certificate. */
export interface CertInfo {
  readonly dnsNames: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly serial: string;
  /** When it was issued (notBefore is backdated by BACKDATE_MS). */
  readonly issuedAt: Date;
}

/** Reads a PEM certificate; undefined when it is not one. */
export function certInfo(pem: string | undefined): CertInfo | undefined {
  if (!pem) return undefined;
  try {
    const c = new NodeX509(pem);
    const dnsNames = (c.subjectAltName ?? '')
      .split(', ')
      .filter((s) => s.startsWith('DNS:') || s.startsWith('IP Address:'))
      .map((s) => s.slice(s.indexOf(':') + 1));
    return {
      dnsNames,
      notBefore: new Date(c.validFrom),
      notAfter: new Date(c.validTo),
      serial: c.serialNumber,
      issuedAt: new Date(new Date(c.validFrom).getTime() + BACKDATE_MS),
    };
  } catch {
    return undefined;
  }
}

/** Whether `cert` was signed by the CA certificate `caPem`. */
export function signedBy(cert: string, caPem: string): boolean {
  try {
    const ca = new NodeX509(caPem);
    const c = new NodeX509(cert);
    return c.checkIssued(ca) && c.verify(ca.publicKey);
  } catch {
    return false;
  }
}

/**
 * Why a (new) certificate is needed, or undefined when the current one serves: none yet,
 * other names, another CA, or two thirds of its life gone.
 */
export function renewalReason(
  current: string | undefined,
  caPem: string,
  dnsNames: readonly string[],
  now: Date,
): string | undefined {
  const info = certInfo(current);
  if (!info || !current) return 'no certificate yet';
  const want = [...dnsNames].sort().join(',');
  if ([...info.dnsNames].sort().join(',') !== want) return 'the DNS names changed';
  if (!signedBy(current, caPem)) return 'the CA changed';
  const life = info.notAfter.getTime() - info.notBefore.getTime();
  const renewAt = info.notBefore.getTime() + life * RENEW_AFTER_FRACTION;
  if (now.getTime() >= renewAt) return `it expires ${info.notAfter.toISOString()}`;
  return undefined;
}

/**
 * Why a CA needs a successor now, or undefined: none yet, unreadable, two thirds of its life
 * gone, or a rotation asked for (the app's annotation changed since this CA was made).
 */
export function caRenewalReason(
  caPem: string | undefined,
  now: Date,
  rotationAsked = false,
): string | undefined {
  const info = certInfo(caPem);
  if (!info) return 'no CA yet';
  if (rotationAsked) return 'a rotation was asked for';
  const life = info.notAfter.getTime() - info.notBefore.getTime();
  const renewAt = info.notBefore.getTime() + life * RENEW_AFTER_FRACTION;
  if (now.getTime() >= renewAt) return `the CA expires ${info.notAfter.toISOString()}`;
  return undefined;
}

/** The certificates of a PEM bundle (ca.crt may hold more than one during a rotation). */
export function splitBundle(pem: string | undefined): string[] {
  return (
    (pem ?? '').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? []
  );
}

/** One certificate as it is; more, one per line block (what OpenSSL and Node read). */
export const joinBundle = (certs: readonly string[]): string =>
  certs.length === 1 && certs[0] !== undefined
    ? certs[0]
    : certs.map((c) => `${c.trim()}\n`).join('');
