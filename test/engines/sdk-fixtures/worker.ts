// A worker on the SDK for the queue tests. Each handled message is recorded in the queue
// Redis itself (list `handled`), so the test reads what happened from the store. A payload
// `hangOn` naming this consumer makes it hang (to be killed mid-message); `sleepMs` makes
// a handler take time.
import { connect } from '../../../sdk/src/index.ts';

const sdk = await connect();
const queue = sdk.queue;
if (!queue) throw new Error('no queue in the env');
const me = sdk.settings.queue?.consumer ?? '?';

const consumer = queue.consume<{ n: number; hangOn?: string; sleepMs?: number }>(async (m) => {
  if (m.payload.hangOn === me) {
    await queue.redis.rpush('started', m.id);
    await new Promise(() => undefined);
  }
  if (m.payload.sleepMs) await new Promise((r) => setTimeout(r, m.payload.sleepMs));
  await queue.redis.rpush(
    'handled',
    JSON.stringify({ n: m.payload.n, id: m.id, by: me, deliveries: m.deliveries }),
  );
});
console.log(JSON.stringify({ msg: 'worker started', consumer: me }));
await consumer.done;
await sdk.close();
console.log(JSON.stringify({ msg: 'worker stopped', consumer: me }));
