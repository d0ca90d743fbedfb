// scripts/setup.sh, npm start's and npm test's pre-script: with KUBECONFIG naming a cluster,
// `npm start` needs npm packages only, not the embedded control plane (minutes of Go builds).
// The build is made to fail at once (an empty cache folder, no module proxy), so a run that
// would build exits non-zero within seconds: the control case shows it does.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const exec = promisify(execFile);

async function setup(mode: string, env: Record<string, string>) {
  const scratch = mkdtempSync(join(tmpdir(), 'setup-script-'));
  const base = { ...process.env };
  delete base['KUBECONFIG'];
  delete base['KUBERNETES_SERVICE_HOST'];
  try {
    const { stdout } = await exec('bash', ['scripts/setup.sh', mode], {
      env: {
        ...base,
        SCALABLE_CACHE_DIR: join(scratch, 'cache'),
        GOPROXY: 'off',
        GOMODCACHE: join(scratch, 'gomod'),
        GOCACHE: join(scratch, 'gocache'),
        SCALABLE_SKIP_CLUSTER_BUILD: '',
        ...env,
      },
      timeout: 120_000,
    });
    return { code: 0, stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '' };
  }
}

describe('scripts/setup.sh', () => {
  it('start with KUBECONFIG: npm packages only, no control plane build', async () => {
    const r = await setup('start', { KUBECONFIG: '/nonexistent/kubeconfig' });
    expect(r).toEqual({
      code: 0,
      stdout: expect.stringContaining('setup: KUBECONFIG names the cluster: npm packages only'),
    });
  }, 150_000);

  it('start without KUBECONFIG, and test with it, build the control plane (the control)', async () => {
    for (const [mode, env] of [
      ['start', {}],
      ['test', { KUBECONFIG: '/nonexistent/kubeconfig' }],
    ] as const) {
      const r = await setup(mode, env);
      expect(r.code, `${mode} ${JSON.stringify(env)}: the build ran and failed`).not.toBe(0);
      expect(r.stdout).not.toContain('npm packages only');
    }
  }, 300_000);
});
