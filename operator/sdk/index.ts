// The shard-routing SDK: everything an app needs to route a key to its shard.
export { BUCKETS, HASH_NAME, bucketFunctionSql, bucketOf, bucketSql, keyText } from './hash.ts';
export type { ShardKey } from './hash.ts';
export {
  assignBuckets,
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
