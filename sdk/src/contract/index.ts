// The contract between the operator and apps: key -> bucket -> shard, the shard map's format
// and the env names the operator injects. The operator imports the SDK only through here.
export { BUCKETS, HASH_NAME, bucketFunctionSql, bucketOf, bucketSql, keyText } from './hash.ts';
export type { ShardKey } from './hash.ts';
export {
  FENCE_SQLSTATE,
  assignBuckets,
  fenceTargetOf,
  bucketMoves,
  makeShardMap,
  parseShardMap,
  shardFor,
  shardOfBucket,
  toRanges,
} from './shard-map.ts';
export type {
  BucketMove,
  BucketRange,
  ShardAddresses,
  ShardMap,
  ShardMapInput,
} from './shard-map.ts';
export { APP_ENV_NAMES, OPERATOR_ENV_NAMES } from './env-names.ts';
export type { AppEnvName, OperatorEnvName } from './env-names.ts';
