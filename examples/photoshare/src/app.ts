// The web tier: stateless (sessions in Redis, data in the shards), so any pod serves any
// request. Users are sharded by user_id; every query names the user it routes by.
// Read-your-writes: the login session (in Redis) carries the database write token of the
// user's last write (`dbToken`); every request reads through `db.session(dbToken)`, so a
// replica that has not replayed that write is passed over for the primary. The token
// travels with the session cookie to whichever web pod takes the next request.
import { randomBytes, randomUUID, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import type { DbSession, Scalable } from '@scalable-dev/sdk';
import { THUMBNAIL_STREAM, refreshTimeline, timeline } from './timeline.ts';

declare module 'express-session' {
  interface SessionData {
    userId: string;
    /** The write token of this user's last write: their reads see it (db.session). */
    dbToken: string;
  }
}

const scryptAsync = promisify(scrypt) as (pw: string, salt: Buffer, len: number) => Promise<Buffer>;

async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  return `${salt.toString('hex')}:${(await scryptAsync(password, salt, 32)).toString('hex')}`;
}

async function checkPassword(password: string, stored: string): Promise<boolean> {
  const [salt, hash] = stored.split(':');
  if (!salt || !hash) return false;
  const got = await scryptAsync(password, Buffer.from(salt, 'hex'), 32);
  return timingSafeEqual(got, Buffer.from(hash, 'hex'));
}

export function createApp(sdk: Scalable): express.Express {
  const db = sdk.db;
  const sessions = sdk.sessions;
  const queue = sdk.queue;
  if (!db || !sessions || !queue)
    throw new Error('photoshare needs the database, sessions and queue tiers');
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '8mb' }));
  app.use(sessions.middleware());

  /** The database as this user's session has written to it. */
  const dbOf = (req: Request): DbSession => db.session(req.session.dbToken);
  /** Keep the session's write token with the login session, for the next request. */
  const remember = (req: Request, s: DbSession) => {
    if (s.token) req.session.dbToken = s.token;
  };

  const loggedIn = (req: Request, res: Response, next: NextFunction) => {
    if (req.session.userId) next();
    else res.status(401).json({ error: 'log in first' });
  };

  app.get('/healthz', (_req, res) => void res.json({ ok: true }));

  app.post('/signup', async (req, res) => {
    const { name, password } = req.body as { name?: string; password?: string };
    if (!name || !password) return void res.status(400).json({ error: 'name and password' });
    const userId = randomUUID();
    const s = dbOf(req);
    await s.write(userId, 'INSERT INTO users (user_id, name, password_hash) VALUES ($1, $2, $3)', [
      userId,
      name,
      await hashPassword(password),
    ]);
    req.session.userId = userId;
    remember(req, s);
    res.status(201).json({ userId });
  });

  app.post('/login', async (req, res) => {
    const { userId, password } = req.body as { userId?: string; password?: string };
    if (!userId || !password) return void res.status(400).json({ error: 'userId and password' });
    // From the primary: a user who just signed up may not be on the replica yet.
    const { rows } = await db.read<{ password_hash: string }>(
      userId,
      'SELECT password_hash FROM users WHERE user_id = $1',
      [userId],
      { primary: true },
    );
    if (!rows[0] || !(await checkPassword(password, rows[0].password_hash)))
      return void res.status(401).json({ error: 'wrong user or password' });
    req.session.userId = userId;
    res.json({ userId });
  });

  app.post('/logout', (req, res) => {
    req.session.destroy(() => res.status(204).end());
  });

  app.get('/me', loggedIn, async (req, res) => {
    const userId = req.session.userId as string;
    const { rows } = await dbOf(req).read<{ name: string }>(
      userId,
      'SELECT name FROM users WHERE user_id = $1',
      [userId],
    );
    res.json({ userId, name: rows[0]?.name });
  });

  app.post('/photos', loggedIn, async (req, res) => {
    const userId = req.session.userId as string;
    const { caption, png } = req.body as { caption?: string; png?: string };
    if (!png) return void res.status(400).json({ error: 'png (base64) is required' });
    const photoId = randomUUID();
    const s = dbOf(req);
    await s.write(
      userId,
      'INSERT INTO photos (user_id, photo_id, caption, image) VALUES ($1, $2, $3, $4)',
      [userId, photoId, caption ?? '', Buffer.from(png, 'base64')],
    );
    remember(req, s);
    // The token rides along: the worker reads the photo where it has been replayed.
    await queue.enqueue(THUMBNAIL_STREAM, { userId, photoId, dbToken: s.token });
    await refreshTimeline(sdk, userId, s);
    res.status(201).json({ photoId });
  });

  app.get('/users/:userId/photos', async (req, res) => {
    res.json(await timeline(sdk, req.params.userId));
  });

  app.get('/users/:userId/photos/:photoId/thumbnail', async (req, res) => {
    const { userId, photoId } = req.params;
    const { rows } = await db.read<{ thumbnail: Buffer | null }>(
      userId,
      'SELECT thumbnail FROM photos WHERE user_id = $1 AND photo_id = $2',
      [userId, photoId],
    );
    const thumb = rows[0]?.thumbnail;
    if (!thumb) return void res.status(404).json({ error: 'no thumbnail yet' });
    res.type('image/png').set('Cache-Control', 'public, max-age=31536000, immutable').send(thumb);
  });

  app.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
    console.error(JSON.stringify({ level: 'error', msg: err.message }));
    res.status(500).json({ error: 'internal error' });
  });
  return app;
}
