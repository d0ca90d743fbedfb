// `scalable`: render and validate ScalableApps offline, no cluster needed.
import { parseArgs } from 'node:util';
import yaml from 'js-yaml';
import { parseApps } from '../api/parse.ts';
import { formatError } from '../api/validate.ts';
import type { FieldError } from '../api/validate.ts';
import { renderText } from '../render.ts';
import { parseApiVersions, selectServed } from './api-versions.ts';

const USAGE = `usage:
  scalable render -f app.yaml [-o yaml|json] [-n namespace]   print every object the operator would create
      [--api-versions group/version[/Kind]]... [--all-apis]   on a cluster that serves these add-on APIs
                                                              (default: built-in APIs only; --all-apis: all)
  scalable validate -f app.yaml [--previous live.yaml]        check a ScalableApp offline; with
                                                              the stored version, as an update`;

export interface CliIO {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
  readonly readFile: (path: string) => string;
}

/** Runs the CLI; returns the exit code. Output only through `io`, so tests can run it. */
export function runCli(argv: readonly string[], io: CliIO): number {
  let args;
  try {
    args = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        file: { type: 'string', short: 'f' },
        output: { type: 'string', short: 'o', default: 'yaml' },
        namespace: { type: 'string', short: 'n' },
        previous: { type: 'string' },
        'api-versions': { type: 'string', multiple: true, default: [] },
        'all-apis': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    io.stderr(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const [command] = args.positionals;
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
    const output = args.values.output;
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
