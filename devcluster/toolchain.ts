// Builds every binary of the control plane from the Go module proxy into the cache, once.
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { run } from './exec.ts';
import {
  KEPT_CONSTANTS_FILE,
  KEPT_CONSTANTS_NAME,
  droppedScalerFiles,
  trimScalersBuilder,
} from './keda-trim.ts';
import { withLock } from './lock.ts';
import { kubernetesVersionLdflags, renderGoMod, stagingModules } from './gomod.ts';
import {
  BINARIES,
  PROMETHEUS_BINARIES,
  binDir,
  binPath,
  buildDir,
  buildStampPath,
  kubeScoreBinPath,
  kubeScoreDir,
  prometheusBinPath,
  prometheusDir,
  stagesPath,
  versitygwBinPath,
  versitygwDir,
  type Binary,
} from './paths.ts';
import {
  ADDON_BINARY_VERSIONS,
  BINARY_VERSIONS,
  KUBE_SCORE,
  PROMETHEUS,
  VERSITYGW,
  stagingVersion,
} from './versions.ts';

export type Log = (message: string) => void;

interface ModuleInfo {
  Path: string;
  Version: string;
  Dir?: string;
  GoMod?: string;
  /** Path of the proxy's .info file, which holds the release's Time. */
  Info?: string;
  Error?: string;
}

// GOTOOLCHAIN=local: never fetch another Go; GOFLAGS keeps the user's (e.g. -buildvcs=false).
export function goEnv(): NodeJS.ProcessEnv {
  return { ...process.env, GOTOOLCHAIN: 'local', GO111MODULE: 'on', CGO_ENABLED: '0' };
}

export async function downloadModule(spec: string): Promise<ModuleInfo> {
  const { stdout } = await run('go', ['mod', 'download', '-json', spec], { env: goEnv() });
  const info = JSON.parse(stdout) as ModuleInfo;
  if (info.Error) throw new Error(`go mod download ${spec}: ${info.Error}`);
  return info;
}

export interface Target {
  name: string;
  version: string;
  /** binary name -> Go package */
  packages: Partial<Record<string, string>>;
  /** Either a wrapper module that requires the command's module ... */
  goMod?: () => Promise<string>;
  /** ... or a prepared copy of the module itself, built as the main module. */
  sourceTree?: (dir: string) => Promise<void>;
  ldflags: () => Promise<string[]>;
  tags?: string;
  /** Compile at the lowest priority: a big build that must not starve tests beside it. */
  nice?: boolean;
  /**
   * A wrapper main package (file name -> text) written beside go.mod: the module's own main
   * with imports left out (e.g. cloud plugins). Its modules are resolved with `go get` of
   * these module@version requirements and `go mod tidy`; the packages then name the wrapper
   * itself (".").
   */
  sources?: () => Promise<{ files: Readonly<Record<string, string>>; get: readonly string[] }>;
  /** Extra environment (e.g. CGO_ENABLED=1 for a C-backed build). */
  env?: Readonly<Record<string, string>>;
}

export const GO_DIRECTIVE = '1.26.0';

const KUBERNETES_TAGS = 'selinux,notest';

async function kubernetesGoMod(): Promise<string> {
  const k8s = BINARY_VERSIONS.kubernetes;
  const info = await downloadModule(`k8s.io/kubernetes@${k8s}`);
  if (!info.GoMod) throw new Error('no go.mod for k8s.io/kubernetes');
  const staging = stagingModules(await readFile(info.GoMod, 'utf8'));
  const published = stagingVersion(k8s);
  return renderGoMod({
    module: 'devcluster.local/kubernetes',
    go: GO_DIRECTIVE,
    require: { 'k8s.io/kubernetes': k8s },
    replace: Object.fromEntries(staging.map((m) => [m, published])),
  });
}

async function kubernetesLdflags(): Promise<string[]> {
  const k8s = BINARY_VERSIONS.kubernetes;
  const info = await downloadModule(`k8s.io/kubernetes@${k8s}`);
  const time = info.Info
    ? (JSON.parse(await readFile(info.Info, 'utf8')) as { Time?: string }).Time
    : undefined;
  return kubernetesVersionLdflags(k8s, time ?? '1970-01-01T00:00:00Z');
}

/**
 * The node's Kubernetes binaries (kind e2e), from the same wrapper module, version and flags
 * as the control plane's, into the same bin folder: the shared packages come from the build
 * cache, so one Kubernetes version is compiled once. Not part of BINARIES: only the kind
 * e2e suite asks for them (ensureNodeBinaries).
 */
export function kubernetesNodeTarget(): Target {
  return {
    name: 'kubernetes',
    version: BINARY_VERSIONS.kubernetes,
    packages: {
      kubelet: 'k8s.io/kubernetes/cmd/kubelet',
      kubeadm: 'k8s.io/kubernetes/cmd/kubeadm',
      'kube-proxy': 'k8s.io/kubernetes/cmd/kube-proxy',
    },
    tags: KUBERNETES_TAGS,
    goMod: kubernetesGoMod,
    ldflags: kubernetesLdflags,
  };
}

function targets(): Target[] {
  const k8s = BINARY_VERSIONS.kubernetes;
  return [
    {
      name: 'etcd',
      version: BINARY_VERSIONS.etcd,
      packages: { etcd: 'go.etcd.io/etcd/server/v3' },
      // etcd's server module replaces its siblings with ../api etc.; as a dependency those
      // replaces are ignored and the published siblings at the same version are used.
      goMod: async () =>
        renderGoMod({ module: 'devcluster.local/etcd', go: GO_DIRECTIVE, require: {} }),
      ldflags: async () => [],
    },
    {
      name: 'kwok',
      version: BINARY_VERSIONS.kwok,
      packages: { kwok: 'sigs.k8s.io/kwok/cmd/kwok' },
      goMod: async () =>
        renderGoMod({ module: 'devcluster.local/kwok', go: GO_DIRECTIVE, require: {} }),
      ldflags: async () => [],
    },
    {
      name: 'helm',
      version: BINARY_VERSIONS.helm,
      packages: { helm: 'helm.sh/helm/v3/cmd/helm' },
      goMod: async () =>
        renderGoMod({ module: 'devcluster.local/helm', go: GO_DIRECTIVE, require: {} }),
      ldflags: async () => [
        `-X helm.sh/helm/v3/internal/version.version=${BINARY_VERSIONS.helm}`,
        '-X helm.sh/helm/v3/internal/version.gitTreeState=clean',
      ],
    },
    {
      name: 'kubernetes',
      version: k8s,
      packages: {
        'kube-apiserver': 'k8s.io/kubernetes/cmd/kube-apiserver',
        'kube-controller-manager': 'k8s.io/kubernetes/cmd/kube-controller-manager',
        'kube-scheduler': 'k8s.io/kubernetes/cmd/kube-scheduler',
        kubectl: 'k8s.io/kubernetes/cmd/kubectl',
      },
      tags: KUBERNETES_TAGS,
      goMod: kubernetesGoMod,
      ldflags: kubernetesLdflags,
    },
    {
      // Only the operator (it alone scales 0 <-> 1): the devcluster's tests need no more.
      // KEDA's metrics adapter, which feeds the HPA between 1 and max, is built for the kind
      // suite only, from the same tree (test/e2e/support/scale-toolchain.ts). Only the
      // scalers we render are compiled in (keda-trim.ts), built in a trimmed copy of the
      // module, whose own go.mod (with its replace directives) then governs the build
      // exactly as upstream's does.
      name: 'keda',
      version: ADDON_BINARY_VERSIONS['keda-operator'],
      packages: { 'keda-operator': './cmd/operator' },
      nice: true,
      sourceTree: trimmedKedaTree,
      ldflags: kedaLdflags,
    },
  ];
}

/** As KEDA's Makefile stamps its binaries (the version; no git commit in a module zip). */
export const kedaLdflags = async (): Promise<string[]> => [
  `-X github.com/kedacore/keda/v2/version.Version=${ADDON_BINARY_VERSIONS['keda-operator']}`,
];

/**
 * A writable copy of KEDA's module with only the scalers we render (keda-trim.ts). Every
 * KEDA binary we build (the operator, its metrics adapter) is built from such a copy: the
 * same sources and go.mod, so the Go build cache compiles their shared packages once.
 */
export async function trimmedKedaTree(dir: string): Promise<void> {
  const info = await downloadModule(
    `github.com/kedacore/keda/v2@${ADDON_BINARY_VERSIONS['keda-operator']}`,
  );
  if (!info.Dir) throw new Error('go mod download gave no directory for KEDA');
  // The module cache is read-only; the copy must not be.
  await run('cp', ['-r', '--no-preserve=mode', info.Dir, dir]);
  const builder = join(dir, 'pkg', 'scaling', 'scalers_builder.go');
  await writeFile(builder, trimScalersBuilder(await readFile(builder, 'utf8')));
  const scalers = join(dir, 'pkg', 'scalers');
  const files = (await readdir(scalers, { withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => e.name);
  await Promise.all(droppedScalerFiles(files).map((f) => rm(join(scalers, f))));
  await writeFile(join(scalers, KEPT_CONSTANTS_NAME), KEPT_CONSTANTS_FILE);
}

/**
 * promtool and prometheus at a pinned release, without the service-discovery plugins: every
 * cloud SDK is behind a build tag (plugins/plugin_*.go), and the tests scrape static targets.
 */
function prometheusTarget(): Target {
  return {
    name: 'prometheus',
    version: PROMETHEUS.version,
    packages: {
      promtool: `${PROMETHEUS.module}/cmd/promtool`,
      prometheus: `${PROMETHEUS.module}/cmd/prometheus`,
    },
    tags: PROMETHEUS.tags,
    goMod: async () =>
      renderGoMod({ module: 'devcluster.local/prometheus', go: GO_DIRECTIVE, require: {} }),
    ldflags: async () =>
      Object.entries({ Version: PROMETHEUS.release, Branch: 'HEAD', BuildUser: 'devcluster' }).map(
        ([k, v]) => `-X github.com/prometheus/common/version.${k}=${v}`,
      ),
  };
}

export const isPrometheusBuilt = (): boolean =>
  PROMETHEUS_BINARIES.every((b) => existsSync(prometheusBinPath(b)));

/** Builds promtool and prometheus into their own cache folder, once. */
export async function ensurePrometheus(log: Log = console.log): Promise<void> {
  if (isPrometheusBuilt()) {
    log(`prometheus ${PROMETHEUS.release}: up to date`);
    return;
  }
  const root = prometheusDir();
  await mkdir(root, { recursive: true });
  await withLock(
    join(root, 'build.lock'),
    async () => {
      if (isPrometheusBuilt()) return;
      await buildTarget(prometheusTarget(), log, {
        root,
        out: (b) => prometheusBinPath(b as (typeof PROMETHEUS_BINARIES)[number]),
      });
      await rm(join(root, 'bin.tmp'), { recursive: true, force: true });
    },
    3600_000,
  );
}

/** kube-score: one small package (k8s.io/api, apimachinery, yaml), no build tags. */
function kubeScoreTarget(): Target {
  return {
    name: 'kube-score',
    version: KUBE_SCORE.version,
    packages: { 'kube-score': `${KUBE_SCORE.module}/cmd/kube-score` },
    goMod: async () =>
      renderGoMod({ module: 'devcluster.local/kube-score', go: GO_DIRECTIVE, require: {} }),
    ldflags: async () => [`-X main.version=${KUBE_SCORE.version}`],
  };
}

export const isKubeScoreBuilt = (): boolean => existsSync(kubeScoreBinPath());

/** Builds kube-score into its own cache folder, once. */
export async function ensureKubeScore(log: Log = console.log): Promise<void> {
  if (isKubeScoreBuilt()) {
    log(`kube-score ${KUBE_SCORE.version}: up to date`);
    return;
  }
  const root = kubeScoreDir();
  await mkdir(root, { recursive: true });
  await withLock(
    join(root, 'build.lock'),
    async () => {
      if (isKubeScoreBuilt()) return;
      await buildTarget(kubeScoreTarget(), log, { root, out: () => kubeScoreBinPath() });
      await rm(join(root, 'bin.tmp'), { recursive: true, force: true });
    },
    3600_000,
  );
}

/**
 * versitygw: its command only (cmd/versitygw; it links its own test subcommand, which cannot
 * be left out without patching its main), nothing else of the module.
 */
function versitygwTarget(): Target {
  return {
    name: 'versitygw',
    version: VERSITYGW.version,
    packages: { versitygw: `${VERSITYGW.module}/cmd/versitygw` },
    goMod: async () =>
      renderGoMod({ module: 'devcluster.local/versitygw', go: GO_DIRECTIVE, require: {} }),
    ldflags: async () => [`-X main.Version=${VERSITYGW.version}`],
  };
}

export const isVersitygwBuilt = (): boolean => existsSync(versitygwBinPath());

/** Builds versitygw into its own cache folder, once. */
export async function ensureVersitygw(log: Log = console.log): Promise<void> {
  if (isVersitygwBuilt()) {
    log(`versitygw ${VERSITYGW.version}: up to date`);
    return;
  }
  const root = versitygwDir();
  await mkdir(root, { recursive: true });
  await withLock(
    join(root, 'build.lock'),
    async () => {
      if (isVersitygwBuilt()) return;
      await buildTarget(versitygwTarget(), log, { root, out: () => versitygwBinPath() });
      await rm(join(root, 'bin.tmp'), { recursive: true, force: true });
    },
    3600_000,
  );
}

function elapsed(start: number): string {
  return `${((Date.now() - start) / 1000).toFixed(0)}s`;
}

/** Where a target builds: its wrapper module under root/src, binaries where `out` says. */
export interface Place {
  readonly root: string;
  readonly out: (bin: string) => string;
}

const CONTROL_PLANE: Place = { root: '', out: (b) => binPath(b as Binary) };

export async function buildTarget(
  t: Target,
  log: Log,
  place: Place = CONTROL_PLANE,
): Promise<void> {
  const bins = Object.keys(t.packages);
  const root = place.root || buildDir();
  if (bins.every((b) => existsSync(place.out(b)))) {
    log(`${t.name} ${t.version}: already built`);
    return;
  }
  const start = Date.now();
  const dir = join(root, 'src', t.name);
  const pkgs = Object.values(t.packages);
  const env = { ...goEnv(), ...t.env };
  const go = (args: string[]): [string, string[]] =>
    t.nice ? ['nice', ['-n', '19', 'go', ...args]] : ['go', args];
  if (t.sourceTree) {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dirname(dir), { recursive: true });
    log(`${t.name} ${t.version}: preparing its source tree`);
    await t.sourceTree(dir);
  } else if (t.goMod) {
    await mkdir(dir, { recursive: true });
    await rm(join(dir, 'go.sum'), { force: true });
    await writeFile(join(dir, 'go.mod'), await t.goMod());
    const sources = await t.sources?.();
    if (sources) {
      for (const [file, text] of Object.entries(sources.files))
        await writeFile(join(dir, file), text);
      log(`${t.name} ${t.version}: resolving modules (go mod tidy)`);
      // A require, not `go get`: go get would also fetch what the module's own root package
      // imports (e.g. flannel's cloud backends), which the wrapper leaves out.
      await run(...go(['mod', 'edit', ...sources.get.map((m) => `-require=${m}`)]), {
        cwd: dir,
        env,
      });
      await run(...go(['mod', 'tidy']), { cwd: dir, env });
    } else {
      log(`${t.name} ${t.version}: resolving modules (go get -tool)`);
      await run(...go(['get', '-tool', ...pkgs.map((p) => `${p}@${t.version}`)]), {
        cwd: dir,
        env,
      });
    }
  } else throw new Error(`${t.name}: neither a wrapper go.mod nor a source tree`);
  log(`${t.name} ${t.version}: compiling ${bins.join(', ')} (cold: minutes)`);
  const tick = setInterval(() => log(`${t.name}: still compiling (${elapsed(start)})`), 60_000);
  const tmp = join(root, 'bin.tmp', t.name);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    for (const bin of bins) {
      // One `go build` per binary keeps the output name explicit; the shared build cache
      // makes the later ones cheap.
      const args = [
        'build',
        '-trimpath',
        '-ldflags',
        ['-s', '-w', ...(await t.ldflags())].join(' '),
      ];
      if (t.tags) args.push('-tags', t.tags);
      args.push('-o', join(tmp, bin), t.packages[bin] ?? '');
      await run(...go(args), { cwd: dir, env });
      await mkdir(dirname(place.out(bin)), { recursive: true });
      await rename(join(tmp, bin), place.out(bin));
      log(`${t.name}: ${bin} built (${elapsed(start)})`);
    }
  } finally {
    clearInterval(tick);
  }
}

/** The stages kwok needs for nodes that become Ready and pods that run, finish and go away. */
const KWOK_STAGES = [
  'node/fast/node-initialize.yaml',
  'node/heartbeat/node-heartbeat.yaml',
  'pod/fast/pod-ready.yaml',
  'pod/fast/pod-complete.yaml',
  'pod/fast/pod-delete.yaml',
];

async function copyKwokStages(log: Log): Promise<void> {
  const kwok = await downloadModule(`sigs.k8s.io/kwok@${BINARY_VERSIONS.kwok}`);
  const docs = await Promise.all(
    KWOK_STAGES.map((f) => readFile(join(kwok.Dir ?? '', 'kustomize/stage', f), 'utf8')),
  );
  await writeFile(stagesPath(), docs.map((d) => d.trim()).join('\n---\n') + '\n');
  log(`kwok stages: ${KWOK_STAGES.length}`);
}

export function isBuilt(): boolean {
  return (
    existsSync(buildStampPath()) &&
    existsSync(stagesPath()) &&
    BINARIES.every((b) => existsSync(binPath(b)))
  );
}

/** Builds whatever is missing; a no-op when the cache already holds this set of versions. */
export async function ensureBuilt(log: Log = console.log): Promise<void> {
  if (isBuilt()) {
    log(`up to date: ${binDir()}`);
    return;
  }
  await mkdir(buildDir(), { recursive: true });
  // Two builds at once would fight over the same files; the second waits, then finds it done.
  await withLock(join(buildDir(), 'build.lock'), () => buildUnlocked(log), 3 * 3600_000);
}

async function buildUnlocked(log: Log): Promise<void> {
  if (isBuilt()) return;
  const start = Date.now();
  await copyKwokStages(log);
  for (const t of targets()) await buildTarget(t, log);
  await rm(join(buildDir(), 'bin.tmp'), { recursive: true, force: true });
  await writeFile(
    buildStampPath(),
    JSON.stringify({ versions: BINARY_VERSIONS, builtAt: new Date().toISOString() }, null, 2) +
      '\n',
  );
  log(`built in ${elapsed(start)}: ${binDir()}`);
}
