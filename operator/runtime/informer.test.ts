// The informer against a scripted API server on loopback: what it does when a watch expires
// (410), goes silent, or fails, which @kubernetes/client-node's informer stops on.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { Informer } from './informer.ts';
import { KubeClient } from './kube-client.ts';
import { createLogger } from './log.ts';

type Handler = (
  watch: boolean,
  res: http.ServerResponse,
  n: { lists: number; watches: number },
) => void;

const item = (name: string, rv: string) => ({
  metadata: { name, namespace: 'ns', resourceVersion: rv },
});

async function fakeApi(handler: Handler) {
  const n = { lists: 0, watches: 0 };
  const server = http.createServer((req, res) => {
    const watch = new URL(req.url ?? '/', 'http://x').searchParams.get('watch') === 'true';
    if (watch) n.watches++;
    else n.lists++;
    handler(watch, res, n);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const client = KubeClient.fromConnection({ server: `http://127.0.0.1:${port}` });
  return {
    n,
    client,
    close: () => {
      client.close();
      server.closeAllConnections();
      server.close();
    },
  };
}

const list = (res: http.ServerResponse, rv: string, names: string[]) => {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end(
    JSON.stringify({ metadata: { resourceVersion: rv }, items: names.map((x) => item(x, rv)) }),
  );
};

async function until(what: string, cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(20);
  }
}

let cleanup: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

function informer(client: KubeClient, idleMs = 10_000) {
  const inf = new Informer<{ name: string }>({
    client,
    path: '/api/v1/things',
    resource: 'things',
    project: (o) => ({ name: String((o['metadata'] as { name: string }).name) }),
    onChange: () => undefined,
    log: createLogger('silent'),
    idleMs,
  });
  inf.start();
  cleanup.push(() => inf.stop());
  return inf;
}

describe('Informer', () => {
  it('relists when the watch says 410 Gone', async () => {
    const api = await fakeApi((watch, res, n) => {
      if (!watch) return list(res, n.lists === 1 ? '10' : '20', n.lists === 1 ? ['a'] : ['a', 'b']);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      if (n.watches === 1)
        res.write(JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410 } }) + '\n');
    });
    cleanup.push(api.close);
    const inf = informer(api.client);
    await until('b arrives through the relist', () => inf.get('ns/b') !== undefined);
    expect(api.n.lists).toBe(2);
    expect(
      inf
        .list()
        .map((x) => x.name)
        .sort(),
    ).toEqual(['a', 'b']);
  });

  it('restarts a watch that went silent (the watchdog)', async () => {
    const api = await fakeApi((watch, res) => {
      if (!watch) return list(res, '10', ['a']);
      res.writeHead(200, { 'Content-Type': 'application/json' }); // and never a byte more
    });
    cleanup.push(api.close);
    informer(api.client, 300);
    await until('a second watch', () => api.n.watches >= 2);
  });

  it('keeps going after server errors, and applies events from the new watch', async () => {
    const api = await fakeApi((watch, res, n) => {
      if (!watch) return list(res, '10', ['a']);
      if (n.watches <= 2) {
        res.writeHead(500);
        res.end('{"message":"boom"}');
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write(JSON.stringify({ type: 'ADDED', object: item('c', '11') }) + '\n');
      res.write(JSON.stringify({ type: 'DELETED', object: item('a', '12') }) + '\n');
    });
    cleanup.push(api.close);
    const inf = informer(api.client);
    await until(
      'events of the third watch',
      () => inf.get('ns/c') !== undefined && inf.get('ns/a') === undefined,
      8_000,
    );
  });
});
