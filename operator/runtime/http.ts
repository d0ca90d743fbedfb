// /metrics, /healthz, /readyz on one small HTTP server.
import { http } from './node-http.ts';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface Probes {
  readonly healthy: () => boolean;
  /** Undefined when ready, else why not. */
  readonly notReady: () => string | undefined;
}

export async function startHttpServer(
  port: number,
  host: string,
  registry: Registry,
  probes: Probes,
): Promise<{ port: number; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (code: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(code, { 'Content-Type': type });
      res.end(body);
    };
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => send(200, text, registry.contentType),
        (err: unknown) => send(500, String(err)),
      );
    } else if (path === '/healthz') {
      if (probes.healthy()) send(200, 'ok\n');
      else send(500, 'unhealthy\n');
    } else if (path === '/readyz') {
      const why = probes.notReady();
      if (why === undefined) send(200, 'ok\n');
      else send(503, `${why}\n`);
    } else send(404, 'not found\n');
  });
  // Longer than scrapers keep idle connections: a server that closes first races their next
  // request (ECONNRESET).
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
