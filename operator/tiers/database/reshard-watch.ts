// The database tier's resharding watch: while this instance leads, every few seconds, one
// resharding step (resharding-run.ts) for each app whose shard count differs from the shards
// that own buckets, or that has a move on record (status.resharding). A watch, not the
// reconcile: a move waits on Postgres (the initial copy, the catch-up), which sends no event
// the reconcile would wake on. Steps of one app never overlap; a step that fails is logged and
// told as an event, and the next tick begins again from what is recorded.
import type { AppModel } from '../../api/model.ts';
import { toModel } from '../../api/model.ts';
import type { ScalableAppObject } from '../../api/schema.ts';
import { API_VERSION, KIND } from '../../api/schema.ts';
import type { Logger } from '../../ports/log.ts';
import { ConflictError } from '../tier.ts';
import type { ClusterAccess } from '../tier.ts';
import type { EventSink, TierWatch, Watch, WatchedApp, WatchedAppKey } from '../watch.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReshardRunner, actionText } from './resharding-run.ts';
import type { StepResult } from './resharding-run.ts';
import type { ReshardCondition, ReshardingStatus, ReshardSpec } from './resharding.ts';
import { owningShards } from './resharding.ts';
import { assignmentInStatus } from './shard-authority.ts';
import { operatorReshardEnv } from './reshard-env.ts';
import { heldShardCount } from './held-shards.ts';

/** On the ScalableApp: "true" aborts a move that has not reached its cutover. */
export const RESHARD_ABORT_ANNOTATION = 'scalable.dev/reshard-abort';

export const RESHARD_TICK_MS = 5_000;

/**
 * From the fence to the flip the moving buckets refuse writes: those steps (the fence, its
 * LSN confirmed, the subscription dropped, old fences lifted, the way back, the flip) run back
 * to back, this far apart, not one per tick (six ticks were about 30 s of fence).
 */
export const CUTOVER_PAUSE_MS = 200;
const CUTOVER_STEPS = 50;

type Json = Record<string, unknown>;

/** Reasons of a move going its way; any other is a note on the record (stuck, refused). */
const PROGRESS = new Set(['Resharding', 'ShardsReady', 'ReshardingAborted']);

/** Whether an app (as cached) has resharding work: a move on record, or a count to reach. */
export function wantsReshardStep(app: WatchedApp): boolean {
  if (app.deleting) return false;
  const db = (app.spec as { database?: { enabled?: boolean; shards?: number } })?.database;
  if (!db || db.enabled === false || typeof db.shards !== 'number') return false;
  const status = app.status ?? {};
  if (status['resharding']) return true;
  const record = assignmentInStatus(status);
  return record !== undefined && owningShards(record) !== db.shards;
}

/** A cutover still on its way to the flip, not stuck: the watch steps it again at once. */
export const inCutover = (
  current: ReshardingStatus | undefined,
  last: Pick<StepResult, 'decision'>,
): boolean =>
  current?.phase === 'Cutover' && !current.publishedAt && !noteOf(last.decision.condition);

/** The runner's spec from the app (the abort annotation included). */
export const reshardSpecOf = (
  model: AppModel,
  annotations?: Readonly<Record<string, string>>,
): ReshardSpec => ({
  shards: model.database?.shards ?? 1,
  ...(model.database?.shardKey ? { shardKey: model.database.shardKey } : {}),
  ...(annotations?.[RESHARD_ABORT_ANNOTATION] === 'true' ? { abort: true } : {}),
});

/** The note a record should carry after a step's condition (undefined: none). */
export function noteOf(condition: ReshardCondition | undefined): ReshardingStatus['note'] {
  if (!condition || PROGRESS.has(condition.reason)) return undefined;
  return { reason: condition.reason, message: condition.message };
}

/** The record with `note` in place of its own (none when undefined). */
export function withNote(r: ReshardingStatus, note: ReshardingStatus['note']): ReshardingStatus {
  const copy: { -readonly [K in keyof ReshardingStatus]: ReshardingStatus[K] } = { ...r };
  delete copy.note;
  return note ? { ...copy, note } : copy;
}

/** a is older than b (resourceVersions compare as numbers where both are). */
export function olderVersion(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return false;
  return BigInt(a) < BigInt(b);
}

export interface ReshardWatchOptions {
  readonly apps: () => readonly (WatchedApp & WatchedAppKey)[];
  readonly writer: () => ClusterAccess | undefined;
  readonly events: EventSink;
  readonly log: Logger;
  readonly tickMs?: number;
  readonly ackDelayMs?: number;
}

export class ReshardWatch implements Watch {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  /** Our last status write per app: a cache older than it is not stepped on. */
  readonly #written = new Map<string, string>();
  /** The last condition message logged per app: a waiting move says so once. */
  readonly #said = new Map<string, string>();

  constructor(private readonly opts: ReshardWatchOptions) {}

  start(): void {
    this.#timer = setInterval(() => {
      this.#running ??= this.tick().finally(() => (this.#running = undefined));
    }, this.opts.tickMs ?? RESHARD_TICK_MS);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }

  /** One pass over the apps with resharding work. */
  async tick(): Promise<void> {
    const cluster = this.opts.writer();
    if (!cluster?.exec) return;
    for (const app of this.opts.apps()) {
      if (!wantsReshardStep(app)) continue;
      const key = `${app.namespace}/${app.name}`;
      if (olderVersion(app.resourceVersion, this.#written.get(key))) continue;
      try {
        await this.step(cluster, app);
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        // The reconcile wrote the status meanwhile: nothing was done; the next tick reads anew.
        if (e instanceof ConflictError) {
          this.opts.log.info({ app: key, err: message }, 'resharding step: the app changed, again');
          continue;
        }
        this.opts.log.warn({ app: key, err: message }, 'resharding step failed');
        this.opts.events.emit(
          { namespace: app.namespace, name: app.name, uid: app.uid },
          'Warning',
          'ReshardingStepFailed',
          message,
        );
      }
    }
  }

  private async step(cluster: ClusterAccess, app: WatchedApp & WatchedAppKey): Promise<void> {
    const exec = cluster.exec;
    if (!exec) return;
    const obj = {
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: { name: app.name, namespace: app.namespace, uid: app.uid },
      spec: app.spec,
    } as ScalableAppObject;
    const model = toModel(obj);
    const status = (app.status ?? {}) as Json;
    const recorded = status['resharding'] as ReshardingStatus | undefined;
    const key = `${app.namespace}/${app.name}`;
    // The env reads the runner's record; the runner needs the env first.
    const held: { runner?: ReshardRunner } = {};
    const env = operatorReshardEnv({
      app: model,
      cluster,
      exec,
      status,
      resourceVersion: app.resourceVersion,
      current: () => held.runner?.current,
      recordShards: heldShardCount(status),
      ...(this.opts.ackDelayMs !== undefined ? { ackDelayMs: this.opts.ackDelayMs } : {}),
    });
    // The final clear waits until the shards' StatefulSets record the new map (the reconcile
    // stamps it): with status.resharding gone, they are the record again.
    const persist: typeof env.persist = async (record) => {
      const cur = held.runner?.current;
      if (record === undefined && cur?.publishedAt) {
        const onShards = await env.shardsRecordVersion();
        if ((onShards ?? 0) < cur.mapVersion)
          throw new Error(
            `waiting for the shards' StatefulSets to record shard map v${cur.mapVersion} before clearing status.resharding`,
          );
      }
      await env.persist(record);
    };
    // A pod the operator cannot run SQL in reads as "no primary" to the runner: say why.
    let execError: string | undefined;
    const watched: typeof exec = async (req) => {
      try {
        const r = await exec(req);
        execError = undefined;
        return r;
      } catch (e) {
        execError = e instanceof Error ? e.message : String(e);
        throw e;
      }
    };
    const runner = new ReshardRunner(
      { ...env, persist, shard: (i) => env.shardVia(watched, i) },
      recorded,
    );
    held.runner = runner;
    let result;
    const ran: StepResult['ran'][number][] = [];
    try {
      const spec = reshardSpecOf(model, app.annotations);
      result = await runner.step(spec);
      ran.push(...result.ran);
      // Only while this instance still leads (writer() is undefined once it does not).
      for (
        let i = 0;
        i < CUTOVER_STEPS && inCutover(runner.current, result) && this.opts.writer();
        i++
      ) {
        await sleep(CUTOVER_PAUSE_MS);
        result = await runner.step(spec);
        ran.push(...result.ran);
      }
    } finally {
      const rv = env.writtenVersion();
      if (rv) this.#written.set(key, rv);
    }
    const { decision } = result;
    const note =
      noteOf(decision.condition) ??
      (execError && decision.condition?.message.includes('waiting for a primary')
        ? {
            reason: 'ShardUnreachable',
            message: `cannot run SQL in the shards' primary pods: ${execError}`,
          }
        : undefined);
    const after = runner.current;
    if (after && JSON.stringify(after.note) !== JSON.stringify(note)) {
      await env.persist(withNote(after, note));
      const rv = env.writtenVersion();
      if (rv) this.#written.set(key, rv);
    }
    const target = { namespace: app.namespace, name: app.name, uid: app.uid };
    if (decision.refused)
      this.opts.events.emit(
        target,
        'Warning',
        'ReshardingRefused',
        decision.condition?.message ?? '',
      );
    if (recorded?.phase !== after?.phase && decision.condition)
      this.opts.events.emit(
        target,
        'Normal',
        decision.condition.reason,
        decision.condition.message,
      );
    // One line per step that did something, changed phase, or waits for something new.
    const said = decision.condition?.message;
    const news = said !== undefined && this.#said.get(key) !== said;
    if (said !== undefined) this.#said.set(key, said);
    if (ran.length > 0 || recorded?.phase !== after?.phase || news)
      this.opts.log.info(
        {
          app: key,
          phase: after?.phase ?? 'done',
          ran: ran.map(actionText),
        },
        decision.condition?.message ?? 'resharding step',
      );
  }
}

/** The database tier's resharding watch (Tier.watches). */
export const reshardWatch: TierWatch = {
  name: 'resharding',
  create(ports) {
    return new ReshardWatch({
      apps: ports.apps,
      writer: ports.writer,
      events: ports.events,
      log: ports.log,
    });
  },
};
