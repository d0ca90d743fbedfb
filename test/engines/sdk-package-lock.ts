// A lock file for a scratch app that depends on the packed SDK alone, cut from the
// repository's package-lock.json: the SDK's runtime dependencies and theirs, at the versions
// and integrities the repository installed. With it `npm ci --offline` installs from npm's
// local cache (where setup's `npm install` put every tarball, keyed by integrity): no
// registry, whose package documents a plain `npm install` would have to fetch.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  link?: boolean;
  dev?: boolean;
  optional?: boolean;
  devOptional?: boolean;
  peer?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  [k: string]: unknown;
}

interface Lock {
  lockfileVersion: number;
  packages: Record<string, LockEntry>;
}

const REPO = join(import.meta.dirname, '..', '..');

/** Where Node would find `dep` from the package at lock path `from` (nearest node_modules up). */
function resolveIn(lock: Lock, from: string, dep: string): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = dir === '' ? `node_modules/${dep}` : `${dir}/node_modules/${dep}`;
    if (lock.packages[candidate]) return candidate;
    if (dir === '') return undefined;
    const up = dir.lastIndexOf('/node_modules/');
    dir = up < 0 ? '' : dir.slice(0, up);
  }
}

/**
 * The scratch app's lock: `tarball` (a file: path and its sha512 integrity) as
 * `@scalable-dev/sdk`, and every package the SDK needs at run time, at the lock paths the
 * repository has them (the SDK's own nested ones moved up to the root, a clash refused).
 */
export function scratchLock(
  appName: string,
  tarball: {
    readonly spec: string;
    readonly integrity: string;
    /** The packed manifest: its dependencies are what gets installed, nothing more. */
    readonly manifest: { readonly version: string; readonly dependencies?: Record<string, string> };
  },
): Record<string, unknown> {
  const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as Lock;
  if (!lock.packages['sdk']) throw new Error('package-lock.json has no sdk workspace');
  const dependencies = tarball.manifest.dependencies ?? {};
  const out: Record<string, LockEntry> = {};
  const moved = (path: string) => (path.startsWith('sdk/') ? path.slice('sdk/'.length) : path);
  const visit = (from: string, deps: Record<string, string>, optional: boolean) => {
    for (const dep of Object.keys(deps)) {
      const at = resolveIn(lock, from, dep);
      if (!at) {
        if (optional) continue; // an optional dependency this platform did not install
        throw new Error(`${dep} (needed by ${from}) is not in package-lock.json`);
      }
      const target = moved(at);
      const entry = lock.packages[at] ?? {};
      if (out[target]) {
        if (out[target].version !== entry.version)
          throw new Error(
            `${target}: two versions needed (${out[target].version}, ${entry.version})`,
          );
        continue;
      }
      // Development flags are the repository's view: here everything is a runtime dependency.
      const kept: LockEntry = { ...entry };
      delete kept.dev;
      delete kept.devOptional;
      delete kept.peer;
      out[target] = kept;
      visit(at, entry.dependencies ?? {}, false);
      visit(at, entry.optionalDependencies ?? {}, true);
    }
  };
  // Resolved as the workspace resolves them: the versions the repository tests with.
  visit('sdk', dependencies, false);
  return {
    name: appName,
    version: '1.0.0',
    lockfileVersion: 3,
    requires: true,
    packages: {
      '': { name: appName, version: '1.0.0', dependencies: { '@scalable-dev/sdk': tarball.spec } },
      'node_modules/@scalable-dev/sdk': {
        version: tarball.manifest.version,
        resolved: tarball.spec,
        integrity: tarball.integrity,
        dependencies,
      },
      ...Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b))),
    },
  };
}
