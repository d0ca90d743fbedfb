// Polling components until they answer: the only way to know a start has finished.
import { request } from 'node:https';
import { request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClientTls } from './certs.ts';

/** GET url; resolves with the status code (0 when nothing answered). */
export function probe(url: string, tls?: ClientTls): Promise<number> {
  return new Promise((resolve) => {
    const opts = { timeout: 2000 };
    const done = (res: { statusCode?: number; resume: () => void }) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    };
    const req = url.startsWith('https:')
      ? request(url, { ...opts, ...(tls ?? {}), rejectUnauthorized: tls !== undefined }, done)
      : httpRequest(url, opts, done);
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** Polls until check() is true; throws with describe() after timeoutMs. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  onTimeout: () => string = () => '',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}. ${onTimeout()}`);
    await sleep(100);
  }
}
