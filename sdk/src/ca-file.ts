// The CA bundle of a mounted file, kept current for the life of the process. During a CA
// move or rotation (docs/security.md, "A CA per app") the operator first adds the new CA to
// ca.crt, waits, and only then serves certificates from it; the kubelet swaps the mounted
// file in place. A client that read the file once at start would refuse the new
// certificates on its next connection, so it would need a restart at the right moment.
// tls.connect builds its trust from `ca` at each connection, and ioredis, node-redis and pg
// all pass the array they are given through by reference: refreshing that one array in
// place reaches every client's next connection, with no restart and no private API.
import { readFileSync } from 'node:fs';

/** How often the file is read: far inside the operator's hold between steps. */
export const CA_POLL_MS = 5_000;

const live = new Map<string, { readonly bundle: string[]; readonly timer: NodeJS.Timeout }>();

/**
 * The file's PEM text as a one-element array (several CAs may be concatenated in it), the
 * same array for every caller of one path, updated in place when the file changes. Read
 * synchronously the first time, so a missing file fails at start, naming it.
 */
export function liveCa(file: string, pollMs = CA_POLL_MS): string[] {
  const known = live.get(file);
  if (known) return known.bundle;
  const bundle = [readFileSync(file, 'utf8')];
  // The file is read, not stat-watched: fs.watchFile takes its first stat asynchronously, so
  // a swap between this read and that stat was never seen (a CA file is a few KB).
  const timer = setInterval(() => {
    try {
      const next = nextBundle(bundle[0] ?? '', readFileSync(file, 'utf8'));
      if (next !== bundle[0]) bundle.splice(0, bundle.length, next);
    } catch {
      // Gone for a moment (the kubelet's symlink swap): the next poll reads it.
    }
  }, pollMs);
  // Watching a CA must never keep a process alive.
  timer.unref();
  live.set(file, { bundle, timer });
  return bundle;
}

/** What a read of the file leaves in force: an emptied or half-written file keeps the last. */
export const nextBundle = (current: string, read: string): string =>
  read.includes('-----BEGIN CERTIFICATE-----') && read.includes('-----END CERTIFICATE-----')
    ? read
    : current;

/** Stops watching a file (tests; a process that closes its clients for good). */
export function forgetCa(file: string): void {
  clearInterval(live.get(file)?.timer);
  live.delete(file);
}
