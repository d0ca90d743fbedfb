// What the kubelet and the reconciler do around the database tier's step hook, for the
// engine harness (patroni-harness.ts), where pods are kwok fakes and Patroni runs on loopback:
// - kubelet: a member's process follows its pod. A pod deleted or replaced (new uid) has its
//   Patroni stopped with SIGTERM; a pod that exists again gets its Patroni started (after
//   the data-version check, as the init container would). Readiness is Patroni's /readiness.
// - volumes: a member's data directory is its PVC's volume, and goes with the PVC, as a
//   dynamically provisioned volume does (reclaim policy Delete): a PVC deleted by mistake
//   shows as lost data, not as a kept directory.
// - reconciler: the Observed the step sees (pods with that readiness, the StatefulSet), and
//   a ClusterAccess over the real API server (the operator's own clusterAccess).
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { clusterAccess } from '../../operator/reconcile/cluster-access.ts';
import { kindOf, pathOf } from '../../operator/reconcile/kinds.ts';
import { KubeClient } from '../../operator/runtime/kube-client.ts';
import { databaseTier } from '../../operator/tiers/database/index.ts';
import { shardName } from '../../operator/tiers/database/names.ts';
import type { AppModel } from '../../operator/api/model.ts';
import type { Observed, ObservedObject } from '../../operator/tiers/shared/report.ts';
import type { ClusterAccess, HookWrite } from '../../operator/tiers/tier.ts';
import { running } from './patroni-harness.ts';
import type { Harness, Member } from './patroni-harness.ts';

type Json = Record<string, unknown>;

interface RawObject {
  kind: string;
  metadata: {
    name: string;
    uid: string;
    labels?: Record<string, string>;
    deletionTimestamp?: string;
  };
  status?: Json;
}
type RawPod = RawObject;

/** The PVC of a member's data volume (the StatefulSet's claim template `data`). */
export const pvcOf = (m: Member): string => `data-${m.name}`;

/**
 * The operator's ClusterAccess, plus `create` as the reconciler should implement it (see
 * ClusterAccess.create in operator/tiers/tier.ts).
 */
export async function operatorAccess(h: Harness): Promise<ClusterAccess> {
  const client = await KubeClient.load(h.kubeconfig);
  return {
    ...clusterAccess(client),
    async create(apiVersion, kind, namespace, body) {
      const info = kindOf(apiVersion, kind);
      if (!info) throw new Error(`unknown kind ${kind}`);
      return client.request<Json>('POST', pathOf(info, namespace), {
        verb: 'create',
        resource: info.plural,
        body,
      });
    },
  };
}

export interface Kubelet {
  /** Pod uid each member's running process belongs to. */
  readonly podOf: Map<string, string>;
  /** Members whose PVC was deleted, and with it their data directory. */
  readonly volumesDeleted: Set<string>;
  /** Passes over the pods and claims completed so far. */
  readonly passes: () => number;
  stop(): Promise<void>;
}

/** Runs the kubelet emulation every 250 ms until stopped. */
export function startKubelet(h: Harness): Kubelet {
  const podOf = new Map<string, string>();
  const busy = new Set<string>();
  const claimed = new Set<string>();
  const volumesDeleted = new Set<string>();
  let stopped = false;
  let passes = 0;
  const list = (): RawObject[] =>
    (
      JSON.parse(h.kubectl(['-n', h.ns, 'get', 'pods,pvc', '-o', 'json'])) as {
        items: RawObject[];
      }
    ).items;
  /** A claim seen before and gone now: its volume is deleted (after the member stopped). */
  const reclaim = async (m: Member, claims: Set<string>) => {
    if (claims.has(pvcOf(m))) return void claimed.add(pvcOf(m));
    if (!claimed.delete(pvcOf(m))) return;
    if (running(m)) await h.stopMember(m);
    podOf.delete(m.name);
    rmSync(m.dataDir, { recursive: true, force: true });
    volumesDeleted.add(m.name);
  };
  const tick = async (m: Member, pod: RawPod | undefined) => {
    const live = pod && !pod.metadata.deletionTimestamp ? pod.metadata.uid : undefined;
    const owner = podOf.get(m.name);
    if (running(m) && owner !== undefined && owner !== live) {
      await h.stopMember(m); // the pod went away or was replaced: its container stops
      podOf.delete(m.name);
    } else if (running(m) && owner === undefined && live) {
      podOf.set(m.name, live); // started by the harness before the kubelet ran
    } else if (!running(m) && live && m.refused === undefined) {
      h.startMember(m);
      if (running(m)) podOf.set(m.name, live);
    }
  };
  const loop = (async () => {
    while (!stopped) {
      let all: RawObject[];
      try {
        all = list();
      } catch {
        // A failed list is not an empty one: stopping every member on it would be a crash.
        await sleep(250);
        continue;
      }
      await Promise.all(
        h.members
          .filter((m) => !busy.has(m.name))
          .map(async (m) => {
            busy.add(m.name);
            try {
              await tick(
                m,
                all.find((p) => p.kind === 'Pod' && p.metadata.name === m.name),
              );
              await reclaim(
                m,
                new Set(
                  all.filter((o) => o.kind === 'PersistentVolumeClaim').map((o) => o.metadata.name),
                ),
              );
            } finally {
              busy.delete(m.name);
            }
          }),
      );
      passes++;
      await sleep(250);
    }
  })();
  return {
    podOf,
    volumesDeleted,
    passes: () => passes,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/** What the reconciler would hand the step: the shard's objects and pods with readiness. */
export async function observe(h: Harness): Promise<Observed> {
  const raw = (
    JSON.parse(h.kubectl(['-n', h.ns, 'get', 'pods', '-o', 'json'])) as {
      items: RawPod[];
    }
  ).items;
  const pods: ObservedObject[] = await Promise.all(
    raw.map(async (p) => {
      const m = h.members.find((x) => x.name === p.metadata.name);
      const ready = m !== undefined && running(m) && (await h.isReady(m));
      return {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: p.metadata,
        status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
      };
    }),
  );
  const sets = (
    JSON.parse(h.kubectl(['-n', h.ns, 'get', 'statefulsets', '-o', 'json'])) as {
      items: ObservedObject[];
    }
  ).items.map((o) => ({ ...o, apiVersion: 'apps/v1', kind: 'StatefulSet' }));
  return { objects: sets, pods, missingApis: [] };
}

/** One reconcile's worth of the database tier's step hook. */
export async function step(
  app: AppModel,
  h: Harness,
  cluster: ClusterAccess,
): Promise<readonly HookWrite[]> {
  const hook = databaseTier.hooks?.step;
  if (!hook) throw new Error('the database tier has no step hook');
  return hook(app, await observe(h), cluster);
}

/** Applies the StatefulSet of shard 0 as the reconciler would: after the adjust hook. */
export function applyStatefulSet(app: AppModel, h: Harness, desired: ObservedObject): void {
  const live = JSON.parse(
    h.kubectl(['-n', h.ns, 'get', 'statefulset', shardName(app, 0), '-o', 'json']),
  ) as ObservedObject;
  const adjust = databaseTier.hooks?.adjust;
  const [obj] = adjust ? adjust(app, [desired], { object: () => live, status: {} }) : [desired];
  h.kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], JSON.stringify(obj));
}

/** A write the step made, with when (ms, performance.now()). */
export interface TimedWrite extends HookWrite {
  readonly at: number;
}

/**
 * Runs the step every `everyMs` (the reconciler runs it on every pod event) until `done`
 * says the shard has arrived; returns every write it made, in order.
 */
export async function drive(
  app: AppModel,
  h: Harness,
  cluster: ClusterAccess,
  done: () => Promise<boolean>,
  timeoutMs = 300_000,
  everyMs = 500,
): Promise<TimedWrite[]> {
  const writes: TimedWrite[] = [];
  const deadline = performance.now() + timeoutMs;
  while (!(await done())) {
    if (performance.now() > deadline)
      throw new Error(`not done after ${timeoutMs} ms; writes: ${JSON.stringify(writes)}`);
    for (const w of await step(app, h, cluster)) writes.push({ ...w, at: performance.now() });
    await sleep(everyMs);
  }
  // The reconcile the last pod event brings: nothing left to do, so the app lets go of the
  // operator-wide rollout gate (another app's scenario in this process may roll next).
  for (const w of await step(app, h, cluster)) writes.push({ ...w, at: performance.now() });
  return writes;
}

export interface Writer {
  /** Ids whose INSERT returned: acknowledged. */
  readonly acked: number[];
  /** performance.now() of each acknowledgement. */
  readonly ackedAt: number[];
  errors: number;
  stop(): Promise<void>;
}

/**
 * An app writing as fast as it can through the primary Service: it connects to the pod
 * labelled primary (what the Service selects), and on any error reconnects the same way.
 */
export function startWriter(
  h: Harness,
  table: string,
  connect: (m: Member) => Promise<PgLike>,
  firstId = 1,
): Writer {
  let stopped = false;
  let id = firstId;
  let client: PgLike | undefined;
  const w: Writer = {
    acked: [],
    ackedAt: [],
    errors: 0,
    async stop() {
      stopped = true;
      await loop;
      await client?.end().catch(() => undefined);
    },
  };
  const loop = (async () => {
    while (!stopped) {
      try {
        if (!client) {
          const p = h.primaryOf(0);
          if (!p) throw new Error('no pod labelled primary');
          client = await connect(p);
        }
        const n = id++; // a fresh id per attempt: a failed one may still have committed
        await client.query(`INSERT INTO ${table} (id) VALUES ($1)`, [n]);
        w.acked.push(n);
        w.ackedAt.push(performance.now());
      } catch {
        w.errors++;
        await client?.end().catch(() => undefined);
        client = undefined;
        await sleep(50);
      }
    }
  })();
  return w;
}

export interface PgLike {
  query(text: string, params?: unknown[]): Promise<unknown>;
  end(): Promise<void>;
}

/** The longest time without an acknowledged write between `from` and `to` (ms). */
export function longestGap(at: readonly number[], from: number, to: number): number {
  const points = [from, ...at.filter((t) => t > from && t < to), to];
  let gap = 0;
  for (let i = 1; i < points.length; i++) gap = Math.max(gap, points[i]! - points[i - 1]!);
  return gap;
}
