// An app outside this repository with the SDK installed from its `npm pack` tarball
// (sdk/build.ts): `npm ci --offline` from a lock written from the packed manifest, so the
// dependencies come from npm's local cache, no registry. Scripts run in it with plain Node 22
// ESM (no TypeScript, no loader): only the scratch app's own node_modules resolve.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PACKAGE_DIR, buildSdkPackage } from '../../sdk/build.ts';
import { scratchLock } from './sdk-package-lock.ts';

export interface ScratchApp {
  readonly dir: string;
  readonly tarball: string;
  /** Runs `script` as main.mjs in the app with only `env` (and PATH); output is stdout+stderr. */
  run(script: string, env: Record<string, string>): Promise<{ code: number | null; out: string }>;
  remove(): void;
}

export function installScratchApp(): ScratchApp {
  const tarball = buildSdkPackage();
  const dir = mkdtempSync(join(tmpdir(), 'sdk-app-'));
  const spec = `file:${tarball}`;
  const manifest = JSON.parse(readFileSync(join(PACKAGE_DIR, 'package.json'), 'utf8')) as {
    version: string;
    dependencies?: Record<string, string>;
  };
  const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({
      name: 'scratch-app',
      version: '1.0.0',
      private: true,
      type: 'module',
      dependencies: { '@scalable-dev/sdk': spec },
    }),
  );
  writeFileSync(
    join(dir, 'package-lock.json'),
    JSON.stringify(scratchLock('scratch-app', { spec, integrity, manifest }), null, 2),
  );
  execFileSync('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--ignore-scripts'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 300_000,
  });
  return {
    dir,
    tarball,
    run(script, env) {
      writeFileSync(join(dir, 'main.mjs'), script);
      return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ['main.mjs'], {
          cwd: dir,
          env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, out }));
      });
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
