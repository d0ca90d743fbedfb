import { describe, expect, it } from 'vitest';
import { WorkQueue, backoffDelay } from './queue.ts';

describe('WorkQueue', () => {
  it('deduplicates waiting keys', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('a');
    q.add('b');
    expect(q.depth).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
  });
  it('never hands out a key that is being processed; requeues it when done', async () => {
    const q = new WorkQueue();
    q.add('a');
    const first = await q.get();
    q.add('a');
    expect(q.depth).toBe(0);
    q.done(first!);
    expect(q.depth).toBe(1);
    expect(await q.get()).toBe('a');
  });
  it('wakes a waiting worker and stops on shutdown', async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    q.add('x');
    expect(await waiting).toBe('x');
    const idle = q.get();
    q.shutDown();
    expect(await idle).toBeUndefined();
  });
  it('backs off exponentially with a cap and forgets on success', () => {
    const opts = { baseMs: 100, capMs: 1000 };
    expect([0, 1, 2, 3, 4, 10].map((n) => backoffDelay(n, opts))).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ]);
    const q = new WorkQueue(opts);
    expect(q.addRateLimited('k')).toBe(100);
    expect(q.addRateLimited('k')).toBe(200);
    expect(q.retries('k')).toBe(2);
    q.forget('k');
    expect(q.retries('k')).toBe(0);
    q.shutDown();
  });
});
