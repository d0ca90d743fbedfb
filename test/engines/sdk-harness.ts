// Helpers for the SDK's engine tests: the app's env exactly as the operator renders it
// for the web Deployment, with Service names swapped for the loopback stand-ins and
// secretKeyRefs resolved to the passwords the harnesses started the engines with; and
// child Node processes (workers, the sample app) run on that env.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { toModel } from '../../operator/api/model.ts';
import type { AppModel } from '../../operator/api/model.ts';
import { validateApp } from '../../operator/api/validate.ts';
import { buildAll } from '../../operator/tiers/index.ts';
import type { K8sObject } from '../../operator/tiers/shared/chart.ts';
import { client, configMapData, envOf, freePort, waitFor } from './redis-harness.ts';
import type { Harness, Instance } from './redis-harness.ts';

export function renderApp(
  spec: Record<string, unknown>,
  name = 'shop',
  namespace = 'prod',
): { model: AppModel; objects: K8sObject[] } {
  const r = validateApp({
    apiVersion: 'scalable.dev/v1alpha1',
    kind: 'ScalableApp',
    metadata: { name, namespace },
    spec: { web: { image: `${name}:1` }, ...spec },
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  const model = toModel(r.app);
  return { model, objects: buildAll(model) };
}

export interface EnvMapping {
  /** Secret name -> the password the engine was started with. */
  readonly secrets: Readonly<Record<string, string>>;
  /** Exact rendered value -> loopback value (URLs, paths). */
  readonly values?: Readonly<Record<string, string>>;
  /** Every other mounted CA file (/etc/scalable/ca/...) -> this one (the Redis harness's). */
  readonly caFile?: string;
}

/** The web pod's env as a plain record, mapped to loopback. Every secretKeyRef must resolve. */
export function podEnv(
  objects: readonly K8sObject[],
  mapping: EnvMapping,
  kind = 'Deployment',
  name = 'shop-web',
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of envOf(objects, kind, name)) {
    if (e.value !== undefined)
      out[e.name] =
        mapping.values?.[e.value] ??
        (mapping.caFile && e.value.startsWith('/etc/scalable/ca/') ? mapping.caFile : e.value);
    else if (e.valueFrom?.secretKeyRef) {
      const v = mapping.secrets[e.valueFrom.secretKeyRef.name];
      if (v === undefined)
        throw new Error(`no password for Secret ${e.valueFrom.secretKeyRef.name}`);
      out[e.name] = v;
    }
  }
  return out;
}

export interface Child {
  readonly proc: ChildProcess;
  log(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
}

/** A TypeScript entry point run by this Node (22: types stripped natively), as the image runs it. */
export function runNode(file: string, env: Record<string, string>): Child {
  const proc = spawn(process.execPath, [file], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  proc.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, log: () => log, exited };
}

export interface ReplicatedCache {
  readonly redis: Instance[];
  readonly sentinels: Instance[];
  /** Rendered pod address (host:port) -> its loopback stand-in. */
  readonly loopback: ReadonlyMap<string, string>;
  readonly master: string;
}

/**
 * The replicated cache (replicas > 0) as rendered: redis pods started one by one by
 * start-redis.sh, then three Sentinels, pod DNS names mapped to loopback ports (as
 * redis-sentinel.test.ts does); resolves once every Sentinel sees every replica.
 */
export async function startReplicatedCache(
  h: Harness,
  objects: readonly K8sObject[],
  replicas: number,
): Promise<ReplicatedCache> {
  const data = configMapData(objects, 'shop-cache-config');
  const redisEnv = envOf(objects, 'StatefulSet', 'shop-cache');
  const sentinelEnv = envOf(objects, 'StatefulSet', 'shop-cache-sentinel');
  const valueOf = (env: typeof redisEnv, name: string) => {
    const v = env.find((e) => e.name === name)?.value;
    if (v === undefined) throw new Error(`no ${name}`);
    return v;
  };
  const loopback = new Map<string, string>();
  const toLoopback = (addr: string) => {
    const a = loopback.get(addr);
    if (!a) throw new Error(`no loopback address for ${addr}`);
    return a;
  };
  const portOf = (addr: string) => Number(addr.slice(addr.lastIndexOf(':') + 1));
  const podEnvOf = (env: typeof redisEnv, pod: string) => ({
    MASTER_NAME: valueOf(env, 'MASTER_NAME'),
    SENTINELS: valueOf(env, 'SENTINELS').split(',').map(toLoopback).join(','),
    SEED_ADDR: toLoopback(valueOf(env, 'SEED_ADDR')),
    SELF_ADDR: toLoopback(valueOf(env, 'SELF_ADDR').replace('$(POD_NAME)', pod)),
  });
  for (let i = 0; i <= replicas; i++) {
    loopback.set(
      valueOf(redisEnv, 'SELF_ADDR').replace('$(POD_NAME)', `shop-cache-${i}`),
      `127.0.0.1:${await freePort()}`,
    );
  }
  for (let i = 0; i < 3; i++) {
    loopback.set(
      valueOf(sentinelEnv, 'SELF_ADDR').replace('$(POD_NAME)', `shop-cache-sentinel-${i}`),
      `127.0.0.1:${await freePort()}`,
    );
  }
  const redis: Instance[] = [];
  for (let i = 0; i <= replicas; i++) {
    const env = podEnvOf(redisEnv, `shop-cache-${i}`);
    redis.push(
      await h.start(`redis-${i}`, 'start-redis.sh', data, env, { port: portOf(env.SELF_ADDR) }),
    );
  }
  const sentinels = await Promise.all(
    [0, 1, 2].map((i) => {
      const env = podEnvOf(sentinelEnv, `shop-cache-sentinel-${i}`);
      return h.start(`sentinel-${i}`, 'start-sentinel.sh', data, env, {
        port: portOf(env.SELF_ADDR),
      });
    }),
  );
  const master = valueOf(sentinelEnv, 'MASTER_NAME');
  for (const s of sentinels) {
    const c = client(s.port);
    try {
      await waitFor(`${s.name} to see ${replicas} replicas`, 30_000, async () => {
        const seen = (await c.call('SENTINEL', 'replicas', master)) as unknown[];
        const peers = (await c.call('SENTINEL', 'sentinels', master)) as unknown[];
        return seen.length === replicas && peers.length === 2;
      });
    } finally {
      c.disconnect();
    }
  }
  return { redis, sentinels, loopback, master };
}
