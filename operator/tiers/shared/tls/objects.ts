// What a data tier declares to get TLS: a Secret for its server key pair and the CA
// (tls.crt, tls.key, ca.crt: the layout cert-manager writes too), and a ConfigMap recording
// the public half. Builders stay pure: the Secret is declared without data and the
// reconciler issues into it (reconcile/certificates.ts), as it fills generated passwords,
// unless cert-manager is served (then a Certificate fills it: cert-manager.ts). The record
// exists because the operator may not read Secrets: a certificate is not a secret, so it
// reads the ConfigMap to decide renewal. Pods mount the CA from the Secret, one key only
// (items: ca.crt), so the same volumes serve whoever issued.
import type { AppModel } from '../../../api/model.ts';
import type { K8sObject } from '../chart.ts';
import { metadataOf } from '../meta.ts';
import type { TierName } from '../meta.ts';

/** On the declared Secret: the DNS names its certificate must carry, comma-separated. */
export const TLS_DNS_NAMES_ANNOTATION = 'scalable.dev/tls-dns-names';
/** On the declared Secret: the ConfigMap that receives the public half. */
export const TLS_PUBLIC_ANNOTATION = 'scalable.dev/tls-public';
/** On the declared Secret: the API whose Certificate fills it when served (cert-manager). */
export const TLS_UNLESS_SERVED_ANNOTATION = 'scalable.dev/tls-unless-served';

/**
 * On the declared Secret: issue a client certificate (clientAuth only) for the first DNS
 * name, a Postgres role that logs in with it (pg_hba `cert`), instead of a server one.
 */
export const TLS_CLIENT_ANNOTATION = 'scalable.dev/tls-client';

/** File names inside both objects (cert-manager's and kubernetes.io/tls's). */
export const TLS_FILES = { cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt' } as const;

/** Where server pods mount their key pair, and every pod mounts the CA. */
export const SERVER_TLS_DIR = '/etc/scalable/tls';
export const CA_DIR = '/etc/scalable/ca';
export const CA_FILE = `${CA_DIR}/${TLS_FILES.ca}`;

export const tlsSecretName = (base: string): string => `${base}-tls`;
export const tlsPublicName = (base: string): string => `${base}-tls-public`;

/**
 * The names a client may use for a Service: <svc>.<ns>.svc (what the app is handed) and the
 * fully qualified form; `pods` adds a wildcard for the pods behind a headless Service.
 */
export function serviceDnsNames(
  app: Pick<AppModel, 'namespace'>,
  service: string,
  pods = false,
): string[] {
  const base = `${service}.${app.namespace}.svc`;
  const names = [base, `${base}.cluster.local`];
  return pods ? names.flatMap((n) => [n, `*.${n}`]) : names;
}

/**
 * `localhost` too: the exporters connect over loopback and verify the name like any client
 * (redis_exporter rediss://localhost, postgres_exporter sslmode=verify-full to localhost).
 * Only that app's clients trust it: each app has its own CA (reconcile/certificates.ts).
 */
export const LOCALHOST = 'localhost';

/** The Secret (server key pair, issued by the reconciler) and the ConfigMap (public half). */
export function serverTlsObjects(
  app: AppModel,
  tier: TierName,
  base: string,
  dnsNames: readonly string[],
  component: string = tier,
): K8sObject[] {
  return [
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: metadataOf(app, tier, tlsSecretName(base), component, {
        annotations: {
          [TLS_DNS_NAMES_ANNOTATION]: dnsNames.join(','),
          [TLS_PUBLIC_ANNOTATION]: tlsPublicName(base),
          [TLS_UNLESS_SERVED_ANNOTATION]: 'cert-manager.io/v1',
        },
      }),
      type: 'Opaque',
    },
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: metadataOf(app, tier, tlsPublicName(base), component),
    },
  ];
}

export const tlsDnsNamesOf = (obj: K8sObject): string[] =>
  (obj.metadata.annotations?.[TLS_DNS_NAMES_ANNOTATION] ?? '').split(',').filter(Boolean);

/**
 * Volumes of a server pod: its key pair (0640, group = the pod's fsGroup: Postgres accepts
 * a root-owned key readable by its group, and refuses one readable by others).
 */
export function serverTlsVolumes(base: string) {
  return [
    {
      name: 'tls',
      secret: { secretName: tlsSecretName(base), defaultMode: 0o640 },
    },
    { name: 'tls-ca', secret: { secretName: tlsSecretName(base), items: [caItem] } },
  ];
}

const caItem = { key: TLS_FILES.ca, path: TLS_FILES.ca };

export const serverTlsMounts = [
  { name: 'tls', mountPath: SERVER_TLS_DIR, readOnly: true },
  { name: 'tls-ca', mountPath: CA_DIR, readOnly: true },
];

/** What an app pod gets: the CA only, one key of the server's Secret (volume name per tier). */
export function caWiring(volume: string, base: string) {
  return {
    volumes: [{ name: volume, secret: { secretName: tlsSecretName(base), items: [caItem] } }],
    volumeMounts: [{ name: volume, mountPath: `${CA_DIR}/${volume}`, readOnly: true }],
  };
}

export const caFileOf = (volume: string): string => `${CA_DIR}/${volume}/${TLS_FILES.ca}`;
