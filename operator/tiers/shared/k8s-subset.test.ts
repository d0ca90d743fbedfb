import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { App, Chart } from 'cdk8s';
import * as full from 'cdk8s-plus-27/lib/imports/k8s.js';
import { describe, expect, it } from 'vitest';
import { L1_MODULE, SUBSET_FILE, generateSubset, usedNames } from './k8s-subset.ts';

const REPO = join(import.meta.dirname, '..', '..', '..');

describe('the L1 subset the bundle uses (k8s-subset.ts)', () => {
  it('holds every class the operator uses, rendering as the library does', async () => {
    // Beside where the bundle finds it, so that its `cdk8s` import resolves the same way.
    const file = join(dirname(SUBSET_FILE), `k8s-l1.test-${process.pid}.ts`);
    execFileSync('mkdir', ['-p', dirname(file)]);
    writeFileSync(file, generateSubset());
    let subset: Record<string, unknown>;
    try {
      subset = (await import(file)) as Record<string, unknown>;
    } finally {
      rmSync(file, { force: true });
    }
    const runtime = usedNames().filter((n) => n in full);
    expect(runtime.length).toBeGreaterThan(10);
    expect(Object.keys(subset).sort()).toEqual(runtime);
    const render = (lib: Record<string, unknown>, name: string) => {
      const chart = new Chart(new App(), 'c', { namespace: 'ns' });
      const Ctor = lib[name] as new (s: Chart, id: string, p: unknown) => { toJson(): unknown };
      return new Ctor(chart, 'x', {
        metadata: { name: 'x', labels: { a: 'b' } },
      }).toJson();
    };
    for (const n of runtime.filter((r) => r.startsWith('Kube')))
      expect(render(subset, n), n).toEqual(render(full, n));
    const lib = subset as typeof full;
    expect(lib.IntOrString.fromNumber(5).value).toBe(5);
    expect(lib.Quantity.fromString('1Gi').value).toBe('1Gi');
  });

  it('is what `npm run bundle` puts in the operator, instead of the whole module', () => {
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    const target = '--outfile=dist/operator/main.js';
    const command = pkg.scripts['bundle'] ?? '';
    expect(command).toContain(target);
    const out = mkdtempSync(join(tmpdir(), 'bundle-'));
    try {
      const meta = join(out, 'meta.json');
      execFileSync(
        'sh',
        [
          '-c',
          command.replace(
            target,
            `--outfile=${out}/main.js --metafile=${meta} --log-level=warning`,
          ),
        ],
        {
          cwd: REPO,
          env: {
            ...process.env,
            PATH: `${join(REPO, 'node_modules', '.bin')}:${process.env['PATH']}`,
          },
          stdio: ['ignore', 'ignore', 'inherit'],
        },
      );
      const inputs = Object.keys(
        (JSON.parse(readFileSync(meta, 'utf8')) as { inputs: Record<string, unknown> }).inputs,
      );
      expect(inputs).toContain('dist/build/k8s-l1.ts');
      expect(inputs.filter((i) => i.endsWith(L1_MODULE))).toEqual([]);
      expect(readFileSync(SUBSET_FILE, 'utf8')).toBe(generateSubset());
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
    // Generating and bundling the whole operator: seconds, more on a loaded machine.
  }, 120_000);
});
