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

/** The container of `pod` named `container`: its node, runtime ID and init process. */
async function runningContainer(
  namespace: string,
  pod: string,
  container: string,
): Promise<{ node: string; id: string; pid: number }> {
  const p = await getJson<PodContainers>(['get', 'pod', pod, '-n', namespace]);
  const node = p.spec.nodeName;
  const ref = p.status.containerStatuses?.find((c) => c.name === container)?.containerID ?? '';
  const id = /^containerd:\/\/([0-9a-f]{64})$/.exec(ref)?.[1];
  if (!node || !id) throw new Error(`${namespace}/${pod}: no node or no ${container} container`);
  const pid = (await inspect(node, id)).info?.pid ?? 0;
  if (!Number.isInteger(pid) || pid <= 1)
    throw new Error(`${pod}/${container} (${id.slice(0, 12)}) on ${node}: no running process`);
  return { node, id, pid };
}

/**
 * Out of memory, as the kernel does it: the container's cgroup memory limit lowered from the
 * node, so the kernel's OOM killer ends it within its cgroup, as when a burst outgrows the
 * pod's limit. cgroup v2: memory.max at half of what it uses now (the write itself reclaims,
 * then kills). cgroup v1 (this VM's hosts): a limit under the usage is refused (EBUSY), so
 * memory.limit_in_bytes goes to 1 MiB above it, for the process's next allocations to cross;
 * in the one run on v1 (2026-12-07) the operator at rest stayed under it for 180 s and was not
 * killed: v1 needs another way to make it allocate. The kubelet then reports OOMKilled and starts a
 * new container, in a new cgroup with the pod's own limit. Resolves once the runtime records
 * the container exited, with its exit code.
 */
export async function oomKill(
  namespace: string,
  pod: string,
  container: string,
): Promise<{ node: string; id: string; exitCode: number; doneAt: number }> {
  const { node, id, pid } = await runningContainer(namespace, pod, container);
  await run('docker', [
    'exec',
    node,
    'sh',
    '-c',
    [
      'set -e',
      'if [ -f /sys/fs/cgroup/cgroup.controllers ]; then',
      `  cg=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/${pid}/cgroup)`,
      '  used=$(cat "$cg/memory.current")',
      '  echo $((used / 2)) > "$cg/memory.max"',
      'else',
      `  cg=/sys/fs/cgroup/memory$(sed -n 's/^[0-9]*:memory://p' /proc/${pid}/cgroup)`,
      '  used=$(cat "$cg/memory.usage_in_bytes")',
      '  echo $((used + 1048576)) > "$cg/memory.limit_in_bytes"',
      'fi',
    ].join('\n'),
  ]);
  const doneAt = Date.now();
  const exitCode = await eventually(
    `${pod}/${container} (${id.slice(0, 12)}) ended by the OOM killer on ${node}`,
    async () => {
      const after = await inspect(node, id);
      return after.status?.state === 'CONTAINER_EXITED' ? (after.status.exitCode ?? -1) : undefined;
    },
    180_000,
    200,
  );
  return { node, id, exitCode, doneAt };
}

/** The chain of a node's raw table that holds a cut's rules (and nothing else). */
const CUT_CHAIN = 'E2E-CUT';

export interface CutSpec {
  /** Address and TCP port pairs the node may no longer reach nor hear from (the API server). */
  readonly services: readonly { readonly address: string; readonly port: number }[];
  /** Address pairs between which every packet through the node is dropped (a pod, its peers). */
  readonly pairs: readonly (readonly [string, string])[];
}

export interface Cut {
  readonly node: string;
  /** Epoch ms once the rules were in place. */
  readonly at: number;
  /** Removes the rules (idempotent; safe after a failed cut). */
  heal(): Promise<void>;
}

const family = (address: string): 'iptables' | 'ip6tables' =>
  address.includes(':') ? 'ip6tables' : 'iptables';

/** The shell that installs a cut: the rules in CUT_CHAIN, jumped to first from raw's hooks. */
export function cutScript(spec: CutSpec): string {
  const rule = (address: string, args: string) =>
    `${family(address)} -t raw -A ${CUT_CHAIN} ${args} -j DROP`;
  const rules = [
    ...spec.services.flatMap(({ address, port }) => [
      rule(address, `-p tcp -d ${address} --dport ${port}`),
      rule(address, `-p tcp -s ${address} --sport ${port}`),
    ]),
    ...spec.pairs.flatMap(([a, b]) => [rule(a, `-s ${a} -d ${b}`), rule(a, `-s ${b} -d ${a}`)]),
  ];
  return [
    'set -e',
    `for t in iptables ip6tables; do $t -t raw -N ${CUT_CHAIN} 2>/dev/null || $t -t raw -F ${CUT_CHAIN}; done`,
    ...rules,
    `for t in iptables ip6tables; do for c in PREROUTING OUTPUT; do $t -t raw -C $c -j ${CUT_CHAIN} 2>/dev/null || $t -t raw -I $c 1 -j ${CUT_CHAIN}; done; done`,
  ].join('\n');
}

/** The shell that removes every trace of a cut, whatever of it was installed. */
export const HEAL_SCRIPT = [
  `for t in iptables ip6tables; do`,
  `  for c in PREROUTING OUTPUT; do while $t -t raw -D $c -j ${CUT_CHAIN} 2>/dev/null; do :; done; done`,
  `  $t -t raw -F ${CUT_CHAIN} 2>/dev/null || true; $t -t raw -X ${CUT_CHAIN} 2>/dev/null || true`,
  `done`,
  `! { iptables -t raw -S; ip6tables -t raw -S; } | grep -q ${CUT_CHAIN}`,
].join('\n');

/**
 * Cuts a kind node off, below Kubernetes: iptables rules inside the node container (its
 * network namespace holds the kubelet, kube-proxy and the routes of every pod on it) drop the
 * given traffic. In the raw table, which runs before conntrack, NAT and the filter chains that
 * kube-proxy and the network-policy controller keep rewriting: packets of connections already
 * open are dropped too, and traffic to a Service VIP is matched before it is translated (so
 * give the VIP and the address behind it). Nothing answers: a peer sees a silent network, not
 * a refused connection. Only the listed traffic: the rest of the node, and the API server's
 * own connections to the kubelet (exec, logs), keep working.
 */
export async function cutOff(node: string, spec: CutSpec): Promise<Cut> {
  const heal = async () => {
    await run('docker', ['exec', node, 'sh', '-c', HEAL_SCRIPT]);
  };
  try {
    await run('docker', ['exec', node, 'sh', '-c', cutScript(spec)]);
  } catch (err) {
    await heal().catch(() => undefined);
    throw err;
  }
  return { node, at: Date.now(), heal };
}

/** Whether `node` can open a TCP connection to address:port within `seconds`. */
export async function canConnect(
  node: string,
  address: string,
  port: number,
  seconds = 3,
): Promise<boolean> {
  return run('docker', [
    'exec',
    node,
    'timeout',
    String(seconds),
    'bash',
    '-c',
    `exec 3<>/dev/tcp/${address}/${port}`,
  ]).then(
    () => true,
    () => false,
  );
}

interface CriContainerList {
  containers?: { id: string; createdAt?: string; labels?: Record<string, string> }[];
}

/**
 * The log of a pod's container as its node holds it (crictl, no API server involved: it
 * reads a node cut off from it), since `sinceMs`; the newest container of that name.
 */
export async function nodeContainerLog(
  node: string,
  namespace: string,
  pod: string,
  container: string,
  sinceMs: number,
): Promise<string> {
  const list = JSON.parse(
    await crictl(node, ['ps', '-a', '-o', 'json', '--name', `^${container}$`]),
  ) as CriContainerList;
  const mine = (list.containers ?? [])
    .filter(
      (c) =>
        c.labels?.['io.kubernetes.pod.name'] === pod &&
        c.labels['io.kubernetes.pod.namespace'] === namespace,
    )
    .sort((a, b) => Number(b.createdAt ?? 0) - Number(a.createdAt ?? 0));
  const id = mine[0]?.id;
  if (!id) throw new Error(`no ${container} container of ${namespace}/${pod} on ${node}`);
  const { stdout, stderr } = await run('docker', [
    'exec',
    node,
    'crictl',
    '--runtime-endpoint',
    CRI,
    'logs',
    '--timestamps',
    '--since',
    new Date(sinceMs).toISOString().replace(/\.\d+Z$/, 'Z'),
    id,
  ]);
  // The container's stdout and stderr streams, merged back in time order.
  return `${stdout}\n${stderr}`
    .split('\n')
    .filter((l) => l.trim() !== '')
    .sort()
    .join('\n');
}
