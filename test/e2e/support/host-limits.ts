// The host's inotify limits, raised to what kind's known-issues page asks for before a cluster
// is created. Each kind node runs a kubelet, kube-proxy and containerd that hold inotify
// instances; Debian's default of 128 instances per user is enough for one 4-node cluster but
// not for two (a second cluster's kube-proxy died with "too many open files", flannel then
// reached no API server and no pod got a network).
import { readFile, writeFile } from 'node:fs/promises';

/** kind's recommended minimums (kind docs, "Known Issues: Pod errors due to too many open files"). */
export const INOTIFY_MINIMUMS = {
  'fs/inotify/max_user_instances': 512,
  'fs/inotify/max_user_watches': 524288,
} as const;

export type InotifyKey = keyof typeof INOTIFY_MINIMUMS;

/** The settings below their minimum, with the value each needs. */
export function inotifyRaises(
  current: Readonly<Record<InotifyKey, number>>,
): [InotifyKey, number][] {
  return (Object.entries(INOTIFY_MINIMUMS) as [InotifyKey, number][]).filter(
    ([key, min]) => current[key] < min,
  );
}

/** Raises what is too low (root can; anyone else gets the command that would). */
export async function ensureInotifyLimits(log: (m: string) => void): Promise<void> {
  const read = async (key: InotifyKey) =>
    Number((await readFile(`/proc/sys/${key}`, 'utf8')).trim());
  const current = {
    'fs/inotify/max_user_instances': await read('fs/inotify/max_user_instances'),
    'fs/inotify/max_user_watches': await read('fs/inotify/max_user_watches'),
  };
  for (const [key, min] of inotifyRaises(current)) {
    try {
      await writeFile(`/proc/sys/${key}`, String(min));
      log(`raised ${key.replaceAll('/', '.')} from ${current[key]} to ${min} (kind's minimum)`);
    } catch (err) {
      throw new Error(
        `${key.replaceAll('/', '.')} is ${current[key]}, below kind's ${min}, and cannot be raised here (${String(err)}): run sudo sysctl -w ${key.replaceAll('/', '.')}=${min}`,
      );
    }
  }
}
