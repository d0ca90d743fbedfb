// `npm run sdk:pack`: the installable @scalable-dev/sdk. The workspace package (package.json
// beside this file) stays TypeScript for the repository's own users (the sample app runs it
// with Node's type stripping); what an app outside the repository installs is built here:
// JavaScript and declarations compiled by tsc (sdk/tsconfig.build.json), a package.json of
// its own whose `exports` name them, the README and the LICENSE, packed by `npm pack` into
// dist/sdk/scalable-dev-sdk-<version>.tgz. Prints the tarball's path.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const SDK = import.meta.dirname;
const REPO = join(SDK, '..');
/** Where the package is assembled, and where the tarball lands (the repository's dist/). */
export const OUT_DIR = join(REPO, 'dist', 'sdk');
export const PACKAGE_DIR = join(OUT_DIR, 'package');

interface Manifest {
  name: string;
  version: string;
  description: string;
  license: string;
  engines: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies?: Record<string, string>;
}

const entry = (base: string) => ({
  types: `./dist/${base}.d.ts`,
  default: `./dist/${base}.js`,
});

/** The published manifest: compiled entry points, runtime dependencies only. */
export function publishedManifest(src: Manifest): Record<string, unknown> {
  // The declarations name types of pg and express-session: TypeScript users install their
  // @types packages (optional peers: plain JavaScript needs none), at the versions we build with.
  const typePeers = Object.fromEntries(
    Object.entries(src.devDependencies ?? {}).filter(([n]) => n.startsWith('@types/')),
  );
  return {
    name: src.name,
    version: src.version,
    description: src.description,
    license: src.license,
    type: 'module',
    engines: { node: '>=22' },
    main: './dist/index.js',
    types: './dist/index.d.ts',
    exports: { '.': entry('index'), './contract': entry('contract/index') },
    files: ['dist', 'README.md', 'LICENSE'],
    sideEffects: false,
    dependencies: src.dependencies,
    peerDependencies: typePeers,
    peerDependenciesMeta: Object.fromEntries(
      Object.keys(typePeers).map((n) => [n, { optional: true }]),
    ),
  };
}

/** Builds and packs the SDK; returns the tarball's path. */
export function buildSdkPackage(): string {
  rmSync(PACKAGE_DIR, { recursive: true, force: true });
  mkdirSync(PACKAGE_DIR, { recursive: true });
  execFileSync(
    process.execPath,
    [
      join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-p',
      join(SDK, 'tsconfig.build.json'),
    ],
    { stdio: 'inherit' },
  );
  const src = JSON.parse(readFileSync(join(SDK, 'package.json'), 'utf8')) as Manifest;
  writeFileSync(
    join(PACKAGE_DIR, 'package.json'),
    `${JSON.stringify(publishedManifest(src), null, 2)}\n`,
  );
  copyFileSync(join(SDK, 'README.md'), join(PACKAGE_DIR, 'README.md'));
  copyFileSync(join(REPO, 'LICENSE'), join(PACKAGE_DIR, 'LICENSE'));
  const out = execFileSync(
    'npm',
    ['pack', '--json', '--pack-destination', OUT_DIR, '--ignore-scripts'],
    { cwd: PACKAGE_DIR, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const [packed] = JSON.parse(out) as { filename: string }[];
  if (!packed) throw new Error('npm pack named no tarball');
  return join(OUT_DIR, packed.filename);
}

if (import.meta.filename === process.argv[1]) console.log(buildSdkPackage());
