// The build of the control plane: idempotent, pinned, and derived from the real go.mod.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadAll } from 'js-yaml';
import { expect, it } from 'vitest';
import { stagingModules, renderGoMod } from '../../devcluster/gomod.ts';
import { buildDir, buildStampPath, stagesPath } from '../../devcluster/paths.ts';
import { BINARY_VERSIONS, VERSIONS, stagingVersion } from '../../devcluster/versions.ts';

const exec = promisify(execFile);

it('a second cluster:build is a no-op', async () => {
  const start = Date.now();
  const { stdout } = await exec('npx', ['tsx', 'devcluster/build.ts']);
  expect(stdout).toContain('up to date');
  expect(Date.now() - start).toBeLessThan(30_000);
  const stamp = JSON.parse(await readFile(buildStampPath(), 'utf8')) as { versions: unknown };
  expect(stamp.versions).toEqual(BINARY_VERSIONS);
});

it('replaces every staging module k8s.io/kubernetes requires, at its published version', async () => {
  const { stdout } = await exec('go', [
    'mod',
    'download',
    '-json',
    `k8s.io/kubernetes@${VERSIONS.kubernetes}`,
  ]);
  const info = JSON.parse(stdout) as { GoMod: string };
  const staging = stagingModules(await readFile(info.GoMod, 'utf8'));
  expect(staging).toEqual(
    expect.arrayContaining(['k8s.io/api', 'k8s.io/client-go', 'k8s.io/kubectl']),
  );
  // Replaced in k8s.io/kubernetes but not required by it, and not published: must be left out.
  expect(staging).not.toContain('k8s.io/sample-cli-plugin');
  const wrapper = await readFile(join(buildDir(), 'src', 'kubernetes', 'go.mod'), 'utf8');
  for (const m of staging)
    expect(wrapper).toContain(`${m} => ${m} ${stagingVersion(VERSIONS.kubernetes)}`);
  expect(renderGoMod({ module: 'x', go: '1.26.0', require: { a: 'v1' } })).toBe(
    'module x\n\ngo 1.26.0\n\nrequire (\n\ta v1\n)\n',
  );
});

it('takes the five kwok stages from the kwok module', async () => {
  const docs = loadAll(await readFile(stagesPath(), 'utf8')) as {
    kind: string;
    metadata: { name: string };
  }[];
  expect(docs.map((d) => `${d.kind}/${d.metadata.name}`)).toEqual([
    'Stage/node-initialize',
    'Stage/node-heartbeat',
    'Stage/pod-ready',
    'Stage/pod-complete',
    'Stage/pod-delete',
  ]);
});
