// The /status merge patch, conditional on the app's resourceVersion: a status computed from one
// version of the app must not land on a later one. An operator replica that lost its lease
// while a status write sat in a stalled connection would otherwise overwrite its successor's
// status when the connection heals (operator-lease-stall saw it: a late 'patch 200').
import { olderThan } from './project.ts';

type Json = Record<string, unknown>;

/**
 * `{metadata: {resourceVersion}, status}`: every field of `next`, null for those of `previous`
 * it drops, and the newest of the versions given (the cached app's, and that of our own last
 * status write when the cache has not caught up with it: our own write is no conflict).
 */
export function statusPatch(
  previous: Json,
  next: Json,
  versions: ReadonlyArray<string | undefined>,
): Json {
  const status: Json = { ...next };
  for (const k of Object.keys(previous)) if (!(k in next)) status[k] = null;
  const known = versions.filter((v): v is string => v !== undefined && v !== '');
  const resourceVersion = known.reduce<string | undefined>(
    (newest, v) => (newest === undefined || olderThan(newest, v) ? v : newest),
    undefined,
  );
  return resourceVersion === undefined ? { status } : { metadata: { resourceVersion }, status };
}
