// Wrapper Go modules: the only way to build these commands at pinned versions from the module
// proxy, because their own go.mod files use relative replace directives that Go ignores (or
// rejects) outside their repositories.

export interface GoModSpec {
  module: string;
  go: string;
  require: Readonly<Record<string, string>>;
  replace?: Readonly<Record<string, string>>;
}

export function renderGoMod(spec: GoModSpec): string {
  const lines = [`module ${spec.module}`, '', `go ${spec.go}`, ''];
  const req = Object.entries(spec.require);
  if (req.length > 0) lines.push('require (', ...req.map(([m, v]) => `\t${m} ${v}`), ')', '');
  const rep = Object.entries(spec.replace ?? {});
  if (rep.length > 0)
    lines.push('replace (', ...rep.map(([m, v]) => `\t${m} => ${m} ${v}`), ')', '');
  return lines.join('\n');
}

/**
 * The k8s.io/<staging> modules that k8s.io/kubernetes requires at v0.0.0 and points at its own
 * ./staging tree: each must be replaced with its published release for the build to resolve.
 */
export function stagingModules(kubernetesGoMod: string): string[] {
  const required = new Set(
    [...kubernetesGoMod.matchAll(/^\s*(k8s\.io\/[\w.-]+)\s+v0\.0\.0\s*$/gm)].map((m) => m[1] ?? ''),
  );
  const replaced = [
    ...kubernetesGoMod.matchAll(/^\s*(k8s\.io\/[\w.-]+)\s+=>\s+\.\/staging\//gm),
  ].map((m) => m[1] ?? '');
  return replaced.filter((m) => required.has(m)).sort();
}

/** -X flags that make /version, `kubectl version` and the components report a real release. */
export function kubernetesVersionLdflags(version: string, buildDate: string): string[] {
  const match = /^v(\d+)\.(\d+)\./.exec(version);
  if (!match) throw new Error(`not a Kubernetes version: ${version}`);
  const values: Record<string, string> = {
    gitVersion: version,
    gitMajor: match[1] ?? '',
    gitMinor: match[2] ?? '',
    gitTreeState: 'clean',
    // The module proxy does not say which commit a release is; empty beats "$Format:%H$".
    gitCommit: '',
    buildDate,
  };
  return ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version'].flatMap((pkg) =>
    Object.entries(values).map(([k, v]) => `-X ${pkg}.${k}=${v}`),
  );
}
