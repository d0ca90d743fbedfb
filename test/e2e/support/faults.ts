// Faults done to a pod from its kind node (a docker container), below Kubernetes: no API
// request and no container-runtime request, what a crash does.
import { run } from '../../../devcluster/exec.ts';
import { eventually, getJson } from './kube.ts';

/** containerd's socket in a kind node, named so crictl does not probe its default list. */
const CRI = 'unix:///run/containerd/containerd.sock';

interface PodContainers {
  metadata: { name: string; uid?: string };
  spec: { nodeName?: string };
  status: { containerStatuses?: { name: string; containerID?: string }[] };
}

interface CriContainer {
  status?: { state?: string; exitCode?: number };
  info?: { pid?: number };
}

const crictl = async (node: string, args: readonly string[]): Promise<string> =>
  (await run('docker', ['exec', node, 'crictl', '--runtime-endpoint', CRI, ...args])).stdout;

const inspect = async (node: string, id: string): Promise<CriContainer> =>
  JSON.parse(await crictl(node, ['inspect', id])) as CriContainer;

export interface Killed {
  readonly node: string;
  /** The container runtime's ID of the killed container. */
  readonly id: string;
  /** Its init process, in the node's PID namespace. */
  readonly pid: number;
  /** Epoch ms once the kill command returned (the processes were dead by then). */
  readonly doneAt: number;
  /** The container's exit code as its runtime recorded it (137: SIGKILL). */
  readonly exitCode: number;
}

/**
 * kill -9 of every process of `container` in `pod`: SIGKILL of the container's init process
 * (PID 1 of its PID namespace) from the node, whereupon the kernel kills every other process
 * of that namespace; the kubelet finds the container exited and restarts it by the pod's
 * restartPolicy, as after a crash. Not `crictl stop --timeout 0`: that is a CRI StopContainer,
 * a stop asked of the runtime (which then sends the SIGKILL itself), not a process dying
 * under it. Resolves once the runtime records the container exited, with its exit code.
 */
export async function killContainer(
  namespace: string,
  pod: string,
  container: string,
): Promise<Killed> {
  const p = await getJson<PodContainers>(['get', 'pod', pod, '-n', namespace]);
  const node = p.spec.nodeName;
  const ref = p.status.containerStatuses?.find((c) => c.name === container)?.containerID ?? '';
  const id = /^containerd:\/\/([0-9a-f]{64})$/.exec(ref)?.[1];
  if (!node || !id) throw new Error(`${namespace}/${pod}: no node or no ${container} container`);
  const before = await inspect(node, id);
  const pid = before.info?.pid ?? 0;
  if (before.status?.state !== 'CONTAINER_RUNNING' || !Number.isInteger(pid) || pid <= 1)
    throw new Error(
      `${pod}/${container} (${id.slice(0, 12)}) on ${node} is not running: ${JSON.stringify(before.status)}, pid ${pid}`,
    );
  // The shell's kill builtin: the node image need not carry procps.
  await run('docker', ['exec', node, 'sh', '-c', 'kill -9 "$1"', 'sh', String(pid)]);
  const doneAt = Date.now();
  const exitCode = await eventually(
    `${pod}/${container} (${id.slice(0, 12)}) exited on ${node}`,
    async () => {
      const after = await inspect(node, id);
      return after.status?.state === 'CONTAINER_EXITED' ? (after.status.exitCode ?? -1) : undefined;
    },
    60_000,
    100,
  );
  return { node, id, pid, doneAt, exitCode };
}
