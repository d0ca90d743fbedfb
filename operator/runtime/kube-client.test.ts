// The client's own behaviour under API-server push-back, against a local HTTP server that
// answers as the API server does under API Priority and Fairness (429 + Retry-After) or not
// at all (a stalled connection). Times are read where the requests arrive.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError, KubeClient } from './kube-client.ts';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void;

const servers: http.Server[] = [];
const clients: KubeClient[] = [];

async function serve(handler: Handler): Promise<{
  client: (limit?: { qps: number; burst: number }, idleSocketMs?: number) => KubeClient;
  arrivals: number[];
  open: () => number;
}> {
  const arrivals: number[] = [];
  const server = http.createServer((req, res) => {
    arrivals.push(performance.now());
    handler(req, res, arrivals.length);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  let open = 0;
  server.on('connection', (socket) => {
    open += 1;
    socket.on('close', () => (open -= 1));
  });
  const { port } = server.address() as AddressInfo;
  return {
    arrivals,
    open: () => open,
    client: (limit, idleSocketMs) => {
      const c = KubeClient.fromConnection(
        { server: `http://127.0.0.1:${port}` },
        limit,
        idleSocketMs,
      );
      clients.push(c);
      return c;
    },
  };
}

const ok = (res: http.ServerResponse) => {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end('{"kind":"Status"}');
};

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});

describe('KubeClient', () => {
  it('closes pooled connections left idle after a burst', async () => {
    const { client, open } = await serve((_req, res) => setTimeout(() => ok(res), 100));
    const c = client(undefined, 300);
    await Promise.all(
      Array.from({ length: 8 }, () =>
        c.request('GET', '/api/v1/pods', { verb: 'list', resource: 'pods' }),
      ),
    );
    expect(open()).toBe(8);
    await new Promise((r) => setTimeout(r, 800));
    expect(open()).toBe(0);
    // The pool opens connections again for the next request.
    await c.request('GET', '/api/v1/pods', { verb: 'list', resource: 'pods' });
    expect(open()).toBe(1);
  });

  it('sends a request answered 429 again after its Retry-After', async () => {
    const { client, arrivals } = await serve((_req, res, n) => {
      if (n === 1) {
        res.writeHead(429, { 'Retry-After': '1', 'Content-Type': 'application/json' });
        res.end('{"reason":"TooManyRequests","message":"slow down"}');
      } else ok(res);
    });
    await client().request('GET', '/api/v1/namespaces', { verb: 'list', resource: 'namespaces' });
    expect(arrivals).toHaveLength(2);
    expect(arrivals[1]! - arrivals[0]!).toBeGreaterThanOrEqual(990);
  });

  it('gives up on 429 at its deadline, with the 429', async () => {
    const { client } = await serve((_req, res) => {
      res.writeHead(429, { 'Retry-After': '5', 'Content-Type': 'application/json' });
      res.end('{"reason":"TooManyRequests","message":"slow down"}');
    });
    const err = await client()
      .request('GET', '/api/v1/pods', { verb: 'list', resource: 'pods', timeoutMs: 300 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe(429);
  });

  it('holds requests beyond the burst to the QPS of its token bucket', async () => {
    const { client, arrivals } = await serve((_req, res) => ok(res));
    const c = client({ qps: 10, burst: 2 });
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 6 }, () =>
        c.request('GET', '/api/v1/pods', { verb: 'list', resource: 'pods' }),
      ),
    );
    // 2 at once, then one per 100 ms: the last no earlier than 400 ms after they were issued.
    expect(arrivals).toHaveLength(6);
    expect(Math.max(...arrivals) - t0).toBeGreaterThanOrEqual(380);
  });

  it('ends a request that gets no answer at its hard deadline, and on its signal', async () => {
    const { client, arrivals } = await serve(() => undefined); // never answers
    const c = client();
    await expect(
      c.request('GET', '/api/v1/pods', { verb: 'list', resource: 'pods', timeoutMs: 200 }),
    ).rejects.toThrow(/aborted/);
    const term = new AbortController();
    const pending = c
      .withSignal(term.signal)
      .request('GET', '/api/v1/pods', { verb: 'list', resource: 'pods' });
    while (arrivals.length < 2) await new Promise((r) => setTimeout(r, 5)); // in flight
    term.abort(new Error('leadership ended'));
    await expect(pending).rejects.toThrow(/aborted \(leadership ended\)/);
    // A view whose term is over sends nothing more.
    await expect(
      c.withSignal(term.signal).request('GET', '/x', { verb: 'get', resource: 'x' }),
    ).rejects.toThrow(/aborted before it was sent/);
  });
});
