// A TCP proxy in front of the API server that a test can stall: while stalled it forwards
// nothing in either direction and drops what arrives (a partition where packets are lost),
// so requests on its connections hang until their client gives up. heal() cuts the stalled
// connections (their TLS streams lost bytes) and forwards new ones again.
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface StallProxy {
  readonly port: number;
  /** Bytes from clients that reached the server since the last stall began. */
  readonly forwardedSinceStall: () => number;
  stall(): void;
  heal(): void;
  close(): Promise<void>;
}

export async function startStallProxy(target: { host: string; port: number }): Promise<StallProxy> {
  let stalled = false;
  let sinceStall = 0;
  const live = new Set<{ client: net.Socket; upstream: net.Socket; stalled: boolean }>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    const conn = { client, upstream, stalled };
    live.add(conn);
    const end = () => {
      live.delete(conn);
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (d: Buffer) => {
      if (stalled || conn.stalled) return;
      sinceStall += d.length;
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (!stalled && !conn.stalled) client.write(d);
    });
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', end);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    forwardedSinceStall: () => sinceStall,
    stall: () => {
      stalled = true;
      sinceStall = 0;
      for (const c of live) c.stalled = true;
    },
    heal: () => {
      stalled = false;
      for (const c of [...live].filter((x) => x.stalled)) {
        c.client.destroy();
        c.upstream.destroy();
        live.delete(c);
      }
    },
    close: async () => {
      for (const c of live) {
        c.client.destroy();
        c.upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
