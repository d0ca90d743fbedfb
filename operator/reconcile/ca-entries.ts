// Which entries of the CA Secret (certificates.ts caStore) belong to apps that are gone, and
// which entries still lack the record of their app. Pure: the caller reads the Secret and the
// apps, and writes the answer back with the resourceVersion it read.
//
// Why this is needed: every app's CA key pair is kept in one Secret; nothing removed a deleted
// app's entries, so its CA private key stayed for ever and the Secret grew by ~1.5 KiB per app
// ever created, until the API server's 1 MiB object limit refused every new app's CA.
//
// Whose entries this operator may remove: entries are keyed by the app's uid, and the Secret
// may be shared by operators watching different namespaces (SCALABLE_WATCH_NAMESPACES, one
// release namespace). So each entry records its app (`<uid>.app` = namespace/name), and an
// operator removes only entries of namespaces it watches, whose uid none of its apps has.
// Entries written before that record existed get it from the first operator that sees their
// app; an entry without it whose app is already gone can be attributed to no namespace, and
// is removed only by an operator that watches every namespace (it would see the app anywhere).
// The legacy shared CA (`tls.crt`, `tls.key`) and any key not named after a uid are never
// touched here.

/** `<uid>.app`: the namespace/name of the app the entry belongs to. */
export const APP_RECORD_SUFFIX = 'app';

/** Kubernetes object uids are RFC 4122 UUIDs; only keys named after one are app entries. */
const UID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The uid a key of the Secret belongs to, or undefined for keys that are no app's entry. */
export function entryUidOf(key: string): string | undefined {
  const dot = key.indexOf('.');
  const uid = dot < 0 ? key : key.slice(0, dot);
  return dot > 0 && UID.test(uid) ? uid : undefined;
}

export const appRecordKey = (uid: string): string => `${uid}.${APP_RECORD_SUFFIX}`;

export interface PrunedEntry {
  readonly uid: string;
  /** namespace/name as recorded; undefined for an entry written before the record existed. */
  readonly app?: string;
  readonly keys: readonly string[];
}

export interface CaEntryChanges {
  /** Entries of apps that no longer exist, with every key of each. */
  readonly prune: readonly PrunedEntry[];
  /** `<uid>.app` keys to set: live apps whose entries lack (or misstate) their record. */
  readonly record: Readonly<Record<string, string>>;
}

/**
 * What to change in the Secret's data (decoded), given the apps this operator sees (uid ->
 * namespace/name; only apps of namespaces it watches) and the namespaces it watches
 * (undefined: every namespace). The apps must come from synced caches, or a fresh list: an
 * app missing from them has its CA removed.
 */
export function caEntryChanges(
  data: Readonly<Record<string, string>>,
  apps: ReadonlyMap<string, string>,
  watched: readonly string[] | undefined,
): CaEntryChanges {
  const keysOf = new Map<string, string[]>();
  for (const key of Object.keys(data).sort()) {
    const uid = entryUidOf(key);
    if (uid === undefined) continue;
    const keys = keysOf.get(uid);
    if (keys) keys.push(key);
    else keysOf.set(uid, [key]);
  }
  const prune: PrunedEntry[] = [];
  const record: Record<string, string> = {};
  for (const [uid, keys] of keysOf) {
    const app = apps.get(uid);
    const recorded = data[appRecordKey(uid)];
    if (app !== undefined) {
      if (recorded !== app) record[appRecordKey(uid)] = app;
      continue;
    }
    const namespace = recorded?.includes('/') ? recorded.slice(0, recorded.indexOf('/')) : '';
    const mine = watched === undefined || (namespace !== '' && watched.includes(namespace));
    if (mine) prune.push({ uid, ...(recorded ? { app: recorded } : {}), keys });
  }
  return { prune, record };
}

/** The Secret's data with the changes made; undefined when there is nothing to change. */
export function applyCaEntryChanges(
  data: Readonly<Record<string, string>>,
  changes: CaEntryChanges,
): Record<string, string> | undefined {
  if (changes.prune.length === 0 && Object.keys(changes.record).length === 0) return undefined;
  const drop = new Set(changes.prune.flatMap((entry) => entry.keys));
  return Object.fromEntries(
    Object.entries({ ...data, ...changes.record }).filter(([key]) => !drop.has(key)),
  );
}
