// @scalable-dev/sdk: the app side of scalable-operator. `connect()` reads the env the
// operator injects and returns the database router, the cache, the session store and the
// queue; the contract (hash, shard map, env names) is shared with the operator.
export { connect } from './connect.ts';
export type { ConnectOptions, Scalable } from './connect.ts';
export { Database } from './db/database.ts';
export type { Queryable, ReadOptions, Route } from './db/database.ts';
export { DbSession } from './db/session.ts';
export { formatLsn, parseLsn, parseWriteToken } from './db/write-token.ts';
export { LiveShardMap } from './db/live-shard-map.ts';
export {
  BucketMovingError,
  ShardRoutingError,
  isBucketMoving,
  isUnavailable,
} from './db/errors.ts';
export { Cache } from './cache.ts';
export { Sessions } from './sessions.ts';
export { Consumer, Queue } from './queue/index.ts';
export type { ConsumerOptions, EnqueueOptions, Handler, Message } from './queue/index.ts';
export { EnvError, settingsFromEnv } from './env.ts';
export type { Env, RedisTarget, Settings } from './env.ts';
export { SingleFlight } from './single-flight.ts';
export * from './contract/index.ts';
