// Where the API server is and who we are: a kubeconfig (KUBECONFIG's first file, else
// ~/.kube/config) or, inside a pod, the service account. @kubernetes/client-node's KubeConfig
// does this too, but importing it loads its whole generated API (~50 MiB of heap), which is
// a third of the operator's memory budget. Exec plugins and auth providers are delegated to
// it, loaded only when a kubeconfig asks for them.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import yaml from 'js-yaml';

export interface Connection {
  readonly server: string;
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly insecure?: boolean;
  readonly tlsServerName?: string;
  /** Bearer token, re-read on every request when it lives in a file (projected tokens rotate). */
  readonly token?: () => string | undefined;
  /** For exec plugins and auth providers: headers computed by @kubernetes/client-node. */
  readonly authHeaders?: () => Promise<Record<string, string>>;
}

type Json = Record<string, unknown>;

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

const named = (list: unknown, name: string, key: string): Json | undefined =>
  ((list ?? []) as Json[]).find((e) => e['name'] === name)?.[key] as Json | undefined;

function fileOrData(base: string, file: unknown, data: unknown): Buffer | undefined {
  if (typeof data === 'string' && data !== '') return Buffer.from(data, 'base64');
  if (typeof file === 'string' && file !== '')
    return readFileSync(isAbsolute(file) ? file : join(base, file));
  return undefined;
}

export function inClusterConnection(): Connection | undefined {
  const host = process.env['KUBERNETES_SERVICE_HOST'];
  const port = process.env['KUBERNETES_SERVICE_PORT'];
  if (!host || !port || !existsSync(join(SA_DIR, 'token'))) return undefined;
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    ca: readFileSync(join(SA_DIR, 'ca.crt')),
    token: () => readFileSync(join(SA_DIR, 'token'), 'utf8').trim(),
  };
}

export async function kubeconfigConnection(path: string): Promise<Connection> {
  const base = dirname(path);
  const doc = (yaml.load(readFileSync(path, 'utf8')) ?? {}) as Json;
  const contextName = String(doc['current-context'] ?? '');
  const context = named(doc['contexts'], contextName, 'context') ?? {};
  const cluster = named(doc['clusters'], String(context['cluster'] ?? ''), 'cluster');
  const user = named(doc['users'], String(context['user'] ?? ''), 'user') ?? {};
  if (!cluster || typeof cluster['server'] !== 'string') {
    throw new Error(`${path}: context "${contextName}" names no cluster with a server`);
  }
  const tokenFile = user['tokenFile'];
  const conn: Connection = {
    server: cluster['server'],
    ...optional(
      'ca',
      fileOrData(base, cluster['certificate-authority'], cluster['certificate-authority-data']),
    ),
    ...optional(
      'cert',
      fileOrData(base, user['client-certificate'], user['client-certificate-data']),
    ),
    ...optional('key', fileOrData(base, user['client-key'], user['client-key-data'])),
    ...(cluster['insecure-skip-tls-verify'] === true ? { insecure: true } : {}),
    ...(typeof cluster['tls-server-name'] === 'string'
      ? { tlsServerName: cluster['tls-server-name'] }
      : {}),
    ...(typeof user['token'] === 'string'
      ? { token: () => user['token'] as string }
      : typeof tokenFile === 'string'
        ? { token: () => readFileSync(tokenFile, 'utf8').trim() }
        : {}),
  };
  if (user['exec'] || user['auth-provider'] || user['username']) {
    const { KubeConfig } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    kc.loadFromFile(path);
    return {
      ...conn,
      authHeaders: async () => {
        const opts: { headers?: Record<string, unknown>; auth?: string } = {};
        await kc.applyToHTTPSOptions(opts as Parameters<typeof kc.applyToHTTPSOptions>[0]);
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(opts.headers ?? {})) headers[k] = String(v);
        if (opts.auth)
          headers['Authorization'] = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
        return headers;
      },
    };
  }
  return conn;
}

const optional = <K extends string>(key: K, value: Buffer | undefined): { [P in K]?: Buffer } =>
  (value === undefined ? {} : { [key]: value }) as { [P in K]?: Buffer };

/** KUBECONFIG (first file) or ~/.kube/config; else the in-cluster service account. */
export async function loadConnection(kubeconfigPath?: string): Promise<Connection> {
  const fromEnv = process.env['KUBECONFIG']?.split(delimiter).find((p) => p !== '');
  const path = kubeconfigPath ?? fromEnv;
  if (path) return kubeconfigConnection(path);
  const inCluster = inClusterConnection();
  if (inCluster) return inCluster;
  const home = join(homedir(), '.kube', 'config');
  if (existsSync(home)) return kubeconfigConnection(home);
  throw new Error('no kubeconfig: set KUBECONFIG, or run in a pod');
}

/**
 * The namespace kubectl would use without -n: the current context's (KUBECONFIG's first file,
 * else ~/.kube/config), in a pod its service account's; undefined when none is named.
 */
export function contextNamespace(kubeconfigPath?: string): string | undefined {
  const fromEnv = process.env['KUBECONFIG']?.split(delimiter).find((p) => p !== '');
  let path = kubeconfigPath ?? fromEnv;
  if (path === undefined && inClusterConnection()) {
    const ns = readFileSync(join(SA_DIR, 'namespace'), 'utf8').trim();
    return ns === '' ? undefined : ns;
  }
  path ??= join(homedir(), '.kube', 'config');
  if (!existsSync(path)) return undefined;
  const doc = (yaml.load(readFileSync(path, 'utf8')) ?? {}) as Json;
  const context = named(doc['contexts'], String(doc['current-context'] ?? ''), 'context') ?? {};
  const ns = context['namespace'];
  return typeof ns === 'string' && ns !== '' ? ns : undefined;
}
