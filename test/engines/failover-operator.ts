// The operator's lock watch for the engine scenarios, created as the controller creates it
// (runtime/controller.ts: the database tier's Tier.watches factory with real WatchPorts) on
// the engine harness's namespace: releases, fences and events go to the real API server.
// restart() is an operator leader that dies and is replaced: the new instance starts with
// nothing in memory.
import { Registry } from 'prom-client';
import { KubeClient } from '../../operator/runtime/kube-client.ts';
import { createLogger } from '../../operator/runtime/log.ts';
import { cacheOpener } from '../../operator/runtime/tier-watches.ts';
import { clusterAccess } from '../../operator/reconcile/cluster-access.ts';
import { EventRecorder } from '../../operator/reconcile/events.ts';
import { databaseTier } from '../../operator/tiers/database/index.ts';
import { leaderRecordOf } from '../../operator/tiers/database/lease-break.ts';
import type { LeaderRecord } from '../../operator/tiers/database/lease-break.ts';
import type { ClusterAccess } from '../../operator/tiers/tier.ts';
import type { Watch } from '../../operator/tiers/watch.ts';
import type { Harness } from './patroni-harness.ts';

export interface OperatorWatch {
  /** Locks released, in order, by any instance (the lock as it was before the release). */
  readonly released: LeaderRecord[];
  /** Pods fenced (deleted), in order, by any instance. */
  readonly fenced: string[];
  /** The instance dies (no clean-up) and a new one takes over. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  /** Events of the app with this reason, oldest first. */
  events(reason: string): Promise<string[]>;
}

export async function startOperatorWatch(
  h: Harness,
  /** The app's spec.database as the API server stores it (it may change during a test). */
  database: () => Record<string, unknown>,
  hooks: {
    onRelease?: (r: LeaderRecord) => void;
    /**
     * Awaited before the release's write returns to the watch: what runs here runs right
     * after the lock was freed and before the watch's next move (its fence).
     */
    afterRelease?: (r: LeaderRecord) => Promise<void>;
  } = {},
): Promise<OperatorWatch> {
  const client = await KubeClient.load(h.kubeconfig);
  const log = createLogger('warn');
  const released: LeaderRecord[] = [];
  const fenced: string[] = [];
  const factory = databaseTier.watches?.[0];
  if (!factory) throw new Error('the database tier has no watch');
  // The watch's writes, seen as they succeed: what the operator released and deleted.
  const observed = (access: ClusterAccess): ClusterAccess => ({
    ...access,
    async mergePatch(apiVersion, kind, ns, name, body) {
      const before =
        kind === 'ConfigMap' ? await access.get(apiVersion, kind, ns, name) : undefined;
      const out = await access.mergePatch(apiVersion, kind, ns, name, body);
      const annotations = (body['metadata'] as { annotations?: Record<string, unknown> })
        ?.annotations;
      if (before && annotations && 'leader' in annotations && annotations['leader'] === null) {
        released.push(leaderRecordOf(before));
        hooks.onRelease?.(leaderRecordOf(before));
        await hooks.afterRelease?.(leaderRecordOf(before));
      }
      return out;
    },
    async delete(apiVersion, kind, ns, name, uid, grace) {
      await access.delete(apiVersion, kind, ns, name, uid, grace);
      if (kind === 'Pod') fenced.push(name);
    },
  });
  let n = 0;
  const make = (): Watch =>
    factory.create({
      cache: cacheOpener({ client, namespaces: [h.ns], log }),
      writer: () => observed(clusterAccess(client)),
      events: new EventRecorder(client, log, `engine-operator-${++n}`),
      app: (ns, name) =>
        ns === h.ns && name === h.app.name
          ? { uid: 'engine-test', spec: { database: database() }, deleting: false }
          : undefined,
      apps: () => [
        {
          namespace: h.ns,
          name: h.app.name,
          uid: 'engine-test',
          spec: { database: database() },
          deleting: false,
        },
      ],
      log,
      registry: new Registry(),
    });
  let watch = make();
  watch.start();
  return {
    released,
    fenced,
    async restart() {
      // A leader that dies keeps nothing: its timers and memory go with it.
      await watch.stop();
      watch = make();
      watch.start();
    },
    async stop() {
      await watch.stop();
      client.close();
    },
    async events(reason) {
      const list = await client.request<{ items: Array<Record<string, unknown>> }>(
        'GET',
        `/api/v1/namespaces/${h.ns}/events`,
        { verb: 'list', resource: 'events', query: { fieldSelector: `reason=${reason}` } },
      );
      return list.items
        .sort((a, b) => String(a['firstTimestamp']).localeCompare(String(b['firstTimestamp'])))
        .map((e) => String(e['message']));
    },
  };
}
