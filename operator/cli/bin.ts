// Process wiring for the `scalable` CLI (also run as the kubectl plugin `kubectl-scalable`).
import { readFileSync } from 'node:fs';
import { runCli } from './main.ts';

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  readFile: (p) => readFileSync(p, 'utf8'),
  cluster: {
    env: process.env,
    isTTY: process.stdout.isTTY === true,
    // Installed only by the commands that run until interrupted (--watch): a blocking read
    // of stdin (`validate -f -`) must stay interruptible by Ctrl-C.
    interrupts: () => {
      const stop = new AbortController();
      for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => stop.abort());
      return stop.signal;
    },
  },
});
