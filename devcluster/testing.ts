// Helpers for integration tests that run against the devcluster started by global-setup.ts.
import { AppsV1Api, CoreV1Api, KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, inject } from 'vitest';
import { kubectl } from './crds.ts';

/** The kubeconfig of the run's cluster (provided by the global setup). */
export function testKubeconfig(): string {
  const path = inject('kubeconfig') ?? process.env['SCALABLE_TEST_KUBECONFIG'];
  if (!path) throw new Error('no devcluster: run through the vitest integration project');
  return path;
}

/** kubectl against the run's cluster; rejects with kubectl's stderr in the message. */
export const testKubectl = (...args: string[]) => kubectl(testKubeconfig(), args);

export function clients(kubeconfigPath: string = testKubeconfig()) {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return { kc, core: kc.makeApiClient(CoreV1Api), apps: kc.makeApiClient(AppsV1Api) };
}

/**
 * Call at file or describe level: every failing test after it prints where the control plane's
 * component logs are.
 */
export function printLogDirOnFailure(): void {
  afterEach((ctx) => {
    if (ctx.task.result?.state !== 'fail') return;
    const dir = inject('devclusterLogDir') ?? process.env['SCALABLE_TEST_LOG_DIR'];
    console.error(
      `[devcluster] "${ctx.task.name}" failed; control-plane logs are in ${dir ?? '(unknown)'}`,
    );
  });
}

/**
 * Polls fn until it returns a value other than undefined; the last error or a description of
 * what was awaited is in the timeout message.
 */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 60_000,
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs / 1000}s waiting for ${what}` +
          (last instanceof Error ? `: ${last.message}` : ''),
      );
    await sleep(everyMs);
  }
}

/**
 * Creates a namespace and waits for its default ServiceAccount, without which the
 * ServiceAccount admission plugin refuses pods (controllers then back off for seconds).
 */
export async function createNamespace(
  name: string,
  labels: Record<string, string> = {},
  core: CoreV1Api = clients().core,
): Promise<void> {
  await core.createNamespace({ body: { metadata: { name, labels } } });
  await eventually(`the default ServiceAccount in ${name}`, async () =>
    (await core.readNamespacedServiceAccount({ name: 'default', namespace: name }))
      ? true
      : undefined,
  );
}

/** Unique, DNS-safe name for a test's namespace. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e4).toString(36)}`;
}

export function nameOf(o: KubernetesObject): string {
  return o.metadata?.name ?? '';
}
