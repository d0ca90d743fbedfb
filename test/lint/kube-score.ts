// The manifest linter of `npm run lint`: kube-score (built from the Go module proxy, cached)
// scores every manifest the repository ships or pins: each example in manifests/examples
// rendered as the operator would, each golden file (test/golden, operator/tiers/*/golden:
// the shapes the examples leave out, such as a standalone cache or a queue with Sentinel),
// and the operator's own install manifest. Any finding not allowed, with a reason, by
// kube-score-allow.yaml fails the lint, and so does an entry that no longer matches anything.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import yaml from 'js-yaml';
import { ensureKubeScore, kubeScoreBinPath } from '../../devcluster/index.ts';
import { renderText } from '../../operator/render.ts';
import { findingsOf, formatFinding, judge, parseAllowList } from './kube-score-findings.ts';

const EXAMPLES = new URL('../../manifests/examples/', import.meta.url);
const ROOT = new URL('../../', import.meta.url);
/** Rendered manifests scored as they are: goldens and the install manifest. */
async function renderedManifests(): Promise<URL[]> {
  const urls = [new URL('manifests/install.yaml', ROOT)];
  const dirs = [new URL('test/golden/', ROOT)];
  for (const tier of await readdir(new URL('operator/tiers/', ROOT), { withFileTypes: true }))
    if (tier.isDirectory()) dirs.push(new URL(`operator/tiers/${tier.name}/golden/`, ROOT));
  for (const dir of dirs) {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const f of names.filter((n) => n.endsWith('.yaml')).sort()) urls.push(new URL(f, dir));
  }
  return urls;
}
const ALLOW_LIST = new URL('./kube-score-allow.yaml', import.meta.url);
/** The oldest Kubernetes the chart supports: kube-score judges API versions against it. */
const KUBERNETES_VERSION = 'v1.30';

async function main(): Promise<number> {
  await ensureKubeScore(() => undefined);
  const dir = await mkdtemp(join(tmpdir(), 'kube-score-'));
  try {
    const files: string[] = [];
    for (const file of (await readdir(EXAMPLES)).filter((f) => f.endsWith('.yaml')).sort()) {
      const rendered = renderText(await readFile(new URL(file, EXAMPLES), 'utf8'), file);
      if (!rendered.ok) throw new Error(`${file}: ${JSON.stringify(rendered.errors)}`);
      const out = join(dir, file);
      await writeFile(out, rendered.objects.map((o) => `---\n${yaml.dump(o)}`).join(''));
      files.push(out);
    }
    for (const url of await renderedManifests()) {
      const out = join(dir, url.pathname.slice(ROOT.pathname.length).replaceAll('/', '_'));
      await writeFile(out, await readFile(url, 'utf8'));
      files.push(out);
    }
    // kube-score exits 1 when it finds anything: the allow-list decides, not its exit code.
    const { stdout } = await promisify(execFile)(
      kubeScoreBinPath(),
      ['score', '-o', 'json', '--kubernetes-version', KUBERNETES_VERSION, ...files],
      { maxBuffer: 64 * 1024 * 1024 },
    ).catch((e: { stdout?: string; stderr?: string }) => {
      if (e.stdout) return { stdout: e.stdout };
      throw new Error(`kube-score failed: ${e.stderr ?? String(e)}`);
    });
    const findings = findingsOf(stdout);
    const { defects, unused } = judge(findings, parseAllowList(await readFile(ALLOW_LIST, 'utf8')));
    for (const f of defects) console.error(`kube-score: ${formatFinding(f)}`);
    for (const e of unused) {
      console.error(
        `kube-score-allow.yaml: the entry for ${e.check} on ${e.kind} ${e.name} matches nothing; remove it`,
      );
    }
    const allowed = findings.length - defects.length;
    console.log(
      `kube-score: ${files.length} manifests, ${findings.length} findings, ${allowed} allowed, ${defects.length} not`,
    );
    return defects.length + unused.length === 0 ? 0 : 1;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`kube-score: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
