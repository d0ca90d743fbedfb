// A user's timeline: read from a replica through the cache; refreshed after the user's own
// writes through their database session, so they see their new photo at once
// (read-your-writes: a replica that has not replayed the write is passed over).
import type { DbSession, Scalable } from '@scalable-dev/sdk';

export const THUMBNAIL_STREAM = 'photoshare.thumbnails';

export interface TimelineEntry {
  readonly photoId: string;
  readonly caption: string;
  readonly createdAt: string;
  readonly thumbnail: boolean;
}

const TIMELINE_SQL = `SELECT photo_id, caption, created_at, thumbnail IS NOT NULL AS thumbnail
  FROM photos WHERE user_id = $1 ORDER BY created_at DESC, photo_id LIMIT 50`;

export const timelineKey = (userId: string) => `timeline:${userId}`;

async function load(sdk: Scalable, userId: string, writer?: DbSession): Promise<TimelineEntry[]> {
  const db = writer ?? sdk.db;
  if (!db) throw new Error('photoshare needs spec.database');
  const { rows } = await db.read<{
    photo_id: string;
    caption: string;
    created_at: Date;
    thumbnail: boolean;
  }>(userId, TIMELINE_SQL, [userId]);
  return rows.map((r) => ({
    photoId: r.photo_id,
    caption: r.caption,
    createdAt: r.created_at.toISOString(),
    thumbnail: r.thumbnail,
  }));
}

export function timeline(sdk: Scalable, userId: string): Promise<TimelineEntry[]> {
  if (!sdk.cache) return load(sdk, userId);
  return sdk.cache.getOrSet(timelineKey(userId), () => load(sdk, userId));
}

/** After a write: the timeline as the writer's session sees it (with the write), cached. */
export async function refreshTimeline(
  sdk: Scalable,
  userId: string,
  writer: DbSession,
): Promise<void> {
  const fresh = await load(sdk, userId, writer);
  await sdk.cache?.set(timelineKey(userId), fresh);
}
