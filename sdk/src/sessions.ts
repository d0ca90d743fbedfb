// Sessions live in the session Redis (AOF, noeviction: never the evictable cache), so any
// web pod serves any user and a restart logs nobody out. connect-redis is the store;
// express-session is the middleware; the TTL is the operator's SESSION_TTL_SECONDS.
import { RedisStore } from 'connect-redis';
import session from 'express-session';
import type { SessionOptions } from 'express-session';
import type { RequestHandler } from 'express';
import { createClient } from 'redis';
import type { RedisClientType } from 'redis';
import { serverName } from './redis.ts';

export interface SessionsOptions {
  /** rediss:// for TLS: the server is verified by the URL's host against `ca`. */
  readonly url: string;
  /** The app's ACL user (the default user is off on the operator's Redis). */
  readonly username?: string;
  readonly password?: string;
  /**
   * The CA (PEM) a rediss:// server is verified against; absent: the system's CAs. An array
   * is read at each connection (ca-file.ts keeps one current), a string once.
   */
  readonly ca?: string | string[];
  readonly ttlSeconds: number;
  readonly secret?: string;
  readonly prefix?: string;
  readonly onError?: (where: string, e: Error) => void;
}

export class Sessions {
  readonly client: RedisClientType;
  readonly store: RedisStore;
  readonly #options: SessionsOptions;

  private constructor(client: RedisClientType, options: SessionsOptions) {
    this.client = client;
    this.#options = options;
    this.store = new RedisStore({
      client,
      prefix: options.prefix ?? 'sess:',
      ttl: options.ttlSeconds,
    });
  }

  static async open(options: SessionsOptions): Promise<Sessions> {
    const tls = /^rediss:\/\//i.test(options.url);
    const client: RedisClientType = createClient({
      url: options.url,
      ...(options.username === undefined ? {} : { username: options.username }),
      ...(options.password === undefined ? {} : { password: options.password }),
      ...(tls
        ? {
            socket: {
              tls: true as const,
              rejectUnauthorized: true,
              ...serverName(options.url),
              ...(options.ca === undefined ? {} : { ca: options.ca }),
            },
          }
        : {}),
    });
    client.on('error', (e: Error) => options.onError?.('session store', e));
    await client.connect();
    return new Sessions(client, options);
  }

  /**
   * express-session on this store: cookie lifetime = the session TTL, nothing stored until
   * the session holds data. The secret comes from SESSION_SECRET unless given here.
   */
  middleware(overrides: Partial<SessionOptions> = {}): RequestHandler {
    const secret = overrides.secret ?? this.#options.secret;
    if (!secret) throw new Error('sessions need a secret: set SESSION_SECRET or pass secret');
    return session({
      store: this.store,
      resave: false,
      saveUninitialized: false,
      rolling: true,
      ...overrides,
      secret,
      cookie: {
        maxAge: this.#options.ttlSeconds * 1000,
        httpOnly: true,
        sameSite: 'lax',
        ...overrides.cookie,
      },
    }) as RequestHandler;
  }

  async close(): Promise<void> {
    if (this.client.isOpen) await this.client.close();
  }
}
