// The leader's upkeep of the CA Secret (reconcile/ca-entries.ts): the entries of apps that are
// gone are removed, and entries written before each recorded its app get that record. Run when
// this process starts leading, at every resync, and when the apps cache reports a deletion;
// never while the apps cache has not synced. One pass at a time; asked again meanwhile, it
// makes one more pass after the current one.
//
// An app missing from the cache may only be missing from it yet (a watch that lags behind an
// app just created, whose CA another leader wrote): before removing anything, the apps are
// listed afresh from the API server, and only entries whose app neither holds are removed.
// The list is made after the Secret was read, so every app whose entry that read saw, and that
// still exists, is in it.
import type { KubeApi } from '../ports/kube-api.ts';
import type { Logger } from '../ports/log.ts';
import { caEntryChanges } from '../reconcile/ca-entries.ts';
import type { CaEntryChanges } from '../reconcile/ca-entries.ts';
import type { CaStore } from '../reconcile/certificates.ts';
import { APP_KIND, pathOf } from '../reconcile/kinds.ts';

type Json = Record<string, unknown>;

interface AppMeta {
  readonly metadata: { readonly uid: string; readonly namespace: string; readonly name: string };
}

export interface CaTidyOptions {
  readonly store: CaStore;
  /** The apps of the watched namespaces, or undefined while their cache has not synced. */
  readonly cachedApps: () => readonly AppMeta[] | undefined;
  /** SCALABLE_WATCH_NAMESPACES; undefined: every namespace. */
  readonly watched: readonly string[] | undefined;
  readonly log: Logger;
}

/** uid -> namespace/name. */
const byUid = (apps: Iterable<AppMeta>): Map<string, string> =>
  new Map([...apps].map((a) => [a.metadata.uid, `${a.metadata.namespace}/${a.metadata.name}`]));

/** Every app of the watched namespaces, from the API server (list: no cache involved). */
export async function listApps(
  client: KubeApi,
  watched: readonly string[] | undefined,
): Promise<AppMeta[]> {
  const out: AppMeta[] = [];
  for (const ns of watched ?? [undefined]) {
    let cont: string | undefined;
    do {
      const page = await client.request<Json>('GET', pathOf(APP_KIND, ns), {
        verb: 'list',
        resource: APP_KIND.plural,
        query: { limit: 500, continue: cont },
        timeoutMs: 60_000,
      });
      for (const item of (page['items'] ?? []) as Json[]) {
        const m = (item['metadata'] ?? {}) as Json;
        out.push({
          metadata: {
            uid: String(m['uid'] ?? ''),
            namespace: String(m['namespace'] ?? ''),
            name: String(m['name'] ?? ''),
          },
        });
      }
      const next = ((page['metadata'] ?? {}) as Json)['continue'];
      cont = typeof next === 'string' && next !== '' ? next : undefined;
    } while (cont);
  }
  return out;
}

export class CaTidy {
  private running: Promise<void> | undefined;
  private again = false;

  constructor(private readonly opts: CaTidyOptions) {}

  /** Asks for a pass with this client (the leader's term); resolves when it is done. */
  request(client: KubeApi): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.pass(client);
        } while (this.again);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** One pass: errors are logged, the next resync tries again. */
  private async pass(client: KubeApi): Promise<void> {
    const { store, cachedApps, watched, log } = this.opts;
    try {
      const changed = await store.tidy(async (data) => {
        const cached = cachedApps();
        if (cached === undefined) return { prune: [], record: {} };
        const apps = byUid(cached);
        const first = caEntryChanges(data, apps, watched);
        if (first.prune.length === 0) return first;
        for (const [uid, app] of byUid(await listApps(client, watched))) apps.set(uid, app);
        return caEntryChanges(data, apps, watched);
      }, client);
      if (changed) report(log, changed);
    } catch (err) {
      log.warn(
        { err: err instanceof Error ? err.message : String(err) },
        'CA Secret upkeep failed: retried at the next resync',
      );
    }
  }
}

function report(log: Logger, changed: CaEntryChanges): void {
  if (changed.prune.length > 0)
    log.info(
      { apps: changed.prune.map((p) => p.app ?? `uid ${p.uid} (app not recorded)`) },
      'Removed the CA entries of deleted apps',
    );
  const recorded = Object.keys(changed.record).length;
  if (recorded > 0) log.info({ entries: recorded }, 'Recorded the app of CA entries');
}
