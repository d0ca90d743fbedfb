// CPU load on the web tier from inside the cluster: `concurrency` loops in a client pod, each
// sending GET requests back to back, each on a new connection (so the Service spreads them
// over every ready pod, new ones included), until told to stop (a file in the pod's /tmp).
// Every answer other than 200 and every transport error is counted, as a user would see it.
import { eventually, kubectl, nodeScript } from './kube.ts';

export interface LoadResult {
  readonly ok: number;
  readonly failed: number;
  /** The first failures: time (epoch ms), and the HTTP status or the error's code. */
  readonly failures: readonly { at: number; what: string }[];
  readonly seconds: number;
}

export interface Load {
  /** Stops every loop; their counts. */
  stop(): Promise<LoadResult>;
}

const STOP_FILE = '/tmp/e2e-load-stop';
const STARTED_FILE = '/tmp/e2e-load-started';

/** Starts the loops; returns once a first answer came back. */
export async function startLoad(
  namespace: string,
  pod: string,
  url: string,
  concurrency: number,
  timeoutMs = 10_000,
): Promise<Load> {
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
     const out = { ok: 0, failed: 0, failures: [], seconds: 0 };
     const start = Date.now();
     let stop = false;
     const poll = setInterval(() => { stop = fs.existsSync(${stopFile}); }, 200);
     const loop = async () => {
       while (!stop) {
         const at = Date.now();
         const r = await get();
         if (r === 'ok') { out.ok++; if (out.ok === 1) fs.writeFileSync(${startedFile}, ''); }
         else { out.failed++; if (out.failures.length < 50) out.failures.push({ at, what: r }); }
       }
     };
     await Promise.all(Array.from({ length: ${concurrency} }, loop));
     clearInterval(poll);
     out.seconds = (Date.now() - start) / 1000;
     console.log(JSON.stringify(out));`,
  );
  let failed: unknown;
  done.catch((err: unknown) => (failed = err));
  await eventually(`a first answer from ${url} in ${pod}`, async () => {
    if (failed) throw failed;
    const seen = await inPod(`console.log(require('node:fs').existsSync(${startedFile}))`);
    return seen.trim() === 'true' ? true : undefined;
  });
  return {
    stop: async () => {
      await inPod(`require('node:fs').writeFileSync(${stopFile}, '')`);
      return JSON.parse(await done) as LoadResult;
    },
  };
}
