// Every environment variable the operator injects into app pods. The CRD forbids users
// from setting these (rules.ts), so an app never gets two values for one name.
export const OPERATOR_ENV_NAMES = [
  'PORT',
  'SCALABLE_APP',
  'ASSET_BASE_URL',
  'STATIC_PATH_PREFIX',
  'REDIS_URL',
  'REDIS_PASSWORD',
  'REDIS_SENTINELS',
  'REDIS_MASTER_NAME',
  'CACHE_TTL_SECONDS',
  'SESSION_REDIS_URL',
  'SESSION_REDIS_PASSWORD',
  'SESSION_TTL_SECONDS',
  'DATABASE_HOST',
  'DATABASE_RO_HOST',
  'DATABASE_PORT',
  'DATABASE_NAME',
  'DATABASE_USER',
  'DATABASE_PASSWORD',
  'DATABASE_SHARD_MAP',
  'QUEUE_REDIS_URL',
  'QUEUE_REDIS_PASSWORD',
  'QUEUE_STREAM',
  'QUEUE_GROUP',
] as const;

export type OperatorEnvName = (typeof OPERATOR_ENV_NAMES)[number];
