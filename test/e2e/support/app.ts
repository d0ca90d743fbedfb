// What an e2e file runs on, on the shared kind cluster: namespaces labelled as the suite's (so
// a timing case can wait until no other file's are left), and a ScalableApp of the sample app
// (photoshare) with the tiers its cases need, plus a client pod with the web pods' env. A file
// either owns its app (useSampleApp: created before its cases, deleted after them) or runs on
// the shared one (useSharedApp: made what the file expects before its cases, kept for the
// next file unless a case failed). When a case of a file failed, its namespaces are dumped
// (kubectl cluster-info dump) before they are deleted, as their pods' logs go with them.
// Files run one at a time (fileParallelism: false) and share only the cluster and operator.
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { RunnerTask } from 'vitest';
import { THUMBNAIL_STREAM } from '../../../examples/photoshare/src/timeline.ts';
import { appVersion, IMAGE_PREFIX } from './images.ts';
import {
  apply,
  cloneWebPod,
  createNamespace,
  eventually,
  getJson,
  kubeconfig,
  kubectl,
  podReady,
  waitAppReady,
  type List,
  type Meta,
  type Pod,
} from './kube.ts';
import { record } from './results.ts';

export const ROOT = join(import.meta.dirname, '..', '..', '..');
/** The sample app's image: web pods, workers and client pods run it. */
export const SAMPLE_IMAGE = `${IMAGE_PREFIX}/photoshare:${appVersion(ROOT)}`;
/** Every e2e file's namespaces carry it (value: the namespace's own name). */
export const SUITE_LABEL = 'e2e.scalable.dev/suite';

export const seconds = (ms: number): number => ms / 1000;

type Env = { name: string; value: string }[];

/** The tiers a file adds to what the sample app needs to serve at all. */
export interface SampleTiers {
  /** spec.database; default one shard without replicas (photoshare needs a database). */
  readonly database?: Record<string, unknown>;
  /** spec.cache; default none. */
  readonly cache?: Record<string, unknown>;
}

/**
 * A later version of the app's spec: a web env entry (rolls the web pods), a new HPA bound,
 * other autoscaling fields (spec.web.autoscaling, over the base's), the web pods' resources.
 */
export interface SpecChange {
  readonly webEnv?: Env;
  readonly maxReplicas?: number;
  readonly autoscaling?: Record<string, unknown>;
  readonly webResources?: Record<string, unknown>;
}

/**
 * CPU the test apps' web and Postgres pods request. kind's workers share the host's two cores
 * and each reports both as allocatable: at the defaults (250m a web pod, 500m a Postgres
 * member) the placement file's six members and two web pods beside the shared app's pods ask
 * for most of the three workers, and a web pod can stay Pending (Insufficient cpu). Requests
 * reserve, they do not limit: the pods still use what the nodes have.
 */
const TEST_REQUESTS = { requests: { cpu: '100m' } } as const;

/**
 * The ScalableApp: photoshare's web tier (2-4 pods, its session secret), the session store,
 * the queue with its thumbnail worker (KEDA, polled every 2 s and a 20 s cooldown, so a case
 * sees it wake and sleep again) and a database, which photoshare needs to start.
 */
export function sampleApp(
  namespace: string,
  name: string,
  tiers: SampleTiers,
  change: SpecChange = {},
): Record<string, unknown> {
  return {
    apiVersion: 'scalable.dev/v1alpha1',
    kind: 'ScalableApp',
    metadata: { name, namespace },
    spec: {
      web: {
        image: SAMPLE_IMAGE,
        env: [
          {
            name: 'SESSION_SECRET',
            valueFrom: { secretKeyRef: { name: `${name}-session`, key: 'secret' } },
          },
          ...(change.webEnv ?? []),
        ],
        probes: { readinessPath: '/healthz', livenessPath: '/healthz' },
        autoscaling: {
          minReplicas: 2,
          maxReplicas: change.maxReplicas ?? 4,
          ...change.autoscaling,
        },
        resources: change.webResources ?? TEST_REQUESTS,
      },
      ...(tiers.cache ? { cache: tiers.cache } : {}),
      sessions: { ttlSeconds: 86400 },
      database: {
        resources: TEST_REQUESTS,
        ...(tiers.database ?? { shards: 1, replicasPerShard: 0 }),
      },
      queue: {
        consumers: [
          {
            name: 'thumbnails',
            image: SAMPLE_IMAGE,
            // The stream photoshare's upload writes (one source: the app's own constant).
            stream: THUMBNAIL_STREAM,
            maxReplicas: 2,
            pollingIntervalSeconds: 2,
            cooldownSeconds: 20,
          },
        ],
      },
    },
  };
}

export interface FileApp {
  readonly namespace: string;
  readonly name: string;
  /** A pod with a web pod's env and labels of the app, not behind the web Service. */
  readonly client: string;
  /** The app's spec again, changed: apply it for a spec change. */
  spec(change?: SpecChange): Record<string, unknown>;
}

/** The namespace of the sample app that several files share (useSharedApp). */
export const SHARED_NAMESPACE = 'e2e-shared';
/** On the shared app's namespace: an idle app there does not keep a timed case waiting. */
const SHARED_LABEL = 'e2e.scalable.dev/shared';
/** The shared app's tiers: the cache besides what photoshare needs. */
const SHARED_TIERS: SampleTiers = {
  cache: { memory: '64Mi', evictionPolicy: 'allkeys-lfu', replicas: 1 },
};

/**
 * Call at a test file's top level: before its cases, `namespace` (and `otherNamespaces`)
 * created fresh, the sample app with `tiers` applied and Ready, and the client pod running;
 * after them, every namespace deleted. For cases that damage or time what they run on.
 */
export function useSampleApp(opts: {
  readonly namespace: string;
  readonly name?: string;
  readonly tiers?: SampleTiers;
  readonly otherNamespaces?: readonly string[];
  /** Runs from the apply until the app is Ready: a file that watches the app being made. */
  readonly whileCreating?: () => Promise<void>;
}): FileApp {
  const app = fileApp(opts.namespace, opts.name ?? 'shop', opts.tiers ?? {});
  const namespaces = [app.namespace, ...(opts.otherNamespaces ?? [])];
  beforeAll(async () => {
    for (const ns of opts.otherNamespaces ?? []) await freshNamespace(ns);
    await createApp(app, {}, opts.whileCreating);
  });
  afterAll(async ({}, file) => {
    if (failed(file)) await dumpNamespaces(namespaces);
    await deleteNamespaces(namespaces);
  });
  return app;
}

/**
 * The sample app in SHARED_NAMESPACE, with the cache: several files' cases run on it, as
 * creating an app per file costs a minute or more. Before a file's cases it is made what the
 * file expects: created when absent; otherwise its base spec applied again (undoing a spec
 * change of an earlier file, see resetApp) and Ready within 10 minutes, else created afresh.
 * A file with a failed case deletes it (after dumping it), so the next file starts from a new
 * one; a file that passes leaves it for the next. `otherNamespaces` are the file's own, as
 * useSampleApp's.
 */
export function useSharedApp(opts: { readonly otherNamespaces?: readonly string[] } = {}): FileApp {
  const app = fileApp(SHARED_NAMESPACE, 'shop', SHARED_TIERS);
  const own = opts.otherNamespaces ?? [];
  beforeAll(async ({}, file) => {
    for (const ns of own) await freshNamespace(ns);
    const start = Date.now();
    if (await resetApp(app))
      record({
        name: `case: shared app Ready again (${file.name})`,
        value: seconds(Date.now() - start),
      });
    else await createApp(app, { [SHARED_LABEL]: 'true' });
  });
  afterAll(async ({}, file) => {
    if (failed(file)) {
      await dumpNamespaces([SHARED_NAMESPACE, ...own]);
      await deleteNamespaces([SHARED_NAMESPACE, ...own]);
    } else await deleteNamespaces(own);
  });
  return app;
}

function fileApp(namespace: string, name: string, tiers: SampleTiers): FileApp {
  return {
    namespace,
    name,
    client: `${name}-client`,
    spec: (change) => sampleApp(namespace, name, tiers, change),
  };
}

/** A fresh namespace, the app's session secret, the app Ready, the client pod running. */
async function createApp(
  app: FileApp,
  labels: Record<string, string> = {},
  whileCreating?: () => Promise<void>,
): Promise<void> {
  await freshNamespace(app.namespace, labels);
  await kubectl([
    'create',
    'secret',
    'generic',
    `${app.name}-session`,
    '-n',
    app.namespace,
    '--from-literal=secret=e2e-session-secret-0123456789abcdef',
  ]);
  const start = Date.now();
  await apply(app.spec());
  await Promise.all([waitAppReady(app.namespace, app.name), whileCreating?.()]);
  record({
    name: `case: app Ready after apply (${app.namespace})`,
    value: seconds(Date.now() - start),
  });
  await cloneWebPod(app.namespace, app.name, app.client, { 'scalable.dev/app': app.name });
}

/**
 * A spec change that rolls no pod: the web HPA's upper bound raised by one, the E2E_* web env
 * entries an earlier file added kept (dropping them would roll every web pod). Returns the
 * app's generation before the change and the new bound.
 */
export async function raiseHpaBound(
  app: FileApp,
): Promise<{ generation: number; maxReplicas: number }> {
  const live = await getJson<{
    metadata: { generation: number };
    spec: {
      web: { env?: { name: string; value?: string }[]; autoscaling: { maxReplicas: number } };
    };
  }>(['get', 'scalableapp', app.name, '-n', app.namespace]);
  const webEnv = (live.spec.web.env ?? [])
    .filter((e) => e.name.startsWith('E2E_'))
    .map((e) => ({ name: e.name, value: e.value ?? '' }));
  const maxReplicas = live.spec.web.autoscaling.maxReplicas + 1;
  await apply(app.spec({ webEnv, maxReplicas }));
  return { generation: live.metadata.generation, maxReplicas };
}

/** Waits until the web HPA's upper bound is `maxReplicas` (the operator applied the change). */
export async function waitHpaBound(app: FileApp, maxReplicas: number, what: string): Promise<void> {
  await eventually(
    `the HPA raised to ${maxReplicas} ${what}`,
    async () => {
      const hpa = await getJson<{ spec: { maxReplicas: number } }>([
        'get',
        'hpa',
        `${app.name}-web`,
        '-n',
        app.namespace,
      ]);
      return hpa.spec.maxReplicas === maxReplicas ? true : undefined;
    },
    300_000,
    1000,
  );
}

/**
 * The existing app back at its base spec, Ready, with its client pod; false when it is not.
 * Web env entries a file added for a rollout (E2E_*) stay: dropping them would roll every web
 * pod again, and no case looks at them.
 */
async function resetApp(app: FileApp): Promise<boolean> {
  // A namespace being deleted (an earlier file failed: afterAll deletes without waiting) still
  // shows the app and its pods for a while; reusing it, the file's cases would see them go.
  const ns = await getJson<{ metadata: Meta }>(['get', 'namespace', app.namespace]).catch(
    () => undefined,
  );
  if (!ns || ns.metadata.deletionTimestamp) return false;
  const live = await getJson<{ spec: { web: { env?: { name: string; value?: string }[] } } }>([
    'get',
    'scalableapp',
    app.name,
    '-n',
    app.namespace,
  ]).catch(() => undefined);
  if (!live) return false;
  const webEnv = (live.spec.web.env ?? [])
    .filter((e) => e.name.startsWith('E2E_'))
    .map((e) => ({ name: e.name, value: e.value ?? '' }));
  try {
    await apply(app.spec({ webEnv }));
    await waitAppReady(app.namespace, app.name, 600_000);
    const client = await getJson<Pod>(['get', 'pod', app.client, '-n', app.namespace]).catch(
      () => undefined,
    );
    if (!client || !podReady(client)) {
      await kubectl(['delete', 'pod', app.client, '-n', app.namespace, '--ignore-not-found']);
      await cloneWebPod(app.namespace, app.name, app.client, { 'scalable.dev/app': app.name });
    }
    return true;
  } catch (err) {
    console.log(`[e2e] ${app.namespace}/${app.name} not usable again, creating it afresh: ${err}`);
    return false;
  }
}

/**
 * Waits until no other e2e file's namespace is left (their pods gone with them) but the shared
 * app's, idle (its file has ended, files run one at a time): a case that times a failover runs
 * with nothing else busy on the cluster. With `maxMs`, gives up after that long and says what
 * was still there (for a case that only records a time: CI's budget is short).
 */
export async function quietCluster(
  own: readonly string[],
  maxMs?: number,
): Promise<string | undefined> {
  const busyNow = async () => {
    const others = (await suiteNamespaces()).filter((n) => !own.includes(n.name));
    return others.filter((n) => !n.shared || n.terminating).map((n) => n.name);
  };
  try {
    await eventually(
      'no namespace of another e2e file left, the shared app idle',
      async () => {
        const busy = await busyNow();
        if (busy.length === 0) return true;
        throw new Error(`still there: ${busy.join(', ')}`);
      },
      maxMs ?? 600_000,
      2000,
    );
    return undefined;
  } catch (e) {
    if (maxMs === undefined) throw e;
    return `not quiet after ${maxMs / 1000} s: ${(await busyNow()).join(', ')}`;
  }
}

async function suiteNamespaces(): Promise<
  { name: string; shared: boolean; terminating: boolean }[]
> {
  const list = await getJson<List<{ metadata: Meta }>>(['get', 'namespaces', '-l', SUITE_LABEL]);
  return list.items.map((n) => ({
    name: n.metadata.name,
    shared: n.metadata.labels?.[SHARED_LABEL] === 'true',
    terminating: n.metadata.deletionTimestamp !== undefined,
  }));
}

const deleteNamespaces = (namespaces: readonly string[]): Promise<string> =>
  namespaces.length === 0
    ? Promise.resolve('')
    : kubectl(['delete', 'namespace', ...namespaces, '--ignore-not-found', '--wait=false']);

/** Creates the namespace; one a kept cluster (E2E_KEEP=1) still holds is deleted first. */
async function freshNamespace(name: string, labels: Record<string, string> = {}): Promise<void> {
  await kubectl(['delete', 'namespace', name, '--ignore-not-found', '--wait=true']);
  await createNamespace(name, { [SUITE_LABEL]: name, ...labels });
}

const failed = (task: RunnerTask): boolean =>
  task.result?.state === 'fail' || (task.type === 'suite' && task.tasks.some(failed));

/** Objects, events and every container's log of the namespaces, beside the run's kubeconfig. */
async function dumpNamespaces(namespaces: readonly string[]): Promise<void> {
  const dir = join(dirname(kubeconfig()), 'namespaces', namespaces[0] ?? 'e2e');
  rmSync(dir, { recursive: true, force: true });
  await kubectl([
    'cluster-info',
    'dump',
    '--namespaces',
    namespaces.join(','),
    '--output-directory',
    dir,
  ]).then(
    () => console.log(`[e2e] a case failed: ${namespaces.join(', ')} dumped to ${dir}`),
    (err: unknown) => console.log(`[e2e] kubectl cluster-info dump failed: ${String(err)}`),
  );
}
