// The pooler's names, apart from its builders: the database tier's wiring needs them (the
// shard map and DATABASE_HOST point app pods at the pooler when it is on) without
// importing the pooler's objects.
import type { AppModel, PoolerModel } from '../../api/model.ts';
import { shardName } from '../database/names.ts';

/** The pooler of an app whose database is on with tls (the API requires it). */
export function poolerOf(app: AppModel): PoolerModel | undefined {
  return app.database?.tls ? app.database.pooler : undefined;
}

/** Deployment, ConfigMap and PDB of shard i: <app>-db-<i>-pooler. */
export const poolerName = (app: AppModel, shard: number): string =>
  `${shardName(app, shard)}-pooler`;

/** The Service apps connect to: <app>-db-<i>-rw-pooler. */
export const poolerServiceName = (app: AppModel, shard: number): string =>
  `${shardName(app, shard)}-rw-pooler`;

/**
 * The Service app pods write through: the shard's pooler when it is on, else the shard's
 * -rw Service. Reads stay on -ro either way (the pooler serves the primary only).
 */
export const writeServiceName = (app: AppModel, shard: number): string =>
  poolerOf(app) ? poolerServiceName(app, shard) : shardName(app, shard);
