// What app pods get to reach a Redis tier (Tier.wiring): where it is, its password, the CA,
// under the env names the SDK reads (sdk/src/contract).
import type { AppModel } from '../../api/model.ts';
import type { AppWiring, EnvVar } from '../../tiers/tier.ts';
import { caFileOf, caWiring } from '../../tiers/shared/tls/objects.ts';
import { ACL_USERS, REDIS_PORT } from './config.ts';
import type { RedisNames, ReplicatedRedisNames } from './names.ts';
import { passwordEnv, svcHost } from './pod.ts';
import { sentinelAddresses } from './sentinel.ts';

/** Where an app pod finds a Redis tier, the way the SDK reads it (see clientEnv). */
export type RedisClient = {
  /** The env prefix: <prefix>_URL, _SENTINELS, _MASTER_NAME, _USERNAME, _PASSWORD, _SSLROOTCERT. */
  readonly prefix: string;
  readonly tls: boolean;
  /** The app pod's volume (and directory under /etc/scalable/ca) holding the tier's CA. */
  readonly caVolume: string;
  /** The tier's own settings for the app (a TTL, a retention), after the connection's. */
  readonly env: readonly EnvVar[];
} & (
  | { readonly names: RedisNames; readonly master?: undefined }
  /** With Sentinel: no URL (a Service would reach replicas too), the Sentinels and master. */
  | { readonly names: ReplicatedRedisNames; readonly master: string }
);

/**
 * What app pods get: the URL (with TLS a rediss:// URL by the name the certificate carries),
 * or the Sentinels and master name; the app user and its password; with TLS the CA file; the tier's own env.
 */
export function clientEnv(app: AppModel, c: RedisClient): EnvVar[] {
  const n = c.names;
  const url = c.tls
    ? `rediss://${svcHost(app, n.redis)}:${REDIS_PORT}/0`
    : `redis://${n.redis}:${REDIS_PORT}/0`;
  return [
    ...(c.master !== undefined
      ? [
          { name: `${c.prefix}_SENTINELS`, value: sentinelAddresses(app, c.names).join(',') },
          { name: `${c.prefix}_MASTER_NAME`, value: c.master },
        ]
      : [{ name: `${c.prefix}_URL`, value: url }]),
    // The app's ACL user, on Redis and on the Sentinels alike: data commands only.
    { name: `${c.prefix}_USERNAME`, value: ACL_USERS.app.user },
    passwordEnv('app', n.users, `${c.prefix}_PASSWORD`),
    ...(c.tls ? [{ name: `${c.prefix}_SSLROOTCERT`, value: caFileOf(c.caVolume) }] : []),
    ...c.env,
  ];
}

/** The env above and, with TLS, the CA mounted from the tier's certificate Secret. */
export function clientWiring(app: AppModel, c: RedisClient | undefined): Partial<AppWiring> {
  if (!c) return { env: [] };
  return { env: clientEnv(app, c), ...(c.tls ? caWiring(c.caVolume, c.names.redis) : {}) };
}
