import { describe, expect, it } from 'vitest';
import { INOTIFY_MINIMUMS, inotifyRaises } from '../e2e/support/host-limits.ts';

describe("the host's inotify limits for kind", () => {
  it("raises only what is below kind's minimum, to that minimum", () => {
    expect(
      inotifyRaises({
        'fs/inotify/max_user_instances': 128,
        'fs/inotify/max_user_watches': 192540,
      }),
    ).toEqual([
      ['fs/inotify/max_user_instances', 512],
      ['fs/inotify/max_user_watches', 524288],
    ]);
    expect(
      inotifyRaises({
        'fs/inotify/max_user_instances': 128,
        'fs/inotify/max_user_watches': 1048576,
      }),
    ).toEqual([['fs/inotify/max_user_instances', 512]]);
  });

  it('leaves settings at or above the minimum alone (never lowers them)', () => {
    expect(inotifyRaises({ ...INOTIFY_MINIMUMS })).toEqual([]);
    expect(
      inotifyRaises({
        'fs/inotify/max_user_instances': 8192,
        'fs/inotify/max_user_watches': 524289,
      }),
    ).toEqual([]);
  });
});
