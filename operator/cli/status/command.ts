// `scalable status` (and `diagram`): gather, build the document, print it. With --watch it
// polls every POLL_MS and prints again only when the output changed, until interrupted
// (Ctrl-C ends it with exit 0). A failure before anything was printed ends the command
// (exit 1); while watching, it is said once and the polling goes on.
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiError } from '../../ports/kube-api.ts';
import type { KubeApi } from '../../ports/kube-api.ts';
import { statusDocument } from './build.ts';
import { AppNotFound, gather } from './gather.ts';
import type { StatusDocument } from './model.ts';

/** A poll of a few seconds: cheap (one GET and a few lists), and changes show up promptly. */
export const POLL_MS = 2_000;

export interface ViewRequest {
  readonly name: string;
  readonly namespace: string;
  readonly watch: boolean;
}

export interface ViewOutput {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
  /** What --watch prints between two outputs (clear the terminal, a separator, nothing). */
  readonly between: () => string;
  /** Ends --watch (Ctrl-C). */
  readonly signal?: AbortSignal;
}

/** A failure in words; an unreachable API server is named by its address. */
export function describeFailure(err: unknown, server: string): string {
  if (err instanceof AppNotFound) return err.message;
  if (err instanceof ApiError) return `${server}: ${err.message}`;
  const why = err instanceof Error ? err.message : String(err);
  return `cannot reach the Kubernetes API server at ${server}: ${why}`;
}

/** Prints `render(document)` once, or on every change with --watch; returns the exit code. */
export async function runView(
  req: ViewRequest,
  client: KubeApi,
  server: string,
  out: ViewOutput,
  render: (doc: StatusDocument, watching: boolean) => string,
): Promise<number> {
  let last: string | undefined;
  let lastError: string | undefined;
  for (;;) {
    try {
      const text = render(statusDocument(await gather(client, req.namespace, req.name)), req.watch);
      lastError = undefined;
      if (text !== last) {
        out.stdout(last === undefined ? text : `${out.between()}${text}`);
        last = text;
      }
    } catch (err) {
      if (out.signal?.aborted) return 0;
      const message = describeFailure(err, server);
      if (!req.watch || last === undefined) {
        out.stderr(`${message}\n`);
        return 1;
      }
      if (message !== lastError) out.stderr(`${message}\n`);
      lastError = message;
    }
    if (!req.watch) return 0;
    try {
      await sleep(POLL_MS, undefined, out.signal ? { signal: out.signal } : {});
    } catch {
      return 0; // interrupted
    }
  }
}
