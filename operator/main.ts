// `npm start`: the operator against the cluster KUBECONFIG names, or, when none is set (and
// not in a pod), against the embedded control plane with the examples applied and a live
// status line per app on stdout. Logs are JSON on stderr.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Controller } from './runtime/controller.ts';
import { startHttpServer } from './runtime/http.ts';
import { KubeClient } from './runtime/kube-client.ts';
import { createLogger } from './runtime/log.ts';
import { createMetrics } from './runtime/metrics.ts';
import { SettingsError, parseSettings } from './runtime/settings.ts';
import type { Settings } from './runtime/settings.ts';
import { operatorVersion } from './version.ts';

async function main(): Promise<void> {
  if (process.argv.includes('--version')) {
    console.log(`scalable-operator ${operatorVersion()}`);
    return;
  }
  let settings: Settings;
  try {
    settings = parseSettings(process.env);
  } catch (err) {
    if (!(err instanceof SettingsError)) throw err;
    console.error(`scalable-operator: ${err.message}`);
    process.exitCode = 2;
    return;
  }
  const embedded = !process.env['KUBECONFIG'] && !process.env['KUBERNETES_SERVICE_HOST'];
  // The image sets SCALABLE_EMBEDDED=false: there is no development control plane to start.
  if (embedded && !settings.embeddedAllowed) {
    console.error(
      'scalable-operator: no cluster to manage: KUBECONFIG is not set and this is not a pod ' +
        '(no KUBERNETES_SERVICE_HOST). Set KUBECONFIG to a kubeconfig file, or run it in a ' +
        'pod with a service account (helm install charts/scalable-operator).',
    );
    process.exitCode = 1;
    return;
  }
  const log = createLogger();
  let kubeconfigPath: string | undefined;
  if (embedded) {
    const { startEmbedded } = await import('./runtime/embedded.ts');
    kubeconfigPath = await startEmbedded((m) => console.log(`[devcluster] ${m}`));
    console.log(`[operator] embedded control plane: KUBECONFIG=${kubeconfigPath}`);
  }
  const client = await KubeClient.load(kubeconfigPath, {
    qps: settings.apiQps,
    burst: settings.apiBurst,
  });
  const metrics = createMetrics();
  client.onRequest((verb, resource, code) =>
    metrics.apiRequests.inc({ verb, resource, code: String(code) }),
  );
  client.onSend((_verb, resource) => metrics.apiRequestsSent.inc({ resource }));
  const identity = `${hostname()}_${process.pid}_${randomBytes(3).toString('hex')}`;
  const controller = new Controller({
    client,
    log,
    metrics,
    identity,
    workers: settings.workers,
    resyncMs: settings.resyncMs,
    tlsTrustHoldMs: settings.tlsTrustHoldMs,
    discoveryRefreshMs: settings.discoveryRefreshMs,
    watchIdleMs: settings.watchIdleMs,
    leaderElection: settings.leaderElection,
    ...(settings.watchNamespaces ? { watchNamespaces: settings.watchNamespaces } : {}),
    leaseNamespace: settings.leaseNamespace,
    leaseName: settings.leaseName,
    lease: settings.lease,
    images: settings.images,
    network: settings.network,
    rbac: settings.rbac,
    reconcileConcurrency: settings.reconcileConcurrency,
    onLostLeadership: () => {
      // As controller-runtime does: a replacement starts clean; this process's caches, queue
      // and in-flight work (cancelled already) belong to a term that is over.
      log.error('leadership lost: exiting');
      log.flush();
      process.exitCode = 1;
      setTimeout(() => process.exit(1), 100);
    },
  });
  const server = await startHttpServer(settings.httpPort, settings.httpHost, metrics.registry, {
    healthy: () => true,
    notReady: () => controller.notReady(),
  });
  log.info(
    { identity, port: server.port, namespaces: settings.watchNamespaces ?? 'all' },
    'serving /metrics, /healthz, /readyz',
  );

  let stoppingSince = 0;
  const shutdown = async (signal: string) => {
    if (stoppingSince > 0) {
      // Ctrl-C reaches us twice (the terminal's process group, then tsx/npm relaying it):
      // only a signal that comes later means "now".
      if (Date.now() - stoppingSince < 2_000) return;
      log.warn('second signal: exiting now');
      process.exit(1);
    }
    stoppingSince = Date.now();
    // Warn: a stop is rare and worth seeing at the usual production level too.
    log.warn({ signal }, 'shutting down: finishing in-flight reconciles');
    await controller.stop();
    await server.close();
    log.info('stopped');
    log.flush();
    // Kept for a fast restart (npm start reuses it in seconds); say so, it holds ~1 GiB.
    if (embedded)
      console.log(
        '[operator] the embedded control plane is still running (about 1 GiB): ' +
          '`npm start` reuses it; `npm run cluster:down` stops it',
      );
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  await controller.start();
  if (embedded || settings.statusLines) printStatusLines(controller);
}

/** One line per app whenever its summary changes. */
function printStatusLines(controller: Controller): void {
  const last = new Map<string, string>();
  const timer = setInterval(() => {
    for (const a of controller.appSummaries()) {
      const gen =
        a.generation === undefined ? '' : ` generation ${a.observed ?? '-'}/${a.generation}`;
      const line = `${a.key.padEnd(28)} Ready=${a.ready.padEnd(7)} ${a.reason.padEnd(16)} web ${a.web ?? '-'}${gen}`;
      if (last.get(a.key) !== line) {
        last.set(a.key, line);
        console.log(`[status] ${line}`);
      }
    }
  }, 1000);
  timer.unref();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
