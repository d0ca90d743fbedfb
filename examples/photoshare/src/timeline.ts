// A user's timeline: read from a replica through the cache; refreshed from the primary
// after the user's own writes so they see their new photo at once (read-your-writes).
import type { Scalable } from '@scalable-dev/sdk';

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

async function load(sdk: Scalable, userId: string, primary: boolean): Promise<TimelineEntry[]> {
  if (!sdk.db) throw new Error('photoshare needs spec.database');
  const { rows } = await sdk.db.read<{
    photo_id: string;
    caption: string;
    created_at: Date;
    thumbnail: boolean;
  }>(userId, TIMELINE_SQL, [userId], { primary });
  return rows.map((r) => ({
    photoId: r.photo_id,
    caption: r.caption,
    createdAt: r.created_at.toISOString(),
    thumbnail: r.thumbnail,
  }));
}

export function timeline(sdk: Scalable, userId: string): Promise<TimelineEntry[]> {
  if (!sdk.cache) return load(sdk, userId, false);
  return sdk.cache.getOrSet(timelineKey(userId), () => load(sdk, userId, false));
}

/** After a write: the timeline as the primary has it, into the cache. */
export async function refreshTimeline(sdk: Scalable, userId: string): Promise<void> {
  const fresh = await load(sdk, userId, true);
  await sdk.cache?.set(timelineKey(userId), fresh);
}
