// A TCP proxy in front of the API server that a test can stall: while stalled it forwards
// nothing in either direction and holds what arrives (a partition where packets are delayed),
// so requests on its connections hang until their client gives up. heal() delivers what it
// held, in order, as TCP does when a partition ends: a request sent into the partition
// reaches the server late, even when its client has given up or exited meanwhile (the
// client's kernel keeps retransmitting an orphaned connection's data). That late arrival is
// the hazard a stalled leader must be safe against.
// delay(ms): every chunk, both ways, is forwarded `ms` later (in order): an API server that
// answers slowly, or a congested link; delay(0) ends it.
// cut(): every open connection is closed (an API server restarting), new ones go through.
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface StallProxy {
  readonly port: number;
  /** Bytes from clients held during the last stall and delivered to the server by heal(). */
  readonly deliveredLate: () => number;
  stall(): void;
  heal(): void;
  delay(ms: number): void;
  cut(): void;
  close(): Promise<void>;
}

interface Conn {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  stalled: boolean;
  /** The client closed while stalled: deliver what it sent, then close once answered. */
  clientGone: boolean;
  readonly toServer: Buffer[];
  readonly toClient: Buffer[];
}

/** Writes chunks to `to` after the proxy's current delay, keeping their order. */
function delayedWriter(to: net.Socket, delayOf: () => number) {
  let lastDue = 0;
  return (d: Buffer) => {
    const ms = delayOf();
    if (ms <= 0 && lastDue <= Date.now()) {
      to.write(d);
      return;
    }
    const due = Math.max(Date.now() + ms, lastDue);
    lastDue = due;
    setTimeout(() => {
      if (!to.destroyed) to.write(d);
    }, due - Date.now());
  };
}

export async function startStallProxy(target: { host: string; port: number }): Promise<StallProxy> {
  let stalled = false;
  let late = 0;
  let delayMs = 0;
  const live = new Set<Conn>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    const conn: Conn = { client, upstream, stalled, clientGone: false, toServer: [], toClient: [] };
    live.add(conn);
    const end = () => {
      live.delete(conn);
      client.destroy();
      upstream.destroy();
    };
    const toServer = delayedWriter(upstream, () => delayMs);
    const toClient = delayedWriter(client, () => delayMs);
    client.on('data', (d: Buffer) => {
      if (conn.stalled) conn.toServer.push(d);
      else toServer(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (conn.stalled) conn.toClient.push(d);
      // Delivered late for a client gone meanwhile: the server has answered, into the void.
      else if (conn.clientGone) upstream.end();
      else toClient(d);
    });
    // A client that goes away during the stall leaves its data in flight.
    const clientClosed = () => {
      if (conn.stalled) conn.clientGone = true;
      else end();
    };
    client.on('error', clientClosed);
    client.on('close', clientClosed);
    upstream.on('error', end);
    upstream.on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    deliveredLate: () => late,
    stall: () => {
      stalled = true;
      late = 0;
      for (const c of live) c.stalled = true;
    },
    heal: () => {
      stalled = false;
      for (const c of [...live].filter((x) => x.stalled)) {
        c.stalled = false;
        for (const d of c.toServer.splice(0)) {
          late += d.length;
          c.upstream.write(d);
        }
        if (c.clientGone) {
          // The worst case for the server: it reads and serves the request before it sees the
          // client's FIN (a FIN right behind the data makes Go's server cancel the request).
          // The connection ends when the answer comes, or after 30 s.
          setTimeout(() => c.upstream.destroy(), 30_000).unref();
          continue;
        }
        for (const d of c.toClient.splice(0)) c.client.write(d);
      }
    },
    delay: (ms) => {
      delayMs = ms;
    },
    cut: () => {
      for (const c of [...live]) {
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
