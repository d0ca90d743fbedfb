// When cert-manager (cert-manager.io/v1) is served it issues and renews the certificates:
// one Certificate per server Secret, from the Issuer the user names or, by default, a CA of
// the app's own (a self-signed Issuer signs a CA Certificate, a CA Issuer signs from it). The
// objects are always rendered; the reconciler skips them when the API is not served, and then
// issues into the same Secrets itself (objects.ts, TLS_UNLESS_SERVED_ANNOTATION). Per app
// rather than per namespace: two apps in one namespace never share a CA or fight over it.
import type { AppModel } from '../../../api/model.ts';
import type { K8sObject } from '../chart.ts';
import { IF_SERVED_ANNOTATION, metadataOf, nameOf } from '../meta.ts';
import type { TierName } from '../meta.ts';
import { SERVER_VALIDITY_DAYS } from './x509.ts';
import { tlsSecretName } from './objects.ts';

export const CERT_MANAGER_API = 'cert-manager.io/v1';

export interface IssuerRef {
  readonly name: string;
  readonly kind: 'Issuer' | 'ClusterIssuer';
}

export const selfSignedIssuerName = (app: Pick<AppModel, 'name'>): string =>
  nameOf(app, 'tls', 'selfsigned');
export const caIssuerName = (app: Pick<AppModel, 'name'>): string => nameOf(app, 'tls', 'ca');

/**
 * The tier that declares the app's CA objects: each is one object per app, and every tier
 * with TLS but no Issuer of the user's signs from it. The first of those tiers, in a fixed
 * order, so exactly one declares them while any needs them.
 */
export function appCaOwner(app: AppModel): TierName | undefined {
  if (app.database?.tls && !app.database.certificateIssuer) return 'database';
  if (app.cache?.tls) return 'cache';
  if (app.sessions?.tls) return 'sessions';
  if (app.queue?.tls) return 'queue';
  return undefined;
}

/** Without cert-manager the operator issues into the same Secrets: nothing is missing. */
const meta = (app: AppModel, tier: TierName, name: string, component: string) =>
  metadataOf(app, tier, name, component, { annotations: { [IF_SERVED_ANNOTATION]: 'true' } });

const privateKey = { algorithm: 'ECDSA', size: 256, encoding: 'PKCS8', rotationPolicy: 'Always' };

/** The app's own CA: a self-signed Issuer, the CA Certificate it signs, a CA Issuer. */
export function appCaObjects(app: AppModel, tier: TierName, component: string): K8sObject[] {
  const ca = caIssuerName(app);
  return [
    {
      apiVersion: CERT_MANAGER_API,
      kind: 'Issuer',
      metadata: meta(app, tier, selfSignedIssuerName(app), component),
      spec: { selfSigned: {} },
    },
    {
      apiVersion: CERT_MANAGER_API,
      kind: 'Certificate',
      metadata: meta(app, tier, ca, component),
      spec: {
        isCA: true,
        commonName: `${app.name} CA`,
        secretName: ca,
        duration: '87600h',
        privateKey,
        issuerRef: { name: selfSignedIssuerName(app), kind: 'Issuer', group: 'cert-manager.io' },
      },
    },
    {
      apiVersion: CERT_MANAGER_API,
      kind: 'Issuer',
      metadata: meta(app, tier, ca, component),
      spec: { ca: { secretName: ca } },
    },
  ];
}

/** A server Certificate into the Secret the pods mount, renewed a third before it expires. */
export function serverCertificate(
  app: AppModel,
  tier: TierName,
  base: string,
  dnsNames: readonly string[],
  issuer: IssuerRef | undefined,
  component: string,
): K8sObject {
  const ref = issuer ?? { name: caIssuerName(app), kind: 'Issuer' };
  return {
    apiVersion: CERT_MANAGER_API,
    kind: 'Certificate',
    metadata: meta(app, tier, base, component),
    spec: {
      secretName: tlsSecretName(base),
      commonName: dnsNames[0],
      dnsNames: [...dnsNames],
      duration: `${SERVER_VALIDITY_DAYS * 24}h`,
      renewBefore: `${(SERVER_VALIDITY_DAYS / 3) * 24}h`,
      privateKey,
      // No client auth: no peer asks for a client certificate (x509.ts issueServerCert).
      usages: ['digital signature', 'server auth'],
      issuerRef: { name: ref.name, kind: ref.kind, group: 'cert-manager.io' },
    },
  };
}
