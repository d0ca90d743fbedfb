// Helpers for the image smoke tests: docker run as the pod would (its uid, read-only root
// filesystem, no capabilities), files from the operator's own render.
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import yaml from 'js-yaml';
import { renderText } from '../../operator/render.ts';

/** An object of the render (typed through render.ts, the stable offline entry point). */
type K8sObject = Extract<ReturnType<typeof renderText>, { ok: true }>['objects'][number];

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');

export const PREFIX = process.env['SCALABLE_IMAGE_PREFIX'] ?? 'ghcr.io/scalable-dev';
export const TAG = (
  yaml.load(readFileSync(join(ROOT, 'charts/scalable-operator/Chart.yaml'), 'utf8')) as {
    appVersion: string;
  }
).appVersion;
export const image = (name: string): string => `${PREFIX}/${name}:${TAG}`;

export interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function docker(args: readonly string[], timeoutMs = 120_000): Promise<Result> {
  try {
    const { stdout, stderr } = await run('docker', args, {
      timeout: timeoutMs,
      maxBuffer: 64 << 20,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof e.code === 'number' ? e.code : -1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? String(err),
    };
  }
}

/** `docker run` flags of a Pod Security "restricted" container running as uid. */
export const restricted = (uid: number): string[] => [
  '--user',
  `${uid}:${uid}`,
  '--read-only',
  '--cap-drop',
  'ALL',
  '--security-opt',
  'no-new-privileges',
];

/** A container run as its pod runs it: `restricted(uid)`, plus what the pod mounts and sets. */
export interface PodRun {
  readonly image: string;
  readonly uid: number;
  /** Detached under this name (the caller removes it); unset: run to completion (--rm). */
  readonly name?: string;
  /** Another container's network namespace (a sidecar's view: localhost is the pod). */
  readonly network?: string;
  /** Host directory -> mount point, e.g. `/etc/redis:ro`. */
  readonly volumes?: Readonly<Record<string, string>>;
  readonly tmpfs?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** More flags, as they are (e.g. tlsMounts' -v/-e pairs, --shm-size). */
  readonly flags?: readonly string[];
  readonly entrypoint?: string;
  /** After the image: the command or the entrypoint's arguments. */
  readonly args?: readonly string[];
}

export function runPod(p: PodRun): Promise<Result> {
  return docker([
    'run',
    ...(p.name ? ['-d', '--name', p.name] : ['--rm']),
    ...restricted(p.uid),
    ...(p.network ? ['--network', p.network] : []),
    ...Object.entries(p.volumes ?? {}).flatMap(([host, at]) => ['-v', `${host}:${at}`]),
    ...(p.tmpfs ?? []).flatMap((t) => ['--tmpfs', t]),
    ...(p.flags ?? []),
    ...Object.entries(p.env ?? {}).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
    ...(p.entrypoint ? ['--entrypoint', p.entrypoint] : []),
    p.image,
    ...(p.args ?? []),
  ]);
}

/** The objects `scalable render` makes of an example file. */
export function render(file: string): readonly K8sObject[] {
  const r = renderText(readFileSync(join(ROOT, file), 'utf8'), file);
  if (!r.ok) throw new Error(r.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  return r.objects;
}

export function find(objects: readonly K8sObject[], kind: string, name: string): K8sObject {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name} in the render`);
  return o;
}

/** A ConfigMap's data as files in a fresh directory anyone may read (a ConfigMap volume). */
export function configMapDir(cm: K8sObject): string {
  const dir = mkdtempSync(join(tmpdir(), 'scalable-img-'));
  for (const [k, v] of Object.entries((cm as unknown as { data: Record<string, string> }).data))
    writeFileSync(join(dir, k), v, { mode: 0o644 });
  chmodSync(dir, 0o755);
  return dir;
}

/** A directory only the container's uid may use (a PVC or emptyDir with fsGroup). */
export function volumeDir(uid: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'scalable-vol-'));
  chownSync(dir, uid, uid);
  chmodSync(dir, 0o700);
  return dir;
}

export async function ipOf(container: string): Promise<string> {
  const r = await docker([
    'inspect',
    '-f',
    '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}',
    container,
  ]);
  return r.stdout.trim();
}

/** The container's network gateway: the host as the container reaches it. */
export async function gatewayOf(container: string): Promise<string> {
  const r = await docker([
    'inspect',
    '-f',
    '{{range .NetworkSettings.Networks}}{{.Gateway}}{{end}}',
    container,
  ]);
  return r.stdout.trim();
}

export async function eventuallyOk<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
