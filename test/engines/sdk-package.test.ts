// The SDK as an app outside this repository gets it: `npm pack` of the built package
// (sdk/build.ts), installed from the tarball into a scratch app in a temporary directory
// (npm ci --offline: the dependencies from npm's local cache, no registry), then imported by
// plain Node 22 ESM (no TypeScript, no loader) to route keys by the contract and to
// cache-aside through a real Redis started as the cache tier renders it.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeShardMap, shardFor } from '../../sdk/src/contract/index.ts';
import { Harness, USERS_SECRET, client, configMapData } from './redis-harness.ts';
import type { Instance } from './redis-harness.ts';
import { podEnv, renderApp } from './sdk-harness.ts';
import { installScratchApp } from './sdk-scratch-app.ts';
import type { ScratchApp } from './sdk-scratch-app.ts';

const REPO = join(import.meta.dirname, '..', '..');
/** Keys and the buckets the contract gives them (sha256, first 4 bytes big-endian, mod 1024). */
const VECTORS: Readonly<Record<string, number>> = {
  'customer-42': 819,
  '42': 180,
  '0': 870,
  'alice@example.com': 25,
  '-9223372036854775808': 119,
};

const redis = new Harness();
let scratch: ScratchApp;
let app: string;

/** Every file under `dir`, relative to it. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)));
}

beforeAll(async () => {
  await redis.init();
  scratch = installScratchApp();
  app = scratch.dir;
}, 600_000);

afterAll(async () => {
  await redis.cleanup();
  scratch?.remove();
});

describe('@scalable-dev/sdk installed from its tarball into an app outside the repository', () => {
  it('ships compiled JavaScript with declarations, a manifest of its own and no sources', () => {
    // Outside the repository: nothing of its node_modules can resolve from there.
    expect(relative(REPO, app).startsWith('..')).toBe(true);
    const installed = join(app, 'node_modules', '@scalable-dev', 'sdk');
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(manifest['private']).toBeUndefined();
    expect(manifest['devDependencies']).toBeUndefined();
    expect(manifest['exports']).toEqual({
      '.': { types: './dist/index.d.ts', default: './dist/index.js' },
      './contract': { types: './dist/contract/index.d.ts', default: './dist/contract/index.js' },
    });
    const files = filesUnder(installed);
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    expect(files).toEqual(
      expect.arrayContaining(['dist/index.js', 'dist/index.d.ts', 'README.md', 'LICENSE']),
    );
    // Relative imports point at the compiled files (tsc rewrote `.ts` to `.js`).
    const index = readFileSync(join(installed, 'dist', 'index.js'), 'utf8');
    expect(index).toMatch(/from ["']\.\/connect\.js["']/);
    expect(index).not.toMatch(/from ["']\.[^"']*\.ts["']/);
    // It depends on what the workspace package does at run time, nothing else; those were
    // installed beside it, from the cache.
    const workspace = JSON.parse(readFileSync(join(REPO, 'sdk', 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    expect(manifest['dependencies']).toEqual(workspace.dependencies);
    for (const dep of Object.keys(manifest['dependencies'] as object))
      expect(existsSync(join(app, 'node_modules', dep, 'package.json')), dep).toBe(true);
  });

  it('routes keys by the contract: the known bucket vectors, and the same shard as the repository’s code', async () => {
    const shards = [0, 1].map((index) => ({
      index,
      primary: `shop-db-${index}.prod.svc`,
      replicas: `shop-db-${index}-ro.prod.svc`,
      port: 5432,
    }));
    const r = await scratch.run(
      `import { BUCKETS, bucketOf, makeShardMap, shardFor } from '@scalable-dev/sdk';
import * as contract from '@scalable-dev/sdk/contract';
const keys = ${JSON.stringify(Object.keys(VECTORS))};
const map = makeShardMap({ version: 1, database: 'shop', shards: ${JSON.stringify(shards)} });
console.log(JSON.stringify({
  buckets: BUCKETS,
  vectors: Object.fromEntries(keys.map((k) => [k, bucketOf(k)])),
  bigint: bucketOf(-9223372036854775808n),
  viaContract: contract.bucketOf('customer-42'),
  shards: Object.fromEntries(keys.map((k) => [k, shardFor(map, k).index])),
}));
`,
      {},
    );
    expect(r.code, r.out).toBe(0);
    const got = JSON.parse(r.out) as {
      buckets: number;
      vectors: Record<string, number>;
      bigint: number;
      viaContract: number;
      shards: Record<string, number>;
    };
    expect(got.buckets).toBe(1024);
    expect(got.vectors).toEqual(VECTORS);
    for (const [k, b] of Object.entries(VECTORS))
      expect(createHash('sha256').update(k).digest().readUInt32BE(0) % 1024, k).toBe(b);
    expect(got.bigint).toBe(VECTORS['-9223372036854775808']);
    expect(got.viaContract).toBe(VECTORS['customer-42']);
    const map = makeShardMap({ version: 1, database: 'shop', shards });
    expect(got.shards).toEqual(
      Object.fromEntries(Object.keys(VECTORS).map((k) => [k, shardFor(map, k).index])),
    );
  });

  it('connect() reads the pod env and cache-asides through a real Redis (TLS, ACL user)', async () => {
    const { objects } = renderApp({ cache: { memory: '32Mi', defaultTTLSeconds: 120 } });
    const inst: Instance = await redis.start(
      'cache',
      'start-redis.sh',
      configMapData(objects, 'shop-cache-config'),
    );
    const env = podEnv(objects, {
      secrets: { 'shop-cache-users': USERS_SECRET },
      values: { 'rediss://shop-cache.prod.svc:6379/0': `rediss://127.0.0.1:${inst.port}/0` },
      caFile: redis.caFile,
    });
    const r = await scratch.run(
      `import { connect } from '@scalable-dev/sdk';
const sdk = await connect();
let calls = 0;
const load = async () => { calls++; return { user: 42, photos: ['a', 'b'] }; };
const first = await sdk.cache.getOrSet('timeline:42', load);
const second = await sdk.cache.getOrSet('timeline:42', load);
await sdk.close();
console.log(JSON.stringify({ first, second, calls, db: sdk.db === undefined }));
`,
      env,
    );
    expect(r.code, r.out).toBe(0);
    expect(JSON.parse(r.out.trim().split('\n').at(-1) ?? '')).toEqual({
      first: { user: 42, photos: ['a', 'b'] },
      second: { user: 42, photos: ['a', 'b'] },
      calls: 1,
      db: true,
    });
    // The value is in Redis, with the operator's TTL.
    const raw = client(inst.port);
    try {
      const keys = await raw.keys('*timeline:42*');
      expect(keys).toHaveLength(1);
      const ttl = await raw.ttl(keys[0] ?? '');
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(120);
    } finally {
      raw.disconnect();
    }
  });
});
