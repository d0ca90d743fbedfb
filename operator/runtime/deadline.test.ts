import { describe, expect, it } from 'vitest';
import { deadline } from './deadline.ts';

describe('deadline', () => {
  it('aborts with a TimeoutError after ms', async () => {
    const d = deadline(20, []);
    expect(d.signal.aborted).toBe(false);
    await new Promise((r) => setTimeout(r, 60));
    expect(d.signal.aborted).toBe(true);
    expect((d.signal.reason as DOMException).name).toBe('TimeoutError');
    d.dispose();
  });

  it('aborts with the reason of a parent that aborts', () => {
    const parent = new AbortController();
    const d = deadline(10_000, [undefined, parent.signal]);
    parent.abort(new Error('stopping'));
    expect(d.signal.aborted).toBe(true);
    expect((d.signal.reason as Error).message).toBe('stopping');
    d.dispose();
  });

  it('is aborted at once when a parent already is', () => {
    const d = deadline(10_000, [AbortSignal.abort(new Error('gone'))]);
    expect((d.signal.reason as Error).message).toBe('gone');
    d.dispose();
  });

  it('after dispose, neither the timer nor a parent aborts it', async () => {
    const parent = new AbortController();
    const d = deadline(20, [parent.signal]);
    d.dispose();
    parent.abort(new Error('late'));
    await new Promise((r) => setTimeout(r, 60));
    expect(d.signal.aborted).toBe(false);
  });
});
