// The Pod Security Standard "restricted" profile (baseline + restricted checks), as the
// PodSecurity admission plugin evaluates it, for pod specs the builders render.
type PodSpec = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ALLOWED_VOLUMES = [
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
];

export function restrictedViolations(spec: PodSpec): string[] {
  const v: string[] = [];
  const psc = spec['securityContext'] ?? {};
  const containers = [
    ...(spec['initContainers'] ?? []),
    ...(spec['containers'] ?? []),
    ...(spec['ephemeralContainers'] ?? []),
  ];
  if (spec['hostNetwork'] || spec['hostPID'] || spec['hostIPC']) v.push('host namespaces');
  for (const vol of spec['volumes'] ?? []) {
    const type = Object.keys(vol).find((k) => k !== 'name');
    if (!type || !ALLOWED_VOLUMES.includes(type)) v.push(`volume ${vol.name} of type ${type}`);
  }
  for (const s of psc['sysctls'] ?? []) v.push(`sysctl ${s.name}`);
  if (psc['runAsUser'] === 0) v.push('pod runAsUser 0');
  const podSeccomp = psc['seccompProfile']?.type;
  for (const c of containers) {
    const sc = c['securityContext'] ?? {};
    const n = `container ${c.name}`;
    if (sc['privileged']) v.push(`${n}: privileged`);
    if (sc['allowPrivilegeEscalation'] !== false) v.push(`${n}: allowPrivilegeEscalation != false`);
    if (!(
      sc['runAsNonRoot'] === true ||
      (psc['runAsNonRoot'] === true && sc['runAsNonRoot'] !== false)
    )) {
      v.push(`${n}: runAsNonRoot != true`);
    }
    if (sc['runAsUser'] === 0) v.push(`${n}: runAsUser 0`);
    const seccomp = sc['seccompProfile']?.type ?? podSeccomp;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') v.push(`${n}: seccompProfile`);
    const caps = sc['capabilities'] ?? {};
    if (!(caps['drop'] ?? []).includes('ALL')) v.push(`${n}: capabilities not dropping ALL`);
    for (const add of caps['add'] ?? [])
      if (add !== 'NET_BIND_SERVICE') v.push(`${n}: adds ${add}`);
    for (const p of c['ports'] ?? []) if (p.hostPort) v.push(`${n}: hostPort`);
    if (sc['procMount'] && sc['procMount'] !== 'Default') v.push(`${n}: procMount`);
  }
  return v;
}

/** Pod specs inside any workload kind. */
export function podSpecsOf(obj: PodSpec): PodSpec[] {
  switch (obj['kind']) {
    case 'Pod':
      return [obj['spec']];
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet':
    case 'Job':
      return [obj['spec']['template']['spec']];
    case 'CronJob':
      return [obj['spec']['jobTemplate']['spec']['template']['spec']];
    default:
      return [];
  }
}
