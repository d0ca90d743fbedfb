// What every app pod (web and workers) gets from the other tiers: environment variables
// and volumes. Each tier module contributes its own; the web and queue builders merge them.
// Passwords only ever arrive through secretKeyRef.
import type { AppModel } from '../api/model.ts';
import { redisWiring } from './cache.ts';
import { databaseWiring } from './database/shard-map.ts';

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string };
    configMapKeyRef?: { name: string; key: string };
    fieldRef?: { fieldPath: string };
  };
}

export interface AppWiring {
  readonly env: EnvVar[];
  readonly volumes: Record<string, unknown>[];
  readonly volumeMounts: Record<string, unknown>[];
}

export type WiringContributor = (app: AppModel) => Partial<AppWiring>;

/** Tier contributions, in a fixed order so rendered env is deterministic. */
const CONTRIBUTORS: readonly WiringContributor[] = [
  (app) => ({
    env: [
      { name: 'SCALABLE_APP', value: app.name },
      ...(app.cdn ? [{ name: 'ASSET_BASE_URL', value: app.cdn.baseURL }] : []),
      ...(app.ingress
        ? [{ name: 'STATIC_PATH_PREFIX', value: app.ingress.staticAssets.pathPrefix }]
        : []),
    ],
  }),
  redisWiring,
  databaseWiring,
];

export function appWiring(app: AppModel): AppWiring {
  const parts = CONTRIBUTORS.map((c) => c(app));
  return {
    env: parts.flatMap((p) => p.env ?? []),
    volumes: parts.flatMap((p) => p.volumes ?? []),
    volumeMounts: parts.flatMap((p) => p.volumeMounts ?? []),
  };
}
