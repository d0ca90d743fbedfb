// The shard hash in TypeScript equals the one in a real Postgres, key for key: 10,000
// random text keys (multi-byte included) and 10,000 random bigints, through both the SQL
// expression the shard map publishes and the IMMUTABLE function the bootstrap creates.
// Postgres is the postgres-patroni image's.
import { randomBytes, randomInt } from 'node:crypto';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUCKETS, bucketFunctionSql, bucketOf, bucketSql } from '../../sdk/src/contract/index.ts';
import { ENGINE_IMAGES, ENGINE_UID, startContainer } from './containers.ts';
import type { Container } from './containers.ts';

const N = 10_000;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() =>
        typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port')),
      );
    });
  });
}

/** A random string of 0-24 code points: ASCII, Latin, CJK, emoji; never NUL or a surrogate. */
function randomText(): string {
  const ranges: Array<[number, number]> = [
    [0x20, 0x7e],
    [0xa0, 0x24f],
    [0x4e00, 0x9fff],
    [0x1f300, 0x1faff],
    [0x1, 0x1f],
  ];
  let s = '';
  for (let i = randomInt(0, 25); i > 0; i--) {
    const [lo, hi] = ranges[randomInt(0, ranges.length)]!;
    s += String.fromCodePoint(randomInt(lo, hi + 1));
  }
  return s;
}

const randomBigint = (): bigint => randomBytes(8).readBigInt64BE(0);

describe('shard hash: TypeScript == Postgres', () => {
  let dir = '';
  let server: Container | undefined;
  let client: pg.Client;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pg-hash-'));
    chownSync(dir, ENGINE_UID, ENGINE_UID);
    const data = join(dir, 'data');
    const port = await freePort();
    // initdb, then the postmaster as the container's main process.
    server = startContainer({
      image: ENGINE_IMAGES.postgres,
      name: 'pg-hash',
      entrypoint: 'sh',
      args: [
        '-c',
        `initdb -D ${data} -E UTF8 --locale=C.UTF-8 -A trust -U postgres >/dev/null && exec postgres -D ${data} -p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${dir}`,
      ],
      mounts: [dir],
    });
    const deadline = Date.now() + 60_000;
    for (;;) {
      client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
      try {
        await client.connect();
        break;
      } catch (e) {
        await client.end().catch(() => undefined);
        if (!server.running) throw new Error(`postgres exited:\n${server.output}`);
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    await client.query(bucketFunctionSql());
  });

  afterAll(async () => {
    await client?.end().catch(() => undefined);
    await server?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(`agrees on ${N} random text keys`, async () => {
    const keys = Array.from({ length: N }, randomText);
    keys.push('', 'customer-42', 'é', '日本', '🚀');
    const { rows } = await client.query<{ sql: number; fn: number }>(
      `SELECT ${bucketSql('k')} AS sql, scalable_bucket(k) AS fn FROM unnest($1::text[]) WITH ORDINALITY AS t(k, i) ORDER BY i`,
      [keys],
    );
    const mismatches = keys.filter(
      (k, i) => rows[i]?.sql !== bucketOf(k) || rows[i]?.fn !== bucketOf(k),
    );
    expect(rows).toHaveLength(keys.length);
    expect(mismatches).toEqual([]);
    expect(new Set(rows.map((r) => r.sql)).size).toBeGreaterThan(BUCKETS * 0.99);
  });

  it(`agrees on ${N} random bigint keys`, async () => {
    const keys = Array.from({ length: N }, randomBigint);
    keys.push(0n, -1n, 9223372036854775807n, -9223372036854775808n);
    const { rows } = await client.query<{ sql: number; fn: number }>(
      `SELECT ${bucketSql('k')} AS sql, scalable_bucket(k::text) AS fn FROM unnest($1::bigint[]) WITH ORDINALITY AS t(k, i) ORDER BY i`,
      [keys.map(String)],
    );
    const mismatches = keys.filter(
      (k, i) => rows[i]?.sql !== bucketOf(k) || rows[i]?.fn !== bucketOf(k),
    );
    expect(rows).toHaveLength(keys.length);
    expect(mismatches).toEqual([]);
  });
});
