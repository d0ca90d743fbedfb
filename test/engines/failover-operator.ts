// The operator's lock watch for the engine scenarios, wired as the operator wires it
// (runtime/controller.ts), on the engine harness's namespace: releases and fences go to the
// real API server, events too. restart() is an operator leader that dies and is replaced:
// the new instance starts with nothing in memory.
import { KubeClient } from '../../operator/runtime/kube-client.ts';
import { createLogger } from '../../operator/runtime/log.ts';
import { LeaseWatch } from '../../operator/runtime/lease-watch.ts';
import { EventRecorder } from '../../operator/reconcile/events.ts';
import {
  failoverSecondsOf,
  releaseAfterSeconds,
} from '../../operator/tiers/database/lease-break.ts';
import type { LeaderRecord } from '../../operator/tiers/database/lease-break.ts';
import type { Harness } from './patroni-harness.ts';

export interface OperatorWatch {
  /** Locks released, in order, by any instance. */
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
  hooks: { onRelease?: (r: LeaderRecord) => void } = {},
): Promise<OperatorWatch> {
  const client = await KubeClient.load(h.kubeconfig);
  const log = createLogger('warn');
  const released: LeaderRecord[] = [];
  const fenced: string[] = [];
  const make = (identity: string) =>
    new LeaseWatch({
      client,
      watchNamespaces: [h.ns],
      log,
      events: new EventRecorder(client, log, identity),
      releaseAfterMs: () => {
        const seconds = failoverSecondsOf({ database: database() });
        const after = seconds === undefined ? undefined : releaseAfterSeconds(seconds);
        return after === undefined ? undefined : after * 1000;
      },
      writer: () => client,
      onRelease: (r) => {
        released.push(r);
        hooks.onRelease?.(r);
      },
      onFence: (_r, pod) => fenced.push(pod),
    });
  let n = 1;
  let watch = make(`engine-operator-${n}`);
  watch.start();
  return {
    released,
    fenced,
    async restart() {
      // A leader that dies keeps nothing: its timers and memory go with it.
      await watch.stop();
      watch = make(`engine-operator-${++n}`);
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
