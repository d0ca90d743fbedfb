// A small HTTP client for the Kubernetes API on node:https with keep-alive. The generated
// @kubernetes/client-node APIs are typed per kind; the reconciler works on plain JSON of any
// kind and needs control over watches (410, stalls) and a count of every request it makes.
import https from 'node:https';
import type * as Http from 'node:http';
import { deadline } from './deadline.ts';
import { http } from './node-http.ts';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConnection } from './kubeconfig.ts';
import { TokenBucket, retryAfterMs } from './rate-limit.ts';
import type { Connection } from './kubeconfig.ts';
import { ApiError } from '../ports/kube-api.ts';
import type { KubeApi, RequestOptions, Verb } from '../ports/kube-api.ts';
import type { ExecRequest, ExecResult } from '../ports/pod-exec.ts';
import { podExec } from './pod-exec.ts';

export { ApiError, isConflict, isNotFound } from '../ports/kube-api.ts';
export type { RequestOptions, Verb } from '../ports/kube-api.ts';

/** Called once per request with its outcome; feeds the api_requests_total metric. */
export type RequestObserver = (verb: Verb, resource: string, code: number) => void;

export interface WatchEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  readonly object: Record<string, unknown>;
}

export interface WatchHandle {
  /** Resolves when the stream ends: null on a clean end, the error otherwise. */
  readonly done: Promise<Error | null>;
  readonly abort: () => void;
}

const METHOD: Record<Verb, string> = {
  get: 'GET',
  list: 'GET',
  watch: 'GET',
  create: 'POST',
  update: 'PUT',
  patch: 'PATCH',
  apply: 'PATCH',
  delete: 'DELETE',
};

/** A pooled connection unused this long is closed. */
export const IDLE_SOCKET_MS = 30_000;

export const MUTATING_VERBS: ReadonlySet<Verb> = new Set([
  'create',
  'update',
  'patch',
  'apply',
  'delete',
]);

interface Shared {
  readonly agent: https.Agent | Http.Agent;
  readonly watchAgent: https.Agent | Http.Agent;
  readonly observers: RequestObserver[];
  readonly sendObservers: SendObserver[];
  readonly bucket: TokenBucket | undefined;
}

/** Called when a request leaves (after the rate limiter): what the limit governs. */
export type SendObserver = (verb: Verb, resource: string) => void;

/** Client-side rate limit (client-go's token bucket); none when undefined. */
export interface RateLimit {
  readonly qps: number;
  readonly burst: number;
}

/** Attempts of a request the server answered 429 (it did not act on it): client-go's 10. */
const MAX_429_ATTEMPTS = 10;

export class KubeClient implements KubeApi {
  private readonly server: URL;
  private readonly agent: https.Agent | Http.Agent;
  private readonly watchAgent: https.Agent | Http.Agent;
  private readonly observers: RequestObserver[];
  private readonly sendObservers: SendObserver[];
  private readonly bucket: TokenBucket | undefined;

  private constructor(
    private readonly conn: Connection,
    private readonly limit: RateLimit | undefined,
    shared?: Shared,
    /** Aborts every request of this view (withSignal). */
    private readonly signal?: AbortSignal,
    idleSocketMs = IDLE_SOCKET_MS,
  ) {
    this.server = new URL(conn.server);
    this.observers = shared?.observers ?? [];
    this.sendObservers = shared?.sendObservers ?? [];
    this.bucket = shared ? shared.bucket : limit && new TokenBucket(limit.qps, limit.burst);
    if (shared) {
      this.agent = shared.agent;
      this.watchAgent = shared.watchAgent;
      return;
    }
    const tls: https.AgentOptions = {
      ...(conn.ca ? { ca: conn.ca } : {}),
      ...(conn.cert ? { cert: conn.cert } : {}),
      ...(conn.key ? { key: conn.key } : {}),
      ...(conn.insecure ? { rejectUnauthorized: false } : {}),
      ...(conn.tlsServerName ? { servername: conn.tlsServerName } : {}),
    };
    const secure = this.server.protocol === 'https:';
    const make = (maxSockets: number, timeout?: number) => {
      const pool = { keepAlive: true, maxSockets, ...(timeout ? { timeout } : {}) };
      return secure ? new https.Agent({ ...tls, ...pool }) : new http.Agent(pool);
    };
    // A burst opens up to 64 TLS connections, each with OpenSSL's buffers; kept forever they
    // stay in a quiet operator's memory. Free sockets idle for 30 s close (the agent reuses
    // the most recently freed first, so the few a steady load needs stay warm).
    this.agent = make(64, idleSocketMs);
    // One socket per watch: they are long-lived and must not starve ordinary requests.
    this.watchAgent = make(Infinity);
  }

  static fromConnection(conn: Connection, limit?: RateLimit, idleSocketMs?: number): KubeClient {
    return new KubeClient(conn, limit, undefined, undefined, idleSocketMs);
  }

  /**
   * A client with connections of its own (same credentials and observers): leader election
   * uses one, so a pool busy or stuck with reconcile traffic cannot delay a lease renewal.
   */
  dedicated(): KubeClient {
    const own = new KubeClient(this.conn, this.limit);
    own.observers.push(...this.observers);
    own.sendObservers.push(...this.sendObservers);
    return own;
  }

  /** The same connections; every request also ends when `signal` aborts. */
  withSignal(signal: AbortSignal): KubeClient {
    const shared = {
      agent: this.agent,
      watchAgent: this.watchAgent,
      observers: this.observers,
      sendObservers: this.sendObservers,
      bucket: this.bucket,
    };
    const both = this.signal ? AbortSignal.any([this.signal, signal]) : signal;
    return new KubeClient(this.conn, this.limit, shared, both);
  }

  /** From a kubeconfig path, else KUBECONFIG, else in-cluster, else ~/.kube/config. */
  static async load(kubeconfigPath?: string, limit?: RateLimit): Promise<KubeClient> {
    return new KubeClient(await loadConnection(kubeconfigPath), limit);
  }

  /** Waits for a token of the rate limit (none: at once). */
  private async throttle(signal?: AbortSignal): Promise<void> {
    const wait = this.bucket?.reserve() ?? 0;
    if (wait > 0) await sleep(wait, undefined, signal ? { signal } : {});
  }

  onRequest(observer: RequestObserver): void {
    this.observers.push(observer);
  }

  onSend(observer: SendObserver): void {
    this.sendObservers.push(observer);
  }

  private observe(verb: Verb, resource: string, code: number): void {
    for (const o of this.observers) o(verb, resource, code);
  }

  /** A command in a pod's container (pods/exec); ends with this view's signal. */
  async exec(req: ExecRequest): Promise<ExecResult> {
    return podExec(this.conn, await this.authHeaders(), req, this.signal);
  }

  /** Headers that may change over time (bearer tokens are re-read). */
  private async authHeaders(): Promise<Record<string, string>> {
    if (this.conn.authHeaders) return this.conn.authHeaders();
    const token = this.conn.token?.();
    return token ? { Authorization: `Bearer ${token}` } : {};
  }

  private url(path: string, query: RequestOptions['query'] = {}): URL {
    const url = new URL(path, this.server);
    for (const [k, v] of Object.entries(query))
      if (v !== undefined) url.searchParams.set(k, String(v));
    return url;
  }

  private transport(): typeof https | typeof http {
    return this.server.protocol === 'https:' ? https : http;
  }

  /** One request; resolves with the parsed JSON body, rejects with ApiError on >= 400. */
  async request<T = Record<string, unknown>>(
    method: string | undefined,
    path: string,
    options: RequestOptions,
  ): Promise<T> {
    // One deadline over the whole request: waiting for a token and for Retry-After included.
    const ends = deadline(Math.ceil(options.timeoutMs ?? 30_000), [this.signal, options.signal]);
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.throttle(ends.signal);
          return await this.once<T>(method, path, options, ends.signal);
        } catch (err) {
          // 429: the server did not act on it; wait as long as it asks, then send it again.
          if (!(err instanceof ApiError) || err.code !== 429 || attempt >= MAX_429_ATTEMPTS)
            throw err;
          await sleep(err.retryAfterMs ?? 1_000, undefined, { signal: ends.signal }).catch(() => {
            throw err;
          });
        }
      }
    } finally {
      ends.dispose();
    }
  }

  private async once<T>(
    method: string | undefined,
    path: string,
    options: RequestOptions,
    deadline: AbortSignal,
  ): Promise<T> {
    const url = this.url(path, options.query);
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const headers: Record<string, string> = {
      Accept: 'application/json',
      ...(await this.authHeaders()),
    };
    if (body !== undefined) {
      headers['Content-Type'] = options.contentType ?? 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(body));
    }
    const verb = options.verb;
    const timeoutMs = options.timeoutMs ?? 30_000;
    // A hard deadline: the socket timeout alone never fires on a connection that trickles.
    const signal = deadline;
    if (signal.aborted) {
      this.observe(verb, options.resource, 0);
      const why = signal.reason instanceof Error ? signal.reason.message : String(signal.reason);
      throw new Error(`${METHOD[verb]} ${url.pathname}: aborted before it was sent (${why})`);
    }
    return new Promise<T>((resolve, reject) => {
      const req = this.transport().request(
        url,
        {
          method: method ?? METHOD[verb],
          headers,
          agent: this.agent,
          timeout: timeoutMs,
          signal,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => {
            this.observe(verb, options.resource, 0);
            reject(err);
          });
          res.on('end', () => {
            const code = res.statusCode ?? 0;
            this.observe(verb, options.resource, code);
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: Record<string, unknown> = {};
            try {
              parsed = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
            } catch {
              parsed = { message: text };
            }
            if (code >= 400) {
              const retryAfter = res.headers['retry-after'];
              reject(
                new ApiError(
                  code,
                  String(parsed['reason'] ?? res.statusMessage ?? ''),
                  `${METHOD[verb]} ${url.pathname}: ${code} ${String(parsed['message'] ?? text)}`,
                  code === 429 ? retryAfterMs(retryAfter) : undefined,
                ),
              );
            } else resolve(parsed as T);
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${METHOD[verb]} ${url.pathname}: timed out`)));
      req.on('error', (err) => {
        this.observe(verb, options.resource, 0);
        const why = signal.reason instanceof Error ? signal.reason.message : String(signal.reason);
        reject(
          signal.aborted ? new Error(`${METHOD[verb]} ${url.pathname}: aborted (${why})`) : err,
        );
      });
      if (body !== undefined) req.write(body);
      req.end();
      for (const o of this.sendObservers) o(verb, options.resource);
    });
  }

  /**
   * A watch stream. Events arrive through onEvent; the stream ends on server timeout,
   * connection loss, abort, or when no byte arrived for idleMs (the watchdog: bookmarks
   * keep a healthy watch talking).
   */
  watch(
    path: string,
    query: RequestOptions['query'],
    resource: string,
    idleMs: number,
    onEvent: (event: WatchEvent) => void,
  ): WatchHandle {
    const url = this.url(path, { ...query, watch: true });
    let abortFn: () => void = () => undefined;
    const done = new Promise<Error | null>((resolve) => {
      let finished = false;
      let idleTimer: NodeJS.Timeout | undefined;
      let req: Http.ClientRequest | undefined;
      const finish = (err: Error | null) => {
        if (finished) return;
        finished = true;
        if (idleTimer) clearTimeout(idleTimer);
        req?.destroy();
        resolve(err);
      };
      const arm = () => {
        if (idleTimer) clearTimeout(idleTimer);
        idleTimer = setTimeout(
          () => finish(new Error(`watch ${resource}: silent for ${idleMs} ms`)),
          idleMs,
        );
        idleTimer.unref();
      };
      abortFn = () => finish(null);
      Promise.all([this.authHeaders(), this.throttle()]).then(
        ([headers]) => {
          if (finished) return;
          arm();
          req = this.transport().request(
            url,
            {
              method: 'GET',
              headers: { Accept: 'application/json', ...headers },
              agent: this.watchAgent,
            },
            (res) => {
              const code = res.statusCode ?? 0;
              this.observe('watch', resource, code);
              if (code !== 200) {
                res.resume();
                finish(new ApiError(code, res.statusMessage ?? '', `watch ${resource}: ${code}`));
                return;
              }
              arm();
              res.on('data', arm);
              res.on('error', (err) => finish(err));
              res.on('end', () => finish(null));
              res.on('close', () => finish(null));
              const lines = createInterface({ input: res });
              // readline re-emits the response's errors (ECONNRESET when the server dies).
              lines.on('error', (err) => finish(err));
              lines.on('line', (line) => {
                if (finished || line.trim() === '') return;
                let event: WatchEvent;
                try {
                  event = JSON.parse(line) as WatchEvent;
                } catch {
                  return;
                }
                onEvent(event);
              });
            },
          );
          req.on('error', (err) => {
            this.observe('watch', resource, 0);
            finish(err);
          });
          req.end();
          for (const o of this.sendObservers) o('watch', resource);
        },
        (err: unknown) => finish(err instanceof Error ? err : new Error(String(err))),
      );
    });
    return { done, abort: () => abortFn() };
  }

  close(): void {
    this.agent.destroy();
    this.watchAgent.destroy();
  }
}
