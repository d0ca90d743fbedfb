// One start or stop at a time per cache: a test run and `npm start` may race to start the
// cluster. mkdir is atomic; the owner's pid inside lets a dead owner's lock be taken over.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

function ownerAlive(dir: string): boolean {
  try {
    const pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function withLock<T>(
  dir: string,
  fn: () => Promise<T>,
  timeoutMs = 600_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(dir, { recursive: false });
      writeFileSync(join(dir, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // A lock whose owner is gone (or that has no pid file yet after a second) is stale.
      await sleep(200);
      if (!ownerAlive(dir)) {
        await sleep(1000);
        if (!ownerAlive(dir)) rmSync(dir, { recursive: true, force: true });
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for the lock ${dir}`);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
