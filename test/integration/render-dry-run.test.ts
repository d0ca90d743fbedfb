// Everything `scalable render` produces for the examples, judged by the API server's own
// schemas and the upstream CRDs: `kubectl apply --server-side --dry-run=server`.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { binPath } from '../../devcluster/index.ts';
import {
  clients,
  printLogDirOnFailure,
  testKubeconfig,
  uniqueName,
} from '../../devcluster/testing.ts';

const exec = promisify(execFile);

function run(
  cmd: string,
  args: string[],
  input?: string,
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      err ? reject(Object.assign(err, { stdout, stderr })) : resolve({ stdout, stderr }),
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

let namespace = '';

beforeAll(async () => {
  namespace = uniqueName('render');
  const { core } = clients();
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await core.createNamespace({ body: { metadata: { name: 'shop' } } }).catch(() => undefined);
});

describe('rendered objects are accepted by the API server', () => {
  printLogDirOnFailure();

  it.each(['minimal', 'full'])('%s example', async (name) => {
    const { stdout: rendered } = await exec('npx', [
      'tsx',
      'operator/cli/bin.ts',
      'render',
      '-f',
      `manifests/examples/${name}.yaml`,
      '-n',
      namespace,
    ]);
    const kinds = rendered.match(/^kind: .*/gm) ?? [];
    expect(kinds.length).toBeGreaterThan(5);
    const { stdout } = await run(
      binPath('kubectl'),
      [
        `--kubeconfig=${testKubeconfig()}`,
        'apply',
        '--server-side',
        '--dry-run=server',
        '--field-manager=scalable-operator',
        '-f',
        '-',
      ],
      rendered,
    );
    // One line per object, each "(server dry run)".
    expect(stdout.trim().split('\n')).toHaveLength(kinds.length);
    expect(stdout).not.toMatch(/error/i);
  });
});
