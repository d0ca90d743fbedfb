// The upstream CRDs (KEDA, Prometheus Operator, Gateway API) copied into the cache at build
// time, applied to or removed from a running API server with kubectl.
import { join } from 'node:path';
import { run } from './exec.ts';
import { binPath, crdDir } from './paths.ts';
import type { Log } from './toolchain.ts';

export const OPTIONAL_CRDS = ['keda', 'prometheus-operator', 'gateway-api'];

export function kubectl(kubeconfig: string, args: string[], input?: string) {
  return run(binPath('kubectl'), [`--kubeconfig=${kubeconfig}`, ...args], { input });
}

export async function waitEstablished(kubeconfig: string): Promise<void> {
  await kubectl(kubeconfig, [
    'wait',
    '--for=condition=Established',
    'crd',
    '--all',
    '--timeout=120s',
  ]);
}

export async function setOptionalCrds(
  kubeconfig: string,
  install: boolean,
  log: Log,
): Promise<void> {
  if (install) {
    // One kubectl per project: the API server spends its time compiling each CRD's schema and
    // CEL rules, and does that faster for concurrent requests on two cores.
    await Promise.all(
      OPTIONAL_CRDS.map((d) =>
        kubectl(kubeconfig, [
          'apply',
          '--server-side',
          '--force-conflicts',
          '-f',
          join(crdDir(), d),
        ]),
      ),
    );
    await waitEstablished(kubeconfig);
    log('upstream CRDs Established: KEDA, Prometheus Operator, Gateway API');
  } else {
    const files = OPTIONAL_CRDS.flatMap((d) => ['-f', join(crdDir(), d)]);
    await kubectl(kubeconfig, ['delete', '--ignore-not-found', '--wait=true', ...files]);
    log('upstream CRDs absent (optional CRDs off)');
  }
}
