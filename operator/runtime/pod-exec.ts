// A command run in a pod's container through the API server (the `kubectl exec` of the
// operator), over the remotecommand WebSocket protocol: each binary frame starts with its
// channel (1 stdout, 2 stderr, 3 the exit status as a Status object). The database tier uses
// it to run SQL on a shard's primary over the pod's own Unix socket, so the operator needs
// no network path to Postgres and never reads its passwords (tiers/database/shard-sql-exec.ts).
// No stdin: requests travel as arguments (v4 of the protocol cannot close stdin).
// Not @kubernetes/client-node's Exec: loading it pulls its whole generated API into the heap
// (kubeconfig.ts says why the operator avoids that).
import WebSocket from 'ws';
import type { ExecRequest, ExecResult } from '../ports/pod-exec.ts';
import type { Connection } from './kubeconfig.ts';

const PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];
const STDOUT = 1;
const STDERR = 2;
const STATUS = 3;
/** Output kept per stream: a runaway command cannot fill the operator's heap. */
const MAX_OUTPUT = 16 * 1024 * 1024;

/** The exec URL: one `command` parameter per argument, as the API server expects. */
export function execUrl(server: string, req: ExecRequest): string {
  const url = new URL(
    `/api/v1/namespaces/${encodeURIComponent(req.namespace)}/pods/${encodeURIComponent(req.pod)}/exec`,
    server,
  );
  url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
  url.searchParams.append('container', req.container);
  url.searchParams.append('stdout', 'true');
  url.searchParams.append('stderr', 'true');
  for (const arg of req.command) url.searchParams.append('command', arg);
  return url.toString();
}

/**
 * The exit code a v4/v5 status frame carries: Success is 0; a non-zero exit is a Failure
 * whose details name it (reason NonZeroExitCode, cause ExitCode); any other failure (no such
 * container, ...) throws with the server's message.
 */
export function exitCodeOf(status: Record<string, unknown>): number {
  if (status['status'] === 'Success') return 0;
  const details = status['details'] as { causes?: { reason?: string; message?: string }[] };
  const code = details?.causes?.find((c) => c.reason === 'ExitCode')?.message;
  if (status['reason'] === 'NonZeroExitCode' && code !== undefined) return Number(code);
  throw new Error(`exec failed: ${String(status['message'] ?? JSON.stringify(status))}`);
}

/** `headers`: the client's auth headers (bearer token or an exec plugin's). */
export async function podExec(
  conn: Connection,
  headers: Record<string, string>,
  req: ExecRequest,
  signal?: AbortSignal,
): Promise<ExecResult> {
  const ws = new WebSocket(execUrl(conn.server, req), PROTOCOLS, {
    headers,
    ...(conn.ca ? { ca: conn.ca } : {}),
    ...(conn.cert ? { cert: conn.cert } : {}),
    ...(conn.key ? { key: conn.key } : {}),
    ...(conn.insecure ? { rejectUnauthorized: false } : {}),
    ...(conn.tlsServerName ? { servername: conn.tlsServerName } : {}),
    handshakeTimeout: 30_000,
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let sizes = [0, 0];
  let status: Record<string, unknown> | undefined;
  const timeoutMs = req.timeoutMs ?? 120_000;
  return new Promise<ExecResult>((resolve, reject) => {
    const fail = (e: Error) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      ws.terminate();
      reject(e);
    };
    const timer = setTimeout(
      () => fail(new Error(`exec in ${req.namespace}/${req.pod} timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onAbort = () => fail(new Error('exec aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () =>
        fail(new Error(`exec in ${req.namespace}/${req.pod}: HTTP ${res.statusCode}: ${body}`)),
      );
    });
    ws.on('error', (e) => fail(e));
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const frame = isBinary ? data : Buffer.from(data.toString(), 'utf8');
      if (frame.length < 1) return;
      const channel = frame[0];
      const body = frame.subarray(1);
      if (channel === STDOUT || channel === STDERR) {
        const i = channel - 1;
        if ((sizes[i] ?? 0) + body.length > MAX_OUTPUT) return;
        sizes = sizes.map((s, j) => (j === i ? s + body.length : s));
        (channel === STDOUT ? out : err).push(Buffer.from(body));
      } else if (channel === STATUS && body.length > 0) {
        try {
          status = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
        } catch {
          status = { status: 'Failure', message: body.toString('utf8') };
        }
      }
    });
    ws.on('close', () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (!status) {
        reject(new Error(`exec in ${req.namespace}/${req.pod} ended without an exit status`));
        return;
      }
      try {
        resolve({ stdout, stderr, exitCode: exitCodeOf(status) });
      } catch (e) {
        reject(e as Error);
      }
    });
  });
}
