// The thumbnail worker: reads photoshare.thumbnails (QUEUE_STREAM) as group QUEUE_GROUP,
// makes a thumbnail per photo and stores it. SIGTERM (from the SDK) stops reading and
// lets the current jobs finish; then the process closes its clients and exits.
import { connect } from '@scalable-dev/sdk';
import { thumbnail } from './thumbnail.ts';
import { refreshTimeline } from './timeline.ts';

const sdk = await connect();
const { db, queue } = sdk;
if (!db || !queue) throw new Error('the worker needs spec.database and spec.queue');

interface Job {
  readonly userId: string;
  readonly photoId: string;
  /** The uploader's write token: the photo is read where it has been replayed. */
  readonly dbToken?: string;
}

const consumer = queue.consume<Job>(async ({ payload }) => {
  const { userId, photoId, dbToken } = payload;
  const s = db.session(dbToken);
  const { rows } = await s.read<{ image: Buffer }>(
    userId,
    'SELECT image FROM photos WHERE user_id = $1 AND photo_id = $2',
    [userId, photoId],
    // A job without a token (an older web pod): the primary, which has every photo.
    { primary: dbToken === undefined },
  );
  if (!rows[0]) return; // deleted meanwhile: nothing to do
  await s.write(userId, 'UPDATE photos SET thumbnail = $3 WHERE user_id = $1 AND photo_id = $2', [
    userId,
    photoId,
    thumbnail(rows[0].image),
  ]);
  await refreshTimeline(sdk, userId, s);
});
console.log(JSON.stringify({ level: 'info', msg: 'photoshare worker started' }));
await consumer.done;
await sdk.close();
