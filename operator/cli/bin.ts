// Process wiring for the `scalable` CLI.
import { readFileSync } from 'node:fs';
import { runCli } from './main.ts';

process.exitCode = runCli(process.argv.slice(2), {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  readFile: (p) => readFileSync(p, 'utf8'),
});
