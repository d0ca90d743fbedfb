// A bad SCALABLE_* value stops the operator at start, non-zero, naming the variable, before it
// sends a single request: the process is spawned as the chart runs it, against the test cluster.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kubeconfig } from './operator-harness.ts';

const REPO = join(import.meta.dirname, '..', '..');

function runOperator(env: Record<string, string>): Promise<{ code: number | null; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'operator', 'main.ts')], {
      cwd: REPO,
      env: { ...process.env, KUBECONFIG: kubeconfig(), SCALABLE_HTTP_HOST: '127.0.0.1', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, err });
    });
  });
}

describe('operator settings', () => {
  it.each([
    ['SCALABLE_WORKERS', ''],
    ['SCALABLE_RESYNC_SECONDS', 'often'],
    ['SCALABLE_API_QPS', '0'],
    ['SCALABLE_WATCH_NAMESPACES', 'Shop'],
  ])('exits non-zero on %s=%j, naming it', async (name, value) => {
    const { code, err } = await runOperator({ [name]: value });
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(err).toContain(`${name}:`);
    // Stopped before anything started: no log line of a running operator.
    expect(err).not.toContain('serving /metrics');
  });
});
