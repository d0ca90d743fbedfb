// The producer side: one XADD per message, the payload as JSON in one field, so a worker
// in any language can read it. Web pods get this for every stream.
import type { Redis } from 'ioredis';

export const PAYLOAD_FIELD = 'payload';

export interface EnqueueOptions {
  /**
   * Trim the stream to about this many entries (MAXLEN ~). Trimming drops the oldest
   * entries whether or not a group acknowledged them: size it above the worst backlog.
   */
  readonly maxLen?: number;
}

export async function enqueue(
  redis: Redis,
  stream: string,
  payload: unknown,
  options: EnqueueOptions = {},
): Promise<string> {
  const body = JSON.stringify(payload);
  const id =
    options.maxLen === undefined
      ? await redis.xadd(stream, '*', PAYLOAD_FIELD, body)
      : await redis.xadd(stream, 'MAXLEN', '~', options.maxLen, '*', PAYLOAD_FIELD, body);
  if (id === null) throw new Error(`XADD to ${stream} returned no id`);
  return id;
}

/** Stream entry fields ([k, v, k, v, ...]) as a record. */
export function fieldsOf(flat: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i] as string] = flat[i + 1] as string;
  return out;
}
