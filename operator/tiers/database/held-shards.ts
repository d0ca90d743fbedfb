// How many shard groups the database tier renders: the spec's count, or more while the record
// still needs them. Lowering `shards` is a move like any other (resharding.ts): the departing
// shards hold rows until their buckets have moved out, so their StatefulSets, Services and
// pooler stay exactly as they were until the record gives them no bucket and no recorded move
// names them; only then does the reconcile prune them (their volumes stay: whenDeleted Retain).
import type { AppModel } from '../../api/model.ts';
import type { HeldChild, Tier } from '../tier.ts';
import { BUCKET_RANGES_ANNOTATION, assignmentInStatus } from './shard-authority.ts';

type Json = Readonly<Record<string, unknown>>;

/** Indexes of the app's shard StatefulSets whose record annotation names a bucket. */
export function shardsOwningOnObjects(app: string, objects: readonly HeldChild[]): number[] {
  // shardName(app, i) is `<app>-db-<i>`; the app's other StatefulSets end otherwise.
  const prefix = `${app}-db-`;
  return objects.flatMap((o) => {
    if (o.kind !== 'StatefulSet' || !o.metadata.name.startsWith(prefix)) return [];
    const m = /^(\d+)$/.exec(o.metadata.name.slice(prefix.length));
    const ranges = o.metadata.annotations?.[BUCKET_RANGES_ANNOTATION];
    return m && ranges ? [Number(m[1])] : [];
  });
}

/**
 * The fewest shard groups that keep every shard the record needs: one that owns buckets (in
 * status.shardMap, or on its StatefulSet) or that status.resharding's moves name. 0: none.
 */
export function heldShardCount(status: Json, owningOnObjects: readonly number[] = []): number {
  const moves = (status['resharding'] as { moves?: unknown } | undefined)?.moves;
  const named = [
    ...owningOnObjects,
    ...(assignmentInStatus(status)?.ranges.map((r) => r.shard) ?? []),
    ...(Array.isArray(moves)
      ? (moves as { source?: unknown; target?: unknown }[]).flatMap((m) =>
          [m.source, m.target].filter((i): i is number => Number.isInteger(i)),
        )
      : []),
  ];
  return named.length > 0 ? Math.max(...named) + 1 : 0;
}

/** The model with at least `held` shards (the same model when it has them already). */
export function withHeldShards(model: AppModel, held: number): AppModel {
  const db = model.database;
  if (!db || held <= db.shards) return model;
  return { ...model, database: { ...db, shards: held } };
}

/** The database tier's hold (Tier.hold). */
export const heldShards: NonNullable<Tier['hold']> = {
  of: (app, status, children) => heldShardCount(status, shardsOwningOnObjects(app, children)),
  apply: withHeldShards,
};
