// `scalable`: render and validate ScalableApps offline, no cluster needed; `status` reads one
// from the cluster. The same program is the kubectl plugin `kubectl scalable`.
import { parseArgs } from 'node:util';
import yaml from 'js-yaml';
import { parseApps } from '../api/parse.ts';
import { formatError } from '../api/validate.ts';
import type { FieldError } from '../api/validate.ts';
import { renderText } from '../render.ts';
import { KubeClient } from '../runtime/kube-client.ts';
import { contextNamespace, loadConnection } from '../runtime/kubeconfig.ts';
import type { Connection } from '../runtime/kubeconfig.ts';
import { parseApiVersions, selectServed } from './api-versions.ts';
import { runView } from './status/command.ts';
import { runSwitchover } from './switchover/command.ts';
import { statusDiagram } from './status/diagram.ts';
import { statusText } from './status/text.ts';

const USAGE = `usage:
  scalable render -f app.yaml [-o yaml|json] [-n namespace]   print every object the operator would create
      [--api-versions group/version[/Kind]]... [--all-apis]   on a cluster that serves these add-on APIs
                                                              (default: built-in APIs only; --all-apis: all)
  scalable validate -f app.yaml [--previous live.yaml]        check a ScalableApp offline; with
                                                              the stored version, as an update
  scalable status <app> [-n namespace] [-o text|json] [--watch]
                                                              the app at a glance, read from the cluster
                                                              (KUBECONFIG, else ~/.kube/config; -n defaults
                                                              to the context's namespace): pods per tier
                                                              with node, zone and role, replica lag, the
                                                              shard map, URLs, conditions and what to do;
                                                              --watch prints again on every change (Ctrl-C ends)
  scalable diagram <app> [-n namespace] [--watch]           the app's live topology as a Mermaid flowchart
  scalable switchover <app> --shard N [--to member] [-n namespace] [--force] [--timeout seconds] [-o text|json]
                                                              a planned switchover of shard N's primary to a
                                                              healthy standby (the synchronous one first),
                                                              asked of Patroni through its ConfigMap
                                                              <app>-db-N-failover; waits (default 120 s) until
                                                              the new primary holds the lock and -rw points at
                                                              it. Refused, with the reason, while a lock release
                                                              is in flight or when the target is unfit; --force
                                                              accepts losing what an asynchronous target that
                                                              is not streaming lacks. Exit 0 once switched

As a kubectl plugin: put this program on PATH as kubectl-scalable (package.json's "bin" names it
so for npm link / npm install -g, or: ln -s "$PWD/bin/scalable.js" ~/.local/bin/kubectl-scalable),
then \`kubectl scalable status <app>\`.`;

export interface CliIO {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
  readonly readFile: (path: string) => string;
  /** What the commands that read a cluster need of the process; absent: they are refused. */
  readonly cluster?: ClusterIO;
}

export interface ClusterIO {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Whether stdout is a terminal: colour, and --watch clears the screen between prints. */
  readonly isTTY: boolean;
  /** A signal that fires on Ctrl-C (SIGINT, SIGTERM); the handlers are installed when called. */
  readonly interrupts: () => AbortSignal;
}

const OFFLINE_OPTIONS = {
  file: { type: 'string', short: 'f' },
  output: { type: 'string', short: 'o' },
  namespace: { type: 'string', short: 'n' },
  previous: { type: 'string' },
  'api-versions': { type: 'string', multiple: true, default: [] as string[] },
  'all-apis': { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h' },
} as const;

const CLUSTER_OPTIONS = {
  output: { type: 'string', short: 'o' },
  namespace: { type: 'string', short: 'n' },
  watch: { type: 'boolean', short: 'w', default: false },
  help: { type: 'boolean', short: 'h' },
} as const;

const SWITCHOVER_OPTIONS = {
  output: { type: 'string', short: 'o' },
  namespace: { type: 'string', short: 'n' },
  shard: { type: 'string' },
  to: { type: 'string' },
  force: { type: 'boolean', default: false },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const CLUSTER_COMMANDS = new Set(['status', 'diagram', 'switchover']);

/** The default --timeout of a switchover (s): Patroni's loop, a checkpoint, a promotion. */
export const SWITCHOVER_TIMEOUT_SECONDS = 120;

/**
 * Runs the CLI; returns the exit code (a promise for the commands that read a cluster).
 * Output only through `io`, so tests can run it.
 */
export function runCli(argv: readonly string[], io: CliIO): number | Promise<number> {
  // Which command: parsed with every command's flags; then again with the command's own, so
  // a flag of another command is refused by name.
  let first;
  try {
    first = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: { ...OFFLINE_OPTIONS, ...CLUSTER_OPTIONS, ...SWITCHOVER_OPTIONS },
    });
  } catch (e) {
    io.stderr(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const command = first.positionals[0];
  if (command === 'switchover') return switchoverCommand(argv, io);
  if (command !== undefined && CLUSTER_COMMANDS.has(command)) return clusterCommand(argv, io);
  let args;
  try {
    args = parseArgs({ args: [...argv], allowPositionals: true, options: OFFLINE_OPTIONS });
  } catch (e) {
    io.stderr(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (args.values.help || command === undefined) {
    (args.values.help ? io.stdout : io.stderr)(`${USAGE}\n`);
    return args.values.help ? 0 : 2;
  }
  if (command !== 'render' && command !== 'validate') {
    io.stderr(`unknown command ${command}\n${USAGE}\n`);
    return 2;
  }
  const file = args.values.file;
  if (file === undefined) {
    io.stderr(`-f is required\n${USAGE}\n`);
    return 2;
  }
  let text: string;
  try {
    text = file === '-' ? io.readFile('/dev/stdin') : io.readFile(file);
  } catch (e) {
    io.stderr(
      `${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}\n`,
    );
    return 1;
  }
  const fail = (errors: readonly FieldError[]) => {
    for (const e of errors) io.stderr(`${file}: ${formatError(e)}\n`);
    return 1;
  };
  if (command === 'validate') {
    let previous: unknown[] = [];
    if (args.values.previous !== undefined) {
      try {
        const docs = yaml.loadAll(io.readFile(args.values.previous)) as unknown[];
        // `kubectl get -o yaml` of several apps is one List.
        previous = docs.flatMap((d) =>
          (d as { kind?: string; items?: unknown[] } | null)?.kind === 'List'
            ? ((d as { items?: unknown[] }).items ?? [])
            : [d],
        );
      } catch (e) {
        io.stderr(`${args.values.previous}: ${(e as Error).message}\n`);
        return 1;
      }
    }
    const parsed = parseApps(text, file, previous);
    const errors = [...parsed.errors, ...parsed.results.flatMap((r) => (r.ok ? [] : r.errors))];
    if (errors.length > 0) return fail(errors);
    io.stdout(
      `${file}: valid (${parsed.results.length} ScalableApp${parsed.results.length === 1 ? '' : 's'})\n`,
    );
    return 0;
  }
  if (command === 'render') {
    const output = args.values.output ?? 'yaml';
    if (output !== 'yaml' && output !== 'json') {
      io.stderr(`-o must be yaml or json (got ${output})\n`);
      return 2;
    }
    const apis = parseApiVersions(args.values['api-versions'], args.values['all-apis']);
    if (!apis.ok) {
      io.stderr(`${apis.error}\n`);
      return 2;
    }
    const ns = args.values.namespace;
    const result = renderText(text, file, ns ? { defaultNamespace: ns } : {});
    if (!result.ok) return fail(result.errors);
    const { kept, leftOut } = selectServed(result.objects, apis.selection);
    for (const line of leftOut) io.stderr(`${line}\n`);
    io.stdout(
      output === 'json'
        ? `${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: kept }, null, 2)}\n`
        : kept.map((o) => `---\n${yaml.dump(o, { noRefs: true, lineWidth: -1 })}`).join(''),
    );
    return 0;
  }
  return 2;
}

/** `scalable status|diagram <app>`: read the app from the cluster and print it. */
async function clusterCommand(argv: readonly string[], io: CliIO): Promise<number> {
  let args;
  try {
    args = parseArgs({ args: [...argv], allowPositionals: true, options: CLUSTER_OPTIONS });
  } catch (e) {
    io.stderr(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const [command, ...names] = args.positionals;
  if (args.values.help) {
    io.stdout(`${USAGE}\n`);
    return 0;
  }
  const [name] = names;
  if (name === undefined || names.length !== 1) {
    io.stderr(
      `${command} takes one app name${names.length > 1 ? ` (got ${names.join(' ')})` : ''}\n${USAGE}\n`,
    );
    return 2;
  }
  const outputs = command === 'diagram' ? ['mermaid'] : ['text', 'json'];
  const output = args.values.output ?? outputs[0];
  if (output === undefined || !outputs.includes(output)) {
    io.stderr(`-o must be ${outputs.join(' or ')} (got ${output})\n`);
    return 2;
  }
  const cluster = io.cluster;
  if (!cluster) {
    io.stderr(`${command} reads a cluster, which this caller does not offer\n`);
    return 1;
  }
  let conn: Connection;
  let namespace: string;
  try {
    conn = await loadConnection();
    namespace = args.values.namespace ?? contextNamespace() ?? 'default';
  } catch (e) {
    io.stderr(`${(e as Error).message}\n`);
    return 1;
  }
  const watch = args.values.watch;
  const signal = watch ? cluster.interrupts() : undefined;
  const terminal = cluster.isTTY;
  // NO_COLOR (no-color.org): any non-empty value turns colour off.
  const colour = terminal && !cluster.env['NO_COLOR'];
  const base = KubeClient.fromConnection(conn);
  try {
    return await runView(
      { name, namespace, watch },
      signal ? base.withSignal(signal) : base,
      conn.server,
      {
        stdout: io.stdout,
        stderr: io.stderr,
        // A terminal is cleared; a pipe gets a separator (none between JSON lines).
        between: () =>
          output === 'json'
            ? ''
            : output === 'mermaid'
              ? '\n'
              : terminal
                ? '\x1b[H\x1b[2J'
                : `--- ${new Date().toISOString()}\n`,
        ...(signal ? { signal } : {}),
      },
      (doc, watching) =>
        output === 'json'
          ? // --watch: one document per line, so a reader can split them.
            `${watching ? JSON.stringify(doc) : JSON.stringify(doc, null, 2)}\n`
          : output === 'mermaid'
            ? statusDiagram(doc)
            : statusText(doc, { colour }),
    );
  } finally {
    base.close();
  }
}

/** A whole number from a flag, or undefined. */
const wholeNumber = (v: string): number | undefined =>
  /^\d+$/.test(v) && Number.isSafeInteger(Number(v)) ? Number(v) : undefined;

/** `scalable switchover <app> --shard N`: see switchover/decide.ts. */
async function switchoverCommand(argv: readonly string[], io: CliIO): Promise<number> {
  let args;
  try {
    args = parseArgs({ args: [...argv], allowPositionals: true, options: SWITCHOVER_OPTIONS });
  } catch (e) {
    io.stderr(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (args.values.help) {
    io.stdout(`${USAGE}\n`);
    return 0;
  }
  const names = args.positionals.slice(1);
  const [name] = names;
  const usage = (why: string) => {
    io.stderr(`${why}\n${USAGE}\n`);
    return 2;
  };
  if (name === undefined || names.length !== 1)
    return usage(
      `switchover takes one app name${names.length > 1 ? ` (got ${names.join(' ')})` : ''}`,
    );
  if (args.values.shard === undefined) return usage('--shard is required');
  const shard = wholeNumber(args.values.shard);
  if (shard === undefined)
    return usage(`--shard must be a shard index, 0 or more (got ${args.values.shard})`);
  const timeout =
    args.values.timeout === undefined
      ? SWITCHOVER_TIMEOUT_SECONDS
      : wholeNumber(args.values.timeout);
  if (timeout === undefined || timeout < 1)
    return usage(`--timeout must be a number of seconds, 1 or more (got ${args.values.timeout})`);
  const output = args.values.output ?? 'text';
  if (output !== 'text' && output !== 'json')
    return usage(`-o must be text or json (got ${output})`);
  if (args.values.to === '') return usage('--to names a member pod (got an empty name)');
  const cluster = io.cluster;
  if (!cluster) {
    io.stderr('switchover reads a cluster, which this caller does not offer\n');
    return 1;
  }
  let conn: Connection;
  let namespace: string;
  try {
    conn = await loadConnection();
    namespace = args.values.namespace ?? contextNamespace() ?? 'default';
  } catch (e) {
    io.stderr(`${(e as Error).message}\n`);
    return 1;
  }
  const signal = cluster.interrupts();
  const client = KubeClient.fromConnection(conn);
  try {
    return await runSwitchover(
      {
        name,
        namespace,
        shard,
        ...(args.values.to !== undefined ? { to: args.values.to } : {}),
        force: args.values.force,
        timeoutSeconds: timeout,
        json: output === 'json',
      },
      client,
      conn.server,
      { stdout: io.stdout, stderr: io.stderr, signal },
    );
  } finally {
    client.close();
  }
}
