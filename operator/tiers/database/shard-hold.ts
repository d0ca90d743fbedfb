// The database tier's adjust hook for the shard map (see shard-authority.ts): publish the
// recorded bucket assignment, never a fresh spread over rows that already live somewhere;
// stamp the record on each shard's StatefulSet; leave a conflicting hand edit alone (the
// status reports it as Degraded).
import type { AppModel } from '../../api/model.ts';
import type { K8sObject } from '../shared/chart.ts';
import type { LiveView } from '../tier.ts';
import { withAnnotations } from '../shared/meta.ts';
import { shardIndexes, shardName } from './names.ts';
import {
  BUCKET_RANGES_ANNOTATION,
  assignmentInResharding,
  assignmentInStatus,
  assignmentOfRecord,
  assignmentOnShards,
  formatShardRanges,
  sameRanges,
} from './shard-authority.ts';
import type { Assignment } from './shard-authority.ts';
import {
  SHARD_MAP_VERSION_ANNOTATION,
  isShardMapObject,
  shardMapIn,
  shardMapOf,
  withShardMap,
} from './shard-map.ts';

/**
 * The record: a published resharding's assignment (its cutover), else the shards'
 * annotations, else the app's status, else the live map itself.
 */
export function recordedAssignment(
  app: AppModel,
  shardObjects: readonly K8sObject[],
  live: LiveView,
  liveMap: Assignment | undefined,
): Assignment | undefined {
  const onShards = assignmentOnShards(
    shardIndexes(app).map((index) => {
      const sts = shardObjects.find((o) => o.metadata.name === shardName(app, index));
      const annotations = sts ? live.object(sts)?.metadata.annotations : undefined;
      return { index, ...(annotations ? { annotations } : {}) };
    }),
    SHARD_MAP_VERSION_ANNOTATION,
  );
  return assignmentOfRecord(
    assignmentInResharding(live.status),
    onShards,
    () => assignmentInStatus(live.status) ?? liveMap,
  );
}

export function holdShardMap(
  app: AppModel,
  desired: readonly K8sObject[],
  live: LiveView,
): K8sObject[] {
  const fresh = shardMapOf(app);
  const cm = desired.find(isShardMapObject);
  if (!fresh || !cm) return [...desired];
  const shards = desired.filter((o) => o.kind === 'StatefulSet');
  const liveCm = live.object(cm);
  const published = shardMapIn(liveCm);
  const liveMap =
    published && published.buckets === fresh.buckets
      ? { version: published.version, ranges: published.ranges }
      : undefined;
  const record = recordedAssignment(app, shards, live, liveMap);
  const map = record ? { ...fresh, version: record.version, ranges: record.ranges } : fresh;
  // A live map older than the record is republished (a cutover's flip); one as new or newer
  // that routes elsewhere is a hand edit the operator does not publish over.
  const conflict =
    liveMap !== undefined &&
    liveMap.version >= map.version &&
    !sameRanges(liveMap.ranges, map.ranges);
  return desired.map((o) => {
    if (o === cm) return conflict && liveCm ? { ...o, data: liveCm['data'] } : withShardMap(o, map);
    const index = shardIndexes(app).find(
      (i) => o.kind === 'StatefulSet' && o.metadata.name === shardName(app, i),
    );
    if (index === undefined) return o;
    return withAnnotations(o, {
      [BUCKET_RANGES_ANNOTATION]: formatShardRanges(map.ranges, index),
      [SHARD_MAP_VERSION_ANNOTATION]: String(map.version),
    });
  });
}
