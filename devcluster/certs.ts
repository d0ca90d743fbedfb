// The cluster's PKI, made with the openssl CLI (node:crypto can sign nothing): a CA, the API
// server's serving cert, an admin client cert in system:masters and a service-account key pair.
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './exec.ts';

export interface CertPaths {
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  adminCert: string;
  adminKey: string;
  saKey: string;
  saPub: string;
}

export function certPaths(dir: string): CertPaths {
  const p = (f: string) => join(dir, f);
  return {
    caCert: p('ca.crt'),
    caKey: p('ca.key'),
    serverCert: p('apiserver.crt'),
    serverKey: p('apiserver.key'),
    adminCert: p('admin.crt'),
    adminKey: p('admin.key'),
    saKey: p('sa.key'),
    saPub: p('sa.pub'),
  };
}

/** Names the API server answers to: loopback for us, the in-cluster names for pods' clients. */
export const SERVER_SANS = [
  'IP:127.0.0.1',
  'IP:10.96.0.1',
  'DNS:localhost',
  'DNS:kubernetes',
  'DNS:kubernetes.default',
  'DNS:kubernetes.default.svc',
  'DNS:kubernetes.default.svc.cluster.local',
];

export type KeyUsage = 'serverAuth' | 'clientAuth';

export function leafExtensions(
  usage: KeyUsage | readonly KeyUsage[],
  sans: readonly string[] = [],
): string {
  return [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    `extendedKeyUsage=${typeof usage === 'string' ? usage : usage.join(',')}`,
    ...(sans.length > 0 ? [`subjectAltName=${sans.join(',')}`] : []),
  ].join('\n');
}

const ecKey = (out: string) =>
  run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', out]);

async function signLeaf(
  paths: Pick<CertPaths, 'caCert' | 'caKey'>,
  key: string,
  cert: string,
  subject: string,
  extensions: string,
): Promise<void> {
  await ecKey(key);
  const { stdout: csr } = await run('openssl', ['req', '-new', '-key', key, '-subj', subject]);
  const ext = `${cert}.ext`;
  await writeFile(ext, extensions + '\n');
  await run(
    'openssl',
    [
      'x509',
      '-req',
      '-CA',
      paths.caCert,
      '-CAkey',
      paths.caKey,
      '-days',
      '3650',
      '-sha256',
      '-set_serial',
      `0x${randomBytes(12).toString('hex')}`,
      '-extfile',
      ext,
      '-out',
      cert,
    ],
    { input: csr },
  );
}

async function writeCa(paths: Pick<CertPaths, 'caCert' | 'caKey'>): Promise<void> {
  await ecKey(paths.caKey);
  await run('openssl', [
    'req',
    '-x509',
    '-new',
    '-key',
    paths.caKey,
    '-sha256',
    '-days',
    '3650',
    '-subj',
    '/CN=scalable-devcluster-ca',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,digitalSignature,keyCertSign,cRLSign',
    '-out',
    paths.caCert,
  ]);
}

/** Writes a fresh PKI into dir (about half a second). */
export async function generateCerts(dir: string): Promise<CertPaths> {
  const paths = certPaths(dir);
  await writeCa(paths);
  await Promise.all([
    signLeaf(
      paths,
      paths.serverKey,
      paths.serverCert,
      '/CN=kube-apiserver',
      leafExtensions('serverAuth', SERVER_SANS),
    ),
    signLeaf(
      paths,
      paths.adminKey,
      paths.adminCert,
      '/O=system:masters/CN=kubernetes-admin',
      leafExtensions('clientAuth'),
    ),
    run('openssl', [
      'genpkey',
      '-algorithm',
      'RSA',
      '-pkeyopt',
      'rsa_keygen_bits:2048',
      '-out',
      paths.saKey,
    ]).then(() => run('openssl', ['pkey', '-in', paths.saKey, '-pubout', '-out', paths.saPub])),
  ]);
  return paths;
}

export interface ClientTls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

export async function readClientTls(paths: CertPaths): Promise<ClientTls> {
  const [ca, cert, key] = await Promise.all(
    [paths.caCert, paths.adminCert, paths.adminKey].map((f) => readFile(f)),
  );
  return { ca: ca as Buffer, cert: cert as Buffer, key: key as Buffer };
}

export interface MutualTlsPaths {
  readonly caCert: string;
  readonly caKey: string;
  readonly cert: string;
  readonly key: string;
}

/**
 * A fresh CA and one certificate it signs for both ends of mutual TLS (serverAuth and
 * clientAuth) under `sans`: for servers that dial each other with the same certificate, as
 * KEDA's operator and its metrics adapter do with the one KEDA's own rotator makes.
 */
export async function generateMutualTlsCerts(
  dir: string,
  commonName: string,
  sans: readonly string[],
): Promise<MutualTlsPaths> {
  const paths = { caCert: join(dir, 'ca.crt'), caKey: join(dir, 'ca.key') };
  await writeCa(paths);
  const cert = join(dir, 'tls.crt');
  const key = join(dir, 'tls.key');
  await signLeaf(
    paths,
    key,
    cert,
    `/CN=${commonName}`,
    leafExtensions(['serverAuth', 'clientAuth'], sans),
  );
  return { ...paths, cert, key };
}
