// The KEDA operator (built by cluster:build) run as a process beside the embedded control
// plane, the way its Deployment runs it in a cluster, minus what only a pod has:
// - in-cluster DNS: a ScaledObject names Services (<svc>.<ns>.svc). KEDA runs in a private
//   mount namespace (unshare) whose /etc/hosts maps those names to the loopback addresses
//   where the tests run the real servers, so it dials exactly the address the operator
//   rendered; nothing else on the machine sees the mapping;
// - its serving certificates: its gRPC metrics service (for the metrics adapter, not run
//   here) will not start without ca.crt/tls.crt/tls.key, so a throwaway PKI is made for it.
// The operator alone scales 0 <-> 1; between 1 and max its HPA needs the metrics adapter.
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateCerts } from './certs.ts';
import { binPath } from './paths.ts';
import { freePorts } from './ports.ts';
import { startProcess, stopProcess, type Started } from './processes.ts';

export interface KedaOptions {
  readonly kubeconfig: string;
  /** The namespaces KEDA watches (and keeps its own objects in: the first one). */
  readonly namespaces: readonly string[];
  /** Host name -> IPv4 address, added to KEDA's view of /etc/hosts. */
  readonly hosts: Readonly<Record<string, string>>;
  /** A fresh directory for its certificates, hosts file and log. */
  readonly dir: string;
}

export interface Keda {
  readonly process: Started;
  readonly logFile: string;
  log(): Promise<string>;
  stop(): Promise<void>;
}

export async function startKeda(o: KedaOptions): Promise<Keda> {
  const certDir = join(o.dir, 'certs');
  await mkdir(certDir, { recursive: true });
  await mkdir(join(o.dir, 'pki'), { recursive: true });
  const pki = await generateCerts(join(o.dir, 'pki'));
  await copyFile(pki.caCert, join(certDir, 'ca.crt'));
  await copyFile(pki.serverCert, join(certDir, 'tls.crt'));
  await copyFile(pki.serverKey, join(certDir, 'tls.key'));
  const hostsFile = join(o.dir, 'hosts');
  const extra = Object.entries(o.hosts).map(([name, ip]) => `${ip}\t${name}`);
  await writeFile(hostsFile, `${await readFile('/etc/hosts', 'utf8')}\n${extra.join('\n')}\n`);
  const [grpc] = await freePorts(1);
  const keda = binPath('keda-operator');
  const args = [
    '--leader-elect=false',
    '--metrics-bind-address=0',
    '--health-probe-bind-address=0',
    `--metrics-service-bind-address=127.0.0.1:${grpc}`,
    `--cert-dir=${certDir}`,
    `--kubeconfig=${o.kubeconfig}`,
    '--zap-log-level=info',
  ];
  // Root may unshare a mount namespace; anyone else needs a user namespace for it.
  const unshare = process.getuid?.() === 0 ? ['--mount'] : ['--map-root-user', '--mount'];
  const script = 'mount --bind "$1" /etc/hosts && shift && exec "$@"';
  const logFile = join(o.dir, 'keda-operator.log');
  const started = startProcess(
    'keda-operator',
    'unshare',
    [...unshare, 'sh', '-c', script, 'sh', hostsFile, keda, ...args],
    logFile,
    {
      ...process.env,
      WATCH_NAMESPACE: o.namespaces.join(','),
      KEDA_CLUSTER_OBJECT_NAMESPACE: o.namespaces[0] ?? 'keda',
      POD_NAMESPACE: o.namespaces[0] ?? 'keda',
    },
  );
  return {
    process: started,
    logFile,
    log: () => readFile(logFile, 'utf8').catch(() => ''),
    stop: () => stopProcess({ ...started, bin: keda }),
  };
}
