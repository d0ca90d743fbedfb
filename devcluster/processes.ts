// Long-running components: started detached with their output in a log file, tracked by pid.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Started {
  name: string;
  pid: number;
  bin: string;
}

/**
 * Starts bin detached (its own process group, so a Ctrl-C of `npm run cluster:up` leaves it
 * running) with stdout and stderr appended to logFile.
 */
export function startProcess(
  name: string,
  bin: string,
  args: readonly string[],
  logFile: string,
  env: NodeJS.ProcessEnv = process.env,
): Started {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(bin, args, { detached: true, stdio: ['ignore', fd, fd], env });
    if (child.pid === undefined) throw new Error(`could not start ${bin}`);
    child.unref();
    // Reap it if it exits while we run, so it does not linger as a zombie that looks alive.
    child.on('exit', () => undefined);
    child.on('error', () => undefined);
    return { name, pid: child.pid, bin };
  } finally {
    closeSync(fd);
  }
}

/** True when pid is a live (not zombie) process running bin: pids get reused. */
export function isRunning(pid: number, bin: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the parenthesised command name, which may itself hold spaces.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
    const argv0 = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
    return argv0 === bin;
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after graceMs; resolves when the process is gone. */
export async function stopProcess(p: Started, graceMs = 10_000): Promise<void> {
  if (!isRunning(p.pid, p.bin)) return;
  process.kill(p.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isRunning(p.pid, p.bin)) {
    if (Date.now() > deadline) {
      process.kill(p.pid, 'SIGKILL');
      await sleep(100);
      return;
    }
    await sleep(50);
  }
}

/** Resident memory of pid in bytes (0 when it is gone). */
export function rssBytes(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kb ? Number(kb) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Peak resident memory (VmHWM) of pid in bytes. */
export function peakRssBytes(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmHWM:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kb ? Number(kb) * 1024 : 0;
  } catch {
    return 0;
  }
}
