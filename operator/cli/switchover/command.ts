// `scalable switchover <app> --shard N [--to member]`: judge (decide.ts), write the request,
// then watch the shard until the new primary holds the lock, is labelled primary and is the
// one endpoint of the primary Service, or Patroni drops the request, or the time is up.
// Progress goes to stderr as lines when it changes; stdout gets the result (text or JSON).
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeApi } from '../../ports/kube-api.ts';
import { describeFailure } from '../status/command.ts';
import { decideSwitchover, outcomeOf, progressLine, progressOf } from './decide.ts';
import type { Progress, RefusalCode } from './decide.ts';
import { Reader, readApp, scopeOf } from './gather.ts';

/** Reads a handful of small objects: cheap, and a change shows within half a second. */
export const POLL_MS = 500;
/** Requests written at most, when Patroni drops one (its checks failed where ours passed). */
export const MAX_ATTEMPTS = 3;

export interface SwitchoverArgs {
  readonly name: string;
  readonly namespace: string;
  readonly shard: number;
  readonly to?: string;
  readonly force: boolean;
  readonly timeoutSeconds: number;
  readonly json: boolean;
}

export interface SwitchoverOutput {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
  readonly signal?: AbortSignal;
}

export const SWITCHOVER_API_VERSION = 'scalable.dev/switchover-v1';

/** What `-o json` prints: a contract for scripts (fields may be added, never renamed). */
export interface SwitchoverResult {
  readonly apiVersion: typeof SWITCHOVER_API_VERSION;
  readonly kind: 'ScalableAppSwitchover';
  readonly app: { readonly namespace: string; readonly name: string };
  readonly shard: number;
  readonly scope: string;
  /** done: the primary moved; refused: nothing written; dropped: Patroni declined it. */
  readonly outcome: 'done' | 'refused' | 'dropped' | 'timeout' | 'interrupted';
  readonly code: RefusalCode | null;
  readonly message: string;
  readonly from: string | null;
  readonly to: string | null;
  /** Who holds the lock at the end. */
  readonly primary: string | null;
  readonly warnings: readonly string[];
  /** Requests written (Patroni may drop one, e.g. when the target is slow to answer it). */
  readonly attempts: number;
  readonly seconds: number;
  /** What was seen, each time it changed. */
  readonly steps: readonly { readonly atSeconds: number; readonly seen: string }[];
}

export async function runSwitchover(
  args: SwitchoverArgs,
  client: KubeApi,
  server: string,
  out: SwitchoverOutput,
): Promise<number> {
  const started = performance.now();
  const scope = scopeOf(args.name, args.shard);
  const steps: { atSeconds: number; seen: string }[] = [];
  const seconds = () => Math.round((performance.now() - started) / 100) / 10;
  const finish = (
    r: Omit<
      SwitchoverResult,
      'apiVersion' | 'kind' | 'app' | 'shard' | 'scope' | 'seconds' | 'steps'
    >,
  ): number => {
    const result: SwitchoverResult = {
      apiVersion: SWITCHOVER_API_VERSION,
      kind: 'ScalableAppSwitchover',
      app: { namespace: args.namespace, name: args.name },
      shard: args.shard,
      scope,
      ...r,
      seconds: seconds(),
      steps,
    };
    if (args.json) out.stdout(`${JSON.stringify(result, null, 2)}\n`);
    else if (r.outcome === 'done') out.stdout(`${r.message}\n`);
    else out.stderr(`${r.message}\n`);
    return r.outcome === 'done' ? 0 : 1;
  };
  const none = { from: null, to: null, primary: null, warnings: [] as string[], attempts: 0 };

  let reader: Reader;
  let snapshot;
  try {
    const app = await readApp(client, args.namespace, args.name);
    if ('error' in app)
      return finish({ ...none, outcome: 'refused', code: 'no-database', message: app.error });
    if (args.shard >= app.shards)
      return finish({
        ...none,
        outcome: 'refused',
        code: 'no-such-shard',
        message: `--shard ${args.shard}: ${args.namespace}/${args.name} has shards 0 to ${app.shards - 1}`,
      });
    reader = new Reader(client, args.namespace, args.name, scope);
    snapshot = await reader.snapshot();
  } catch (err) {
    out.stderr(`${describeFailure(err, server)}\n`);
    return 1;
  }
  const deadline = performance.now() + args.timeoutSeconds * 1000;
  const request = { ...(args.to !== undefined ? { to: args.to } : {}), force: args.force };
  let dropped: string | undefined;
  for (let attempt = 1; ; attempt++) {
    const decision = decideSwitchover(snapshot, request, Date.now());
    if (!decision.ok)
      return finish({
        ...none,
        attempts: attempt - 1,
        outcome: dropped ? 'dropped' : 'refused',
        code: decision.code,
        message: `${dropped ? `${dropped}; then ` : ''}refused: ${decision.reason}`,
      });
    const { from, to, warnings } = decision;
    for (const w of warnings) out.stderr(`warning: ${w}\n`);
    const lag = decision.lagBytes === null ? 'lag unknown' : `${decision.lagBytes} bytes behind`;
    out.stderr(
      `${scope}: switchover ${from} -> ${to} (${decision.why}; ${decision.synchronous ? 'synchronous' : 'asynchronous'} shard; ${lag})\n`,
    );
    const base = { from, to, warnings, attempts: attempt };
    if (out.signal?.aborted)
      return finish({
        ...base,
        primary: from,
        outcome: 'interrupted',
        code: null,
        message: 'interrupted before the request was written: nothing changed',
      });
    try {
      if (!(await reader.request(snapshot, from, to)))
        return finish({
          ...base,
          primary: from,
          outcome: 'refused',
          code: 'request-pending',
          message: `refused: ConfigMap ${scope}-failover changed while this was judged (another request?); nothing written. Retry`,
        });
    } catch (err) {
      out.stderr(`${describeFailure(err, server)}\n`);
      return 1;
    }
    out.stderr(`requested in ConfigMap ${scope}-failover (leader ${from}, member ${to})\n`);
    if (!reader.endpointsReadable)
      out.stderr(`note: endpointslices are not readable with these credentials: -rw not checked\n`);

    const end = await watch(reader, from, to, deadline, out, (line) => {
      const at = seconds();
      steps.push({ atSeconds: at, seen: line });
      out.stderr(`[${at.toFixed(1).padStart(5)} s] ${line}\n`);
    });
    if (end.outcome === 'done')
      return finish({
        ...base,
        primary: end.primary,
        outcome: 'done',
        code: null,
        message:
          (end.primary === to
            ? `switched over: ${to} is the primary of ${scope}`
            : `switched over to ${end.primary} instead of ${to} (Patroni found ${to} unfit when it acted): ${end.primary} is the primary of ${scope}`) +
          ` (lock, label${end.progress.rw === null ? '' : ' and -rw'}) after ${seconds()} s; ${from} is now ${end.progress.oldPrimary}`,
      });
    const withdraw =
      `A request still pending stays in ConfigMap ${scope}-failover for Patroni to act on; ` +
      `withdraw it with: kubectl -n ${args.namespace} annotate configmap ${scope}-failover leader- member-`;
    if (end.outcome !== 'dropped')
      return finish({
        ...base,
        primary: end.progress?.lock ?? null,
        outcome: end.outcome,
        code: null,
        message: `${end.outcome === 'interrupted' ? 'interrupted' : `not done after ${args.timeoutSeconds} s`}; last seen: ${end.last ?? 'nothing'}. ${withdraw}`,
      });
    dropped =
      `Patroni dropped the request ${attempt === 1 ? '' : `${attempt} times `}(${from} kept the lock and cleared ` +
      `${scope}-failover; its log says why: e.g. ${to}'s REST API did not answer it in time, or ${to} lagged)`;
    if (attempt >= MAX_ATTEMPTS || performance.now() >= deadline)
      return finish({
        ...base,
        primary: from,
        outcome: 'dropped',
        code: null,
        message: `${dropped}. Nothing changed`,
      });
    // Patroni's own checks failed where ours passed: often a member slow to answer it. The
    // same request again, judged afresh, is what the operator's rollouts do on their next pass.
    out.stderr(`${dropped}: asking again (attempt ${attempt + 1} of ${MAX_ATTEMPTS})\n`);
    try {
      snapshot = await reader.snapshot();
    } catch (err) {
      out.stderr(`${describeFailure(err, server)}\n`);
      return 1;
    }
  }
}

type WatchEnd =
  | { readonly outcome: 'done'; readonly primary: string; readonly progress: Progress }
  | {
      readonly outcome: 'dropped' | 'timeout' | 'interrupted';
      readonly progress: Progress | undefined;
      readonly last: string | undefined;
    };

/** Polls the shard until the switchover is done or dropped, or the deadline or Ctrl-C. */
async function watch(
  reader: Reader,
  from: string,
  to: string,
  deadline: number,
  out: SwitchoverOutput,
  seen: (line: string) => void,
): Promise<WatchEnd> {
  let last: string | undefined;
  let progress: Progress | undefined;
  let lastError: string | undefined;
  for (;;) {
    try {
      const p = progressOf(await reader.snapshot(), from, to);
      progress = p;
      lastError = undefined;
      const line = progressLine(p);
      if (line !== last) seen(line);
      last = line;
      const o = outcomeOf(p, from);
      if (o.phase === 'done') return { outcome: 'done', primary: o.primary, progress: p };
      if (o.phase === 'dropped') return { outcome: 'dropped', progress: p, last };
    } catch (err) {
      // A failed read while the primary moves (a slow API server): said once, polled again.
      const message = err instanceof Error ? err.message : String(err);
      if (message !== lastError) out.stderr(`read failed, polling again: ${message}\n`);
      lastError = message;
    }
    if (out.signal?.aborted) return { outcome: 'interrupted', progress, last };
    if (performance.now() >= deadline) return { outcome: 'timeout', progress, last };
    try {
      await sleep(POLL_MS, undefined, out.signal ? { signal: out.signal } : {});
    } catch {
      // interrupted: the check above reports it
    }
  }
}
