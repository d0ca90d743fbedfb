// What every app pod (web and workers) gets: the app's own identity and URLs here, then each
// tier's contribution (Tier.wiring), merged in registry order so rendered env is
// deterministic. Passwords only ever arrive through secretKeyRef.
import type { AppModel } from '../../api/model.ts';
import type { AppWiring } from '../tier.ts';

/** The app itself: its name, and where its static assets are served from. */
export const baseWiring = (app: AppModel): Partial<AppWiring> => ({
  env: [
    { name: 'SCALABLE_APP', value: app.name },
    ...(app.cdn ? [{ name: 'ASSET_BASE_URL', value: app.cdn.baseURL }] : []),
    ...(app.ingress
      ? [{ name: 'STATIC_PATH_PREFIX', value: app.ingress.staticAssets.pathPrefix }]
      : []),
  ],
});

export function mergeWiring(parts: readonly Partial<AppWiring>[]): AppWiring {
  return {
    env: parts.flatMap((p) => p.env ?? []),
    volumes: parts.flatMap((p) => p.volumes ?? []),
    volumeMounts: parts.flatMap((p) => p.volumeMounts ?? []),
  };
}
