// A replicated Redis store (the cache or the queue with replicas > 0) as rendered, on loopback:
// its redis pods started one by one by the ConfigMap's start-redis.sh (OrderedReady), then its
// three Sentinels by start-sentinel.sh, each with the env its StatefulSet renders and the pod
// DNS names in it mapped to loopback ports. Shared by the engine tests of the cache, the queue
// and the SDK.
import type { K8sObject } from '../../operator/tiers/shared/chart.ts';
import { client, configMapData, envOf, freePort, waitFor } from './redis-harness.ts';
import type { Harness, Instance } from './redis-harness.ts';
import type { RedisOptions } from 'ioredis';

export interface ReplicatedRedis {
  /** The redis pods, pod 0 (the seed master) first. */
  readonly redis: Instance[];
  readonly sentinels: Instance[];
  /** Rendered pod address (host:port) -> its loopback stand-in. */
  readonly loopback: ReadonlyMap<string, string>;
  /** The master name the Sentinels monitor. */
  readonly master: string;
  /** The store's ConfigMap data (start scripts, configs), to start a pod again. */
  readonly data: Record<string, string>;
  /** A rendered pod address as its loopback stand-in; throws for one the store has not. */
  toLoopback(addr: string): string;
  /** The env a pod's start script gets (a redis pod or a Sentinel, by name), on loopback. */
  podEnv(pod: string): Record<string, string>;
}

export const portOf = (addr: string): number => Number(addr.slice(addr.lastIndexOf(':') + 1));

/**
 * Starts `<store>-0..replicas` and `<store>-sentinel-0..2` (store: the StatefulSet's name, e.g.
 * shop-cache) with `extraEnv` added to every pod's env; resolves once every Sentinel sees every
 * replica and the two other Sentinels.
 */
export async function startReplicated(
  h: Harness,
  objects: readonly K8sObject[],
  store: string,
  replicas: number,
  extraEnv: Record<string, string> = {},
  /** Another ConfigMap's data (an older release's), and the credentials its pods accept. */
  opts: { data?: Record<string, string>; auth?: RedisOptions } = {},
): Promise<ReplicatedRedis> {
  const data = opts.data ?? configMapData(objects, `${store}-config`);
  const redisEnv = envOf(objects, 'StatefulSet', store);
  const sentinelEnv = envOf(objects, 'StatefulSet', `${store}-sentinel`);
  const valueOf = (env: typeof redisEnv, name: string) => {
    const v = env.find((e) => e.name === name)?.value;
    if (v === undefined) throw new Error(`no ${name}`);
    return v;
  };
  const redisPods = Array.from({ length: replicas + 1 }, (_, i) => `${store}-${i}`);
  const sentinelPods = [0, 1, 2].map((i) => `${store}-sentinel-${i}`);
  const envOfPod = (pod: string) => (sentinelPods.includes(pod) ? sentinelEnv : redisEnv);
  const loopback = new Map<string, string>();
  for (const pod of [...redisPods, ...sentinelPods])
    loopback.set(
      valueOf(envOfPod(pod), 'SELF_ADDR').replace('$(POD_NAME)', pod),
      `127.0.0.1:${await freePort()}`,
    );
  const toLoopback = (addr: string) => {
    const a = loopback.get(addr);
    if (!a) throw new Error(`no loopback address for ${addr}`);
    return a;
  };
  const podEnv = (pod: string) => {
    const env = envOfPod(pod);
    return {
      ...extraEnv,
      MASTER_NAME: valueOf(env, 'MASTER_NAME'),
      SENTINELS: valueOf(env, 'SENTINELS').split(',').map(toLoopback).join(','),
      SEED_ADDR: toLoopback(valueOf(env, 'SEED_ADDR')),
      SELF_ADDR: toLoopback(valueOf(env, 'SELF_ADDR').replace('$(POD_NAME)', pod)),
    };
  };
  const start = (name: string, script: 'start-redis.sh' | 'start-sentinel.sh', pod: string) => {
    const env = podEnv(pod);
    return h.start(name, script, data, env, {
      port: portOf(env.SELF_ADDR),
      ...(opts.auth ? { auth: opts.auth } : {}),
    });
  };
  const redis: Instance[] = [];
  for (const [i, pod] of redisPods.entries())
    redis.push(await start(`redis-${i}`, 'start-redis.sh', pod));
  const sentinels = await Promise.all(
    sentinelPods.map((pod, i) => start(`sentinel-${i}`, 'start-sentinel.sh', pod)),
  );
  const master = valueOf(sentinelEnv, 'MASTER_NAME');
  for (const s of sentinels) {
    const c = client(s.port, opts.auth);
    try {
      await waitFor(`${s.name} to see ${replicas} replicas and 2 Sentinels`, 30_000, async () => {
        const seen = (await c.call('SENTINEL', 'replicas', master)) as unknown[];
        const peers = (await c.call('SENTINEL', 'sentinels', master)) as unknown[];
        return seen.length === replicas && peers.length === 2;
      });
    } finally {
      c.disconnect();
    }
  }
  return { redis, sentinels, loopback, master, data, toLoopback, podEnv };
}
