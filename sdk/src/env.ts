// The injected env, read once into typed settings. Pure: a plain record in, settings out,
// so every default and every bad value is testable without touching process.env. Only the
// names in the contract can be read (the `name` parameters are typed by it).
import type { AppEnvName, OperatorEnvName } from './contract/index.ts';

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * A Redis reached by URL, or through Sentinels that name the current master. `tls`: connect
 * over TLS and verify the server (chain and name), against `caFile` when given.
 */
export type RedisTarget =
  | {
      readonly kind: 'url';
      readonly url: string;
      readonly username?: string;
      readonly password?: string;
      readonly tls?: RedisTls;
    }
  | {
      readonly kind: 'sentinel';
      readonly sentinels: readonly { host: string; port: number }[];
      readonly masterName: string;
      readonly username?: string;
      readonly password?: string;
      readonly tls?: RedisTls;
    };

export interface RedisTls {
  /** The CA certificate file (PEM); absent: the system's CAs. */
  readonly caFile?: string;
}

export interface DatabaseSettings {
  /** Path of the mounted shard map; absent only for apps without a database tier. */
  readonly shardMapPath: string;
  readonly database: string;
  readonly user: string;
  readonly password?: string;
  /** Connections per pool (each shard has a primary and a replica pool). */
  readonly poolMax: number;
  /** Opt-in: reads go to the primary while a replica lags more than this. */
  readonly replicaMaxLagSeconds?: number;
  /** How long a replica connect may take before the read goes to the primary (1000). */
  readonly replicaConnectTimeoutMs: number;
  /** TLS as libpq's sslmode names it; absent: plain (the database's `tls: false`). */
  readonly tls?: TlsSettings;
}

export const SSL_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

export interface TlsSettings {
  readonly mode: SslMode;
  /** The CA certificate file (verify-ca and verify-full). */
  readonly caFile?: string;
}

export interface QueueSettings {
  readonly redis: RedisTarget;
  /** Worker pods only: what this consumer reads, who it is, where failures go. */
  readonly stream?: string;
  readonly group?: string;
  readonly consumer?: string;
  readonly deadLetterStream?: string;
  readonly maxDeliveries: number;
  /** Default MAXLEN ~ for enqueue (the stream's retention); absent: no trimming. */
  readonly maxLength?: number;
  readonly concurrency: number;
  readonly claimIdleMs: number;
}

export interface Settings {
  readonly app?: string;
  readonly database?: DatabaseSettings;
  readonly cache?: { readonly redis: RedisTarget; readonly ttlSeconds: number };
  readonly sessions?: {
    readonly redis: RedisTarget;
    readonly ttlSeconds: number;
    readonly secret?: string;
  };
  readonly queue?: QueueSettings;
}

export class EnvError extends Error {
  override name = 'EnvError';
}

const read = (env: Env, name: OperatorEnvName | AppEnvName): string | undefined => {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
};

function required(env: Env, name: OperatorEnvName, why: string): string {
  const v = read(env, name);
  if (v === undefined) throw new EnvError(`${name} is not set (${why})`);
  return v;
}

function positive(
  env: Env,
  name: OperatorEnvName | AppEnvName,
  fallback: number,
  integer = true,
): number {
  const v = read(env, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n)))
    throw new EnvError(`${name} must be a positive ${integer ? 'integer' : 'number'} (got "${v}")`);
  return n;
}

/** DATABASE_SSLMODE and DATABASE_SSLROOTCERT; verifying modes need the CA file. */
function databaseTls(env: Env): TlsSettings | undefined {
  const mode = read(env, 'DATABASE_SSLMODE');
  if (mode === undefined || mode === 'disable') return undefined;
  if (!(SSL_MODES as readonly string[]).includes(mode))
    throw new EnvError(`DATABASE_SSLMODE must be one of ${SSL_MODES.join(', ')} (got "${mode}")`);
  const caFile = read(env, 'DATABASE_SSLROOTCERT');
  if (mode !== 'require' && caFile === undefined)
    throw new EnvError(`DATABASE_SSLROOTCERT is not set (DATABASE_SSLMODE is ${mode})`);
  return { mode: mode as SslMode, ...(caFile === undefined ? {} : { caFile }) };
}

/** "host:port,host:port" as the operator renders Sentinel addresses. */
export function parseHostPorts(name: string, text: string): { host: string; port: number }[] {
  return text.split(',').map((part) => {
    const at = part.trim().lastIndexOf(':');
    const port = Number(part.slice(at + 1));
    if (at <= 0 || !Number.isInteger(port)) throw new EnvError(`${name}: bad address "${part}"`);
    return { host: part.trim().slice(0, at), port };
  });
}

function redisTarget(
  env: Env,
  names: {
    url: OperatorEnvName;
    username: OperatorEnvName;
    password: OperatorEnvName;
    sentinels?: OperatorEnvName;
    master?: OperatorEnvName;
    ca: OperatorEnvName;
  },
): RedisTarget | undefined {
  const password = read(env, names.password);
  const username = read(env, names.username);
  const auth = { ...(username ? { username } : {}), ...(password ? { password } : {}) };
  const url = read(env, names.url);
  const sentinels = names.sentinels && read(env, names.sentinels);
  const caFile = read(env, names.ca);
  const ca = caFile === undefined ? {} : { caFile };
  if (url) {
    // The scheme says TLS; a CA for a plain URL would be silently unused.
    const tls = /^rediss:\/\//i.test(url);
    if (!tls && caFile !== undefined)
      throw new EnvError(`${names.ca} is set but ${names.url} is not a rediss:// URL`);
    return { kind: 'url', url, ...auth, ...(tls ? { tls: ca } : {}) };
  }
  if (sentinels && names.sentinels && names.master) {
    return {
      kind: 'sentinel',
      sentinels: parseHostPorts(names.sentinels, sentinels),
      masterName: required(env, names.master, `${names.sentinels} is set`),
      ...auth,
      // Sentinel addresses carry no scheme: the operator hands a CA exactly when it is TLS.
      ...(caFile === undefined ? {} : { tls: ca }),
    };
  }
  return undefined;
}

/** Everything the SDK needs, from the env the operator injects; a tier it left out is absent. */
export function settingsFromEnv(env: Env): Settings {
  const shardMapPath = read(env, 'DATABASE_SHARD_MAP');
  const cacheRedis = redisTarget(env, {
    url: 'REDIS_URL',
    username: 'REDIS_USERNAME',
    password: 'REDIS_PASSWORD',
    sentinels: 'REDIS_SENTINELS',
    master: 'REDIS_MASTER_NAME',
    ca: 'REDIS_SSLROOTCERT',
  });
  const sessionRedis = redisTarget(env, {
    url: 'SESSION_REDIS_URL',
    username: 'SESSION_REDIS_USERNAME',
    password: 'SESSION_REDIS_PASSWORD',
    ca: 'SESSION_REDIS_SSLROOTCERT',
  });
  const queueRedis = redisTarget(env, {
    url: 'QUEUE_URL',
    username: 'QUEUE_USERNAME',
    password: 'QUEUE_PASSWORD',
    sentinels: 'QUEUE_SENTINELS',
    master: 'QUEUE_MASTER_NAME',
    ca: 'QUEUE_SSLROOTCERT',
  });
  const lag = read(env, 'DATABASE_REPLICA_MAX_LAG_SECONDS');
  const dbTls = shardMapPath === undefined ? undefined : databaseTls(env);
  const app = read(env, 'SCALABLE_APP');
  const secret = read(env, 'SESSION_SECRET');
  const optional = <K extends string, V>(key: K, v: V | undefined) =>
    (v === undefined ? {} : { [key]: v }) as Partial<Record<K, V>>;
  return {
    ...optional('app', app),
    ...optional(
      'database',
      shardMapPath === undefined
        ? undefined
        : {
            shardMapPath,
            database: required(env, 'DATABASE_NAME', 'DATABASE_SHARD_MAP is set'),
            user: required(env, 'DATABASE_USER', 'DATABASE_SHARD_MAP is set'),
            ...optional('password', read(env, 'DATABASE_PASSWORD')),
            poolMax: positive(env, 'DATABASE_POOL_MAX', 10),
            replicaConnectTimeoutMs: positive(env, 'DATABASE_REPLICA_CONNECT_TIMEOUT_MS', 1_000),
            ...optional(
              'replicaMaxLagSeconds',
              lag === undefined
                ? undefined
                : positive(env, 'DATABASE_REPLICA_MAX_LAG_SECONDS', 0, false),
            ),
            ...optional('tls', dbTls),
          },
    ),
    ...optional(
      'cache',
      cacheRedis === undefined
        ? undefined
        : { redis: cacheRedis, ttlSeconds: positive(env, 'CACHE_TTL_SECONDS', 300) },
    ),
    ...optional(
      'sessions',
      sessionRedis === undefined
        ? undefined
        : {
            redis: sessionRedis,
            ttlSeconds: positive(env, 'SESSION_TTL_SECONDS', 86_400),
            ...optional('secret', secret),
          },
    ),
    ...optional(
      'queue',
      queueRedis === undefined
        ? undefined
        : {
            redis: queueRedis,
            ...optional('stream', read(env, 'QUEUE_STREAM')),
            ...optional('group', read(env, 'QUEUE_GROUP')),
            ...optional('consumer', read(env, 'QUEUE_CONSUMER')),
            ...optional('deadLetterStream', read(env, 'QUEUE_DEAD_LETTER_STREAM')),
            maxDeliveries: positive(env, 'QUEUE_MAX_DELIVERIES', 5),
            ...optional(
              'maxLength',
              read(env, 'QUEUE_MAX_LENGTH') === undefined
                ? undefined
                : positive(env, 'QUEUE_MAX_LENGTH', 0),
            ),
            concurrency: positive(env, 'QUEUE_CONCURRENCY', 1),
            claimIdleMs: positive(env, 'QUEUE_CLAIM_IDLE_MS', 30_000),
          },
    ),
  };
}
