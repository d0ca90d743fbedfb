// connect(): every client the injected env describes, ready to use. A tier the app's
// ScalableApp leaves out is simply absent (e.g. `sdk.db` is undefined without a database).
import type { PoolConfig } from 'pg';
import type { RedisOptions } from 'ioredis';
import { Cache } from './cache.ts';
import { Database } from './db/database.ts';
import { pgSsl } from './db/tls.ts';
import { LiveShardMap } from './db/live-shard-map.ts';
import { settingsFromEnv } from './env.ts';
import type { Env, Settings } from './env.ts';
import { Queue } from './queue/index.ts';
import { redisClient } from './redis.ts';
import { liveCa } from './ca-file.ts';
import { Sessions } from './sessions.ts';

export interface ConnectOptions {
  /** Defaults to process.env. */
  readonly env?: Env;
  /** Extra pg settings for every pool (TLS comes from the env: DATABASE_SSLMODE). */
  readonly pg?: Partial<PoolConfig>;
  /** Extra ioredis settings for the cache and queue clients (e.g. `natMap`). */
  readonly redis?: RedisOptions;
  /** How often the shard map file is re-read besides the directory watch. */
  readonly shardMapPollMs?: number;
  /** Where the SDK reports what it survives (a replica down, a cache miss by error, ...). */
  readonly onError?: (where: string, e: Error) => void;
}

export interface Scalable {
  readonly settings: Settings;
  readonly db: Database | undefined;
  readonly cache: Cache | undefined;
  readonly sessions: Sessions | undefined;
  readonly queue: Queue | undefined;
  /** Close everything: consumers finish in-flight messages first. */
  close(): Promise<void>;
}

const defaultOnError = (where: string, e: Error) =>
  console.warn(JSON.stringify({ level: 'warn', sdk: where, error: e.message }));

export async function connect(options: ConnectOptions = {}): Promise<Scalable> {
  const settings = settingsFromEnv(options.env ?? process.env);
  const onError = options.onError ?? defaultOnError;
  const opened: Array<() => Promise<unknown>> = [];
  try {
    let db: Database | undefined;
    if (settings.database) {
      const d = settings.database;
      const ssl = pgSsl(d.tls);
      const map = new LiveShardMap(d.shardMapPath, {
        ...(options.shardMapPollMs ? { pollMs: options.shardMapPollMs } : {}),
        onRefused: (e) => onError('shard map', e),
      });
      db = new Database(map, {
        database: d.database,
        user: d.user,
        ...(d.password === undefined ? {} : { password: d.password }),
        poolMax: d.poolMax,
        replicaConnectTimeoutMs: d.replicaConnectTimeoutMs,
        ...(d.replicaMaxLagSeconds === undefined
          ? {}
          : { replicaMaxLagSeconds: d.replicaMaxLagSeconds }),
        // TLS from the env (DATABASE_SSLMODE); options.pg may still override `ssl`.
        pool: { ...(ssl ? { ssl } : {}), ...options.pg },
        onError,
      });
      const database = db;
      opened.push(async () => {
        await database.close();
        map.close();
      });
    }
    let cache: Cache | undefined;
    if (settings.cache) {
      // A cache that cannot answer fast is skipped, not waited for.
      const redis = redisClient(settings.cache.redis, {
        maxRetriesPerRequest: 1,
        commandTimeout: 1_000,
        ...options.redis,
      });
      redis.on('error', (e: Error) => onError('cache', e));
      opened.push(() => redis.quit().catch(() => undefined));
      cache = new Cache(redis, { ttlSeconds: settings.cache.ttlSeconds, onError });
    }
    let sessions: Sessions | undefined;
    if (settings.sessions) {
      const s = settings.sessions;
      if (s.redis.kind !== 'url') throw new Error('the session store is reached by URL');
      const caFile = s.redis.tls?.caFile;
      sessions = await Sessions.open({
        url: s.redis.url,
        ...(s.redis.username === undefined ? {} : { username: s.redis.username }),
        ...(s.redis.password === undefined ? {} : { password: s.redis.password }),
        ...(caFile ? { ca: liveCa(caFile) } : {}),
        ttlSeconds: s.ttlSeconds,
        ...(s.secret === undefined ? {} : { secret: s.secret }),
        onError,
      });
      const store = sessions;
      opened.push(() => store.close());
    }
    let queue: Queue | undefined;
    if (settings.queue) {
      const redis = redisClient(settings.queue.redis, options.redis);
      redis.on('error', (e: Error) => onError('queue', e));
      queue = new Queue(redis, settings.queue, onError);
      const q = queue;
      opened.push(() => q.close());
    }
    let closing: Promise<void> | undefined;
    return {
      settings,
      db,
      cache,
      sessions,
      queue,
      close() {
        // Queue first: its consumers may still write to the database and the cache.
        closing ??= (async () => {
          for (const close of [...opened].reverse()) await close();
        })();
        return closing;
      },
    };
  } catch (e) {
    for (const close of opened.reverse()) await close().catch(() => undefined);
    throw e;
  }
}
