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
import { envOf } from './redis-harness.ts';

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
  /**
   * Secret name -> the password the engine was started with, or (a Secret of several keys,
   * like a Redis tier's -users) key -> password.
   */
  readonly secrets: Readonly<Record<string, string | Readonly<Record<string, string>>>>;
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
      const ref = e.valueFrom.secretKeyRef;
      const s = mapping.secrets[ref.name];
      const v = typeof s === 'string' ? s : s?.[ref.key];
      // An optional key the cluster would not have (the legacy Redis password) stays unset.
      if (v === undefined && ref.optional) continue;
      if (v === undefined) throw new Error(`no password for Secret ${ref.name} key ${ref.key}`);
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
