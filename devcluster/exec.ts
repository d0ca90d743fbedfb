// Running external commands (go, openssl, kubectl) with their output captured for errors.
import { spawn } from 'node:child_process';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Stream the command's stderr to ours (for long Go builds). */
  inheritStderr?: boolean;
  input?: string;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

export function run(
  cmd: string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [
        opts.input === undefined ? 'ignore' : 'pipe',
        'pipe',
        opts.inheritStderr ? 'inherit' : 'pipe',
      ],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve({ stdout, stderr });
      else
        reject(
          new Error(
            `${cmd} ${args.join(' ')} exited with ${code ?? signal}\n${stderr.slice(-4000)}${stdout.slice(-2000)}`,
          ),
        );
    });
    // A command may exit before reading all its input; that is its exit code's business.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input);
  });
}
