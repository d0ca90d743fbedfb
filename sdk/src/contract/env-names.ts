// Every environment variable the operator injects into app pods. The CRD forbids users
// from setting these (rules.ts), so an app never gets two values for one name. The SDK
// reads only these and APP_ENV_NAMES, so the two sides cannot drift.
export const OPERATOR_ENV_NAMES = [
  'PORT',
  'SCALABLE_APP',
  'ASSET_BASE_URL',
  'STATIC_PATH_PREFIX',
  'REDIS_URL',
  'REDIS_USERNAME',
  'REDIS_PASSWORD',
  'REDIS_SENTINELS',
  'REDIS_MASTER_NAME',
  'CACHE_TTL_SECONDS',
  'SESSION_REDIS_URL',
  'SESSION_REDIS_USERNAME',
  'SESSION_REDIS_PASSWORD',
  'SESSION_TTL_SECONDS',
  'DATABASE_HOST',
  'DATABASE_RO_HOST',
  'DATABASE_PORT',
  'DATABASE_NAME',
  'DATABASE_USER',
  'DATABASE_PASSWORD',
  'DATABASE_SHARD_MAP',
  // TLS (issue 18): libpq's sslmode (verify-full) and the CA file it verifies against.
  'DATABASE_SSLMODE',
  'DATABASE_SSLROOTCERT',
  // Redis TLS (issue 18): the CA file each Redis tier's certificate is verified against; its
  // URL is rediss:// (with Sentinel, the CA alone says TLS: Sentinels and master alike).
  'REDIS_SSLROOTCERT',
  'SESSION_REDIS_SSLROOTCERT',
  'QUEUE_SSLROOTCERT',
  // The queue store (issue 12): a URL, or Sentinels and a master name when it has replicas.
  'QUEUE_URL',
  'QUEUE_SENTINELS',
  'QUEUE_MASTER_NAME',
  // The app's Redis ACL user (issue 36), on Redis and on the Sentinels of each Redis tier.
  'QUEUE_USERNAME',
  'QUEUE_PASSWORD',
  // Every pod that enqueues: trim each stream to about this many entries (XADD MAXLEN ~).
  'QUEUE_MAX_LENGTH',
  // Worker pods only: the consumer's stream, group, pod name and dead-letter settings.
  'QUEUE_STREAM',
  'QUEUE_GROUP',
  'QUEUE_CONSUMER',
  'QUEUE_DEAD_LETTER_STREAM',
  'QUEUE_MAX_DELIVERIES',
] as const;

export type OperatorEnvName = (typeof OPERATOR_ENV_NAMES)[number];

/**
 * Tunables the SDK reads that the app's own spec.web.env may set (the operator never
 * injects them): pool size, the replica-lag bound, the replica connect timeout, the session-cookie secret, worker
 * concurrency and how long a message may sit with a dead consumer before it is claimed.
 */
export const APP_ENV_NAMES = [
  'DATABASE_POOL_MAX',
  'DATABASE_REPLICA_MAX_LAG_SECONDS',
  'DATABASE_REPLICA_CONNECT_TIMEOUT_MS',
  'SESSION_SECRET',
  'QUEUE_CONCURRENCY',
  'QUEUE_CLAIM_IDLE_MS',
] as const;

export type AppEnvName = (typeof APP_ENV_NAMES)[number];
