// Traffic through a Service while something changes under it: a loop in a client pod that
// sends GET requests, each on a new connection (a kept-alive socket to a pod that goes away
// would hide nothing and fail for its own reasons), and counts answers and failures until it
// is told to stop (a file in the pod's /tmp, which the app pods get writable).
import { eventually, kubectl, nodeScript } from './kube.ts';

export interface TrafficResult {
  readonly ok: number;
  readonly failed: number;
  /** The first failures: time (epoch ms), and the HTTP status or the error's code. */
  readonly failures: readonly { at: number; what: string }[];
  /** Epoch ms of the first and last answer (0: none). */
  readonly firstOk: number;
  readonly lastOk: number;
  readonly startedAt: number;
  readonly stoppedAt: number;
}

export interface Traffic {
  /** Waits (up to a minute) for an answer after `t` (epoch ms); whether one came. */
  answeredAfter(t: number): Promise<boolean>;
  /** Stops the loop; its counts. */
  stop(): Promise<TrafficResult>;
}

const STOP_FILE = '/tmp/e2e-traffic-stop';
const STARTED_FILE = '/tmp/e2e-traffic-started';

/**
 * Starts GET `url` from `pod` every `everyMs`, with a `timeoutMs` bound per request; returns
 * once the first answer came back.
 */
export async function startTraffic(
  namespace: string,
  pod: string,
  url: string,
  everyMs = 100,
  timeoutMs = 3000,
): Promise<Traffic> {
  const stopFile = JSON.stringify(STOP_FILE);
  const startedFile = JSON.stringify(STARTED_FILE);
  const inPod = (js: string) => kubectl(['exec', '-n', namespace, pod, '--', 'node', '-e', js]);
  await inPod(
    `for (const f of [${stopFile}, ${startedFile}]) require('node:fs').rmSync(f, { force: true })`,
  );
  const done = nodeScript(
    namespace,
    pod,
    `import http from 'node:http';
     import fs from 'node:fs';
     const get = () => new Promise((res) => {
       const req = http.get(${JSON.stringify(url)}, { agent: false, timeout: ${timeoutMs} }, (r) => {
         r.resume();
         r.on('end', () => res(r.statusCode === 200 ? 'ok' : 'HTTP ' + r.statusCode));
         r.on('error', (e) => res(e.code ?? 'error'));
       });
       req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
       req.on('error', (e) => res(e.code ?? 'error'));
     });
     const out = { ok: 0, failed: 0, failures: [], firstOk: 0, lastOk: 0, startedAt: Date.now(), stoppedAt: 0 };
     while (!fs.existsSync(${stopFile})) {
       const at = Date.now();
       const r = await get();
       if (r === 'ok') {
         fs.writeFileSync(${startedFile}, String(at));
         out.ok++; out.firstOk ||= at; out.lastOk = at;
       } else { out.failed++; if (out.failures.length < 50) out.failures.push({ at, what: r }); }
       await new Promise((s) => setTimeout(s, ${everyMs}));
     }
     out.stoppedAt = Date.now();
     console.log(JSON.stringify(out));`,
  );
  let failed: unknown;
  done.catch((err: unknown) => (failed = err));
  await eventually(`a first answer from ${url} in ${pod}`, async () => {
    if (failed) throw failed;
    const seen = await inPod(`console.log(require('node:fs').existsSync(${startedFile}))`);
    return seen.trim() === 'true' ? true : undefined;
  });
  const lastOk = async () =>
    Number(await inPod(`console.log(require('node:fs').readFileSync(${startedFile}, 'utf8'))`));
  return {
    answeredAfter: (t) =>
      eventually(
        `an answer from ${url} after ${new Date(t).toISOString()}`,
        async () => ((await lastOk()) > t ? true : undefined),
        60_000,
        500,
      ).then(
        () => true,
        () => false,
      ),
    stop: async () => {
      await inPod(`require('node:fs').writeFileSync(${stopFile}, '')`);
      return JSON.parse(await done) as TrafficResult;
    },
  };
}
