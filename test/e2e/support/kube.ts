// What the e2e cases do in the cluster: kubectl with the run's kubeconfig, JSON reads, client
// pods cloned from an app's web pod, commands and scripts run in pods.
import { spawn } from 'node:child_process';
import { inject } from 'vitest';
import { binPath } from '../../../devcluster/paths.ts';
import { run } from '../../../devcluster/exec.ts';
import { eventually } from '../../../devcluster/testing.ts';

export { eventually };

export function kubeconfig(): string {
  const path = inject('kubeconfig') ?? process.env['SCALABLE_TEST_KUBECONFIG'];
  if (!path) throw new Error('no kind cluster: run through the vitest e2e project');
  return path;
}

export async function kubectl(args: readonly string[], input?: string): Promise<string> {
  const { stdout } = await run(binPath('kubectl'), ['--kubeconfig', kubeconfig(), ...args], {
    ...(input === undefined ? {} : { input }),
  });
  return stdout;
}

export async function helm(args: readonly string[]): Promise<string> {
  const { stdout } = await run(binPath('helm'), ['--kubeconfig', kubeconfig(), ...args]);
  return stdout;
}

export async function getJson<T = Record<string, unknown>>(args: readonly string[]): Promise<T> {
  return JSON.parse(await kubectl([...args, '-o', 'json'])) as T;
}

export interface Meta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: string;
  uid?: string;
}
export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}
export interface Pod {
  metadata: Meta;
  spec: {
    nodeName?: string;
    containers: { name: string; env?: { name: string; value?: string }[] }[];
  };
  status: {
    phase?: string;
    podIP?: string;
    conditions?: Condition[];
    containerStatuses?: {
      name: string;
      ready?: boolean;
      restartCount?: number;
      state?: { waiting?: { reason?: string; message?: string } };
    }[];
  };
}
export interface List<T> {
  items: T[];
}

export const podReady = (p: Pod): boolean =>
  !p.metadata.deletionTimestamp &&
  p.status.phase === 'Running' &&
  (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

/**
 * Why a pod is not ready, in a line: unscheduled (the scheduler's message: short of CPU, no
 * node for a spread), a container waiting (CrashLoopBackOff) or restarting, else its phase.
 */
export function whyNotReady(p: Pod): string {
  const unscheduled = p.status.conditions?.find(
    (c) => c.type === 'PodScheduled' && c.status === 'False',
  );
  if (unscheduled) return `unscheduled (${unscheduled.reason}: ${unscheduled.message})`;
  const troubled = (p.status.containerStatuses ?? [])
    .filter((c) => !c.ready)
    .map((c) => {
      const waiting = c.state?.waiting;
      const restarts = c.restartCount ? `, ${c.restartCount} restarts` : '';
      return `${c.name} ${waiting ? `waiting (${waiting.reason ?? ''})` : 'not ready'}${restarts}`;
    });
  return `${p.status.phase ?? 'no phase'}${troubled.length ? `: ${troubled.join(', ')}` : ''}`;
}

/** The namespace's pods that are not ready: name@node and why (for a timeout message). */
export async function notReadyPods(namespace: string): Promise<string> {
  const all = (await getJson<List<Pod>>(['get', 'pods', '-n', namespace])).items;
  const lines = all
    .filter((p) => !podReady(p))
    .map((p) => `${p.metadata.name}@${p.spec.nodeName ?? '-'} ${whyNotReady(p)}`);
  return lines.length ? `pods not ready: ${lines.join('; ')}` : 'every pod ready';
}

export async function pods(namespace: string, selector: string): Promise<Pod[]> {
  return (await getJson<List<Pod>>(['get', 'pods', '-n', namespace, '-l', selector])).items;
}

/** node name -> topology.kubernetes.io/zone */
export async function nodeZones(): Promise<Map<string, string>> {
  const nodes = await getJson<List<{ metadata: Meta }>>(['get', 'nodes']);
  return new Map(
    nodes.items.map((n) => [
      n.metadata.name,
      n.metadata.labels?.['topology.kubernetes.io/zone'] ?? '',
    ]),
  );
}

export async function createNamespace(
  name: string,
  labels: Record<string, string> = {},
): Promise<void> {
  await kubectl(
    ['create', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } }),
  );
  await eventually(`the default ServiceAccount in ${name}`, async () =>
    (await kubectl(['get', 'serviceaccount', 'default', '-n', name, '--ignore-not-found'])).trim()
      ? true
      : undefined,
  );
}

export async function apply(doc: unknown): Promise<void> {
  await kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], JSON.stringify(doc));
}

/** A condition of a ScalableApp, or undefined. */
export async function appCondition(
  namespace: string,
  app: string,
  type: string,
): Promise<Condition | undefined> {
  return (await appConditions(namespace, app)).find((c) => c.type === type);
}

/**
 * Ready as this cluster serves the app: the e2e cluster runs KEDA (the queue's scaler) and
 * every API the app asks for, so nothing less than Ready=True will do.
 */
export function readyAsServed(conditions: readonly Condition[]): boolean {
  return conditions.find((c) => c.type === 'Ready')?.status === 'True';
}

/** Every condition of a ScalableApp (none when it has no status yet). */
export async function appConditions(namespace: string, app: string): Promise<Condition[]> {
  const sapp = await getJson<{ status?: { conditions?: Condition[] } }>([
    'get',
    'scalableapp',
    app,
    '-n',
    namespace,
  ]);
  return sapp.status?.conditions ?? [];
}

/**
 * Waits until the operator has seen the app's latest spec, is ready as far as this cluster
 * serves it (readyAsServed), with nothing left in progress (Progressing=False): a rollout it
 * started is over.
 */
export async function waitAppReady(
  namespace: string,
  app: string,
  timeoutMs = 900_000,
): Promise<void> {
  await withPodsOnTimeout(namespace, () => waitAppCondition(namespace, app, timeoutMs));
}

/** A wait that failed says, besides its own last error, which pods were not ready and why. */
async function withPodsOnTimeout<T>(namespace: string, wait: () => Promise<T>): Promise<T> {
  try {
    return await wait();
  } catch (e) {
    const pods = await notReadyPods(namespace).catch((err: unknown) => `pods unknown: ${err}`);
    throw new Error(`${e instanceof Error ? e.message : String(e)}; ${pods}`, { cause: e });
  }
}

function waitAppCondition(namespace: string, app: string, timeoutMs: number): Promise<boolean> {
  return eventually(
    `ScalableApp ${namespace}/${app} ready as served, Progressing=False at its latest generation`,
    async () => {
      const sapp = await getJson<{
        metadata: { generation?: number };
        status?: { observedGeneration?: number; conditions?: Condition[] };
      }>(['get', 'scalableapp', app, '-n', namespace]);
      const cond = (t: string) => sapp.status?.conditions?.find((c) => c.type === t);
      const ready = cond('Ready');
      const progressing = cond('Progressing');
      const seen = sapp.status?.observedGeneration ?? 0;
      const want = sapp.metadata.generation ?? 0;
      const conditions = sapp.status?.conditions ?? [];
      if (seen >= want && readyAsServed(conditions) && progressing?.status === 'False') return true;
      throw new Error(
        `generation ${want}, observed ${seen}; Ready ${ready ? `${ready.status} (${ready.reason}: ${ready.message})` : 'not set'}; ` +
          `Progressing ${progressing ? `${progressing.status} (${progressing.reason})` : 'not set'}`,
      );
    },
    timeoutMs,
    3000,
  );
}

interface Deployment {
  spec: {
    template: {
      metadata: { labels: Record<string, string> };
      spec: Record<string, unknown> & { containers: Record<string, unknown>[] };
    };
  };
}

/**
 * A pod that gets exactly what the app's web pods get (env, secrets, volumes, service
 * account, security context) from the same image, but does nothing (`sleep`) and is not behind
 * the web Service. `labels` decide which NetworkPolicies see it as one of the app's pods.
 */
export async function cloneWebPod(
  namespace: string,
  app: string,
  name: string,
  labels: Record<string, string>,
  opts: {
    nodeName?: string;
    /** An ES module the pod runs once (cwd /app) instead of idling; the pod is not restarted. */
    script?: string;
  } = {},
): Promise<void> {
  const dep = await getJson<Deployment>(['get', 'deployment', `${app}-web`, '-n', namespace]);
  const spec = dep.spec.template.spec;
  const [web] = spec.containers;
  // The web container without what makes it a server (probes, ports, preStop).
  const container = Object.fromEntries(
    Object.entries(web ?? {}).filter(
      ([k]) =>
        !['livenessProbe', 'readinessProbe', 'startupProbe', 'lifecycle', 'ports'].includes(k),
    ),
  );
  await apply({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { 'e2e.scalable.dev/client': 'true', ...labels } },
    spec: {
      ...spec,
      affinity: undefined,
      topologySpreadConstraints: undefined,
      ...(opts.nodeName ? { nodeName: opts.nodeName } : {}),
      ...(opts.script ? { restartPolicy: 'Never' } : {}),
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          ...container,
          name: 'client',
          command: opts.script
            ? ['node', '--input-type=module', '-e', opts.script]
            : ['node', '-e', 'setInterval(() => {}, 1 << 30)'],
          resources: {},
        },
      ],
    },
  });
  await waitPodReady(namespace, name);
}

/**
 * A bare pod from the given image that only sleeps, or runs `script` (no app env, no app labels
 * unless given).
 */
export async function sleeperPod(
  namespace: string,
  name: string,
  image: string,
  labels: Record<string, string> = {},
  script = 'setInterval(() => {}, 1 << 30)',
): Promise<void> {
  await apply({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { 'e2e.scalable.dev/client': 'true', ...labels } },
    spec: {
      terminationGracePeriodSeconds: 1,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 65532,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      containers: [
        {
          name: 'client',
          image,
          imagePullPolicy: 'IfNotPresent',
          command: ['node', '-e', script],
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        },
      ],
    },
  });
  await waitPodReady(namespace, name);
}

export async function waitPodReady(
  namespace: string,
  name: string,
  timeoutMs = 300_000,
): Promise<void> {
  await eventually(
    `pod ${namespace}/${name} Ready`,
    async () => {
      const p = await getJson<Pod>(['get', 'pod', name, '-n', namespace]);
      if (podReady(p)) return true;
      throw new Error(
        `phase ${p.status.phase ?? '?'}, conditions ${JSON.stringify(p.status.conditions ?? [])}`,
      );
    },
    timeoutMs,
    1000,
  );
}

/** Runs an ES module in a pod's node (cwd /app: the image's node_modules resolve); stdout. */
export async function nodeScript(namespace: string, pod: string, script: string): Promise<string> {
  return kubectl(
    ['exec', '-i', '-n', namespace, pod, '--', 'node', '--input-type=module', '-'],
    script,
  );
}

/** A script running in a pod until told to finish (heldScript). */
export interface HeldScript {
  /** Resolves with the first stdout line `match` accepts; rejects if the script ends first. */
  line(match: (line: string) => boolean): Promise<string>;
  /** Closes the script's stdin (its cue to finish) and resolves with all it printed. */
  finish(): Promise<string>;
}

/**
 * Runs an ES module in a pod's node (as nodeScript) that keeps running until its stdin closes:
 * for something held across a case's steps (a database lock). The script is an argument, so
 * stdin stays the script's own; `finish` (or a failed case's cleanup) closes it.
 */
export function heldScript(namespace: string, pod: string, script: string): HeldScript {
  const child = spawn(
    binPath('kubectl'),
    [
      '--kubeconfig',
      kubeconfig(),
      ...['exec', '-i', '-n', namespace, pod, '--', 'node', '--input-type=module', '-e', script],
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  const waiters: (() => void)[] = [];
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of waiters) w();
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return {
    line: (match) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const found = out.split('\n').find(match);
          if (found !== undefined) resolve(found);
        };
        waiters.push(check);
        check();
        void exited.then((code) =>
          reject(new Error(`script in ${pod} ended (exit ${code}) first: ${out}${err}`)),
        );
      }),
    finish: async () => {
      child.stdin.end();
      const code = await exited;
      if (code !== 0) throw new Error(`script in ${pod} exited ${code}: ${out}${err}`);
      return out;
    },
  };
}
