import { readFileSync } from 'node:fs';
import yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { runCli } from './main.ts';

function run(args: string[], files: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const code = runCli(args, {
    stdout: (s) => (stdout += s),
    stderr: (s) => (stderr += s),
    readFile: (p) => {
      if (p in files) return files[p]!;
      return readFileSync(p, 'utf8');
    },
  });
  return { code, stdout, stderr };
}

const BAD = `apiVersion: scalable.dev/v1alpha1
kind: ScalableApp
metadata: {name: shop}
spec:
  web: {image: x, autoscaling: {minReplicas: 5, maxReplicas: 2}}
  cache: {evictionPolicy: lru}
`;

describe('scalable CLI', () => {
  it('renders every object as multi-document YAML', () => {
    const r = run(['render', '-f', 'manifests/examples/minimal.yaml']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const docs = yaml.loadAll(r.stdout) as Array<{ kind: string; metadata: { name: string } }>;
    expect(docs.map((d) => `${d.kind}/${d.metadata.name}`)).toContain('Deployment/hello-web');
  });

  it('renders JSON as a v1 List', () => {
    const r = run(['render', '-f', 'manifests/examples/minimal.yaml', '-o', 'json']);
    const list = JSON.parse(r.stdout) as { kind: string; items: unknown[] };
    expect(list.kind).toBe('List');
    expect(list.items.length).toBeGreaterThan(3);
  });

  it('puts apps without a namespace into -n', () => {
    const r = run(['render', '-f', 'manifests/examples/minimal.yaml', '-n', 'prod']);
    const docs = yaml.loadAll(r.stdout) as Array<{ metadata: { namespace: string } }>;
    expect(new Set(docs.map((d) => d.metadata.namespace))).toEqual(new Set(['prod']));
  });

  it('rejects invalid input: exit 1, every error with its path on stderr, nothing on stdout', () => {
    for (const cmd of ['render', 'validate']) {
      const r = run([cmd, '-f', 'bad.yaml'], { 'bad.yaml': BAD });
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain('bad.yaml: spec.cache.evictionPolicy: must be one of');
    }
  });

  it('reports CEL rule violations with the field path', () => {
    const r = run(['validate', '-f', 'bad.yaml'], {
      'bad.yaml': BAD.replace('cache: {evictionPolicy: lru}', ''),
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'bad.yaml: spec.web.autoscaling: minReplicas must be <= maxReplicas (got 5 > 2)\n',
    );
  });

  it('rejects bad YAML and the wrong kind', () => {
    expect(run(['render', '-f', 'x.yaml'], { 'x.yaml': 'a: [' }).stderr).toMatch(
      /x\.yaml: x\.yaml:\d+:\d+: invalid YAML/,
    );
    const kind = run(['validate', '-f', 'k.yaml'], {
      'k.yaml': BAD.replace('kind: ScalableApp', 'kind: Deployment'),
    });
    expect(kind.code).toBe(1);
    expect(kind.stderr).toContain('k.yaml: kind: must be ScalableApp (got "Deployment")');
  });

  it('sees a __proto__ merge key as the field it is, not a hidden prototype (js-yaml CVE-2025-64718)', () => {
    // js-yaml 4.1.0 made `<<: {__proto__: ...}` the object's prototype: keys no validation saw
    // but every builder reading spec.web.image would (the image of the app's pods).
    const r = run(['validate', '-f', 'p.yaml'], {
      'p.yaml': `apiVersion: scalable.dev/v1alpha1
kind: ScalableApp
metadata: {name: shop}
spec:
  web:
    <<: {__proto__: {image: "evil:1"}}
    image: shop:1
`,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('p.yaml: spec.web.__proto__.image: field not declared in schema\n');
  });

  it('names a missing file', () => {
    const r = run(['render', '-f', 'nope.yaml']);
    expect(r).toEqual({ code: 1, stdout: '', stderr: 'nope.yaml: no such file\n' });
  });

  it('validates the examples', () => {
    for (const f of ['minimal', 'full']) {
      expect(run(['validate', '-f', `manifests/examples/${f}.yaml`]).code).toBe(0);
    }
  });

  describe('--api-versions (the add-on APIs the target cluster serves)', () => {
    const kindsOf = (stdout: string) =>
      (yaml.loadAll(stdout) as Array<{ apiVersion: string; kind: string }>).map(
        (d) => `${d.apiVersion}/${d.kind}`,
      );
    const ADDONS =
      /^(cert-manager\.io|keda\.sh|monitoring\.coreos\.com|traefik\.io|gateway\.networking\.k8s\.io)\//;

    it('by default renders built-in kinds only and names each object left out on stderr', () => {
      const all = run(['render', '-f', 'manifests/examples/full.yaml', '--all-apis']);
      const plain = run(['render', '-f', 'manifests/examples/full.yaml']);
      expect(all.code).toBe(0);
      expect(all.stderr).toBe('');
      expect(plain.code).toBe(0);
      const addons = kindsOf(all.stdout).filter((k) => ADDONS.test(k));
      expect(addons.length).toBeGreaterThan(10);
      expect(kindsOf(plain.stdout).filter((k) => ADDONS.test(k))).toEqual([]);
      expect(kindsOf(plain.stdout)).toEqual(kindsOf(all.stdout).filter((k) => !ADDONS.test(k)));
      const lines = plain.stderr.trim().split('\n');
      expect(lines).toHaveLength(addons.length);
      expect(lines).toContain(
        'left out cert-manager.io/v1 Certificate shop-db-0: its API was not named with --api-versions (without it the operator issues the certificate into the Secret itself)',
      );
      expect(lines).toContain(
        'left out keda.sh/v1alpha1 ScaledObject shop-worker-emails: its API was not named with --api-versions',
      );
    });

    it('a group/version adds all its kinds; group/version/Kind adds that kind only', () => {
      const r = run([
        'render',
        '-f',
        'manifests/examples/full.yaml',
        '--api-versions',
        'cert-manager.io/v1',
        '--api-versions',
        'monitoring.coreos.com/v1/PodMonitor',
      ]);
      expect(r.code).toBe(0);
      const addons = new Set(kindsOf(r.stdout).filter((k) => ADDONS.test(k)));
      expect(addons).toEqual(
        new Set([
          'cert-manager.io/v1/Certificate',
          'cert-manager.io/v1/Issuer',
          'monitoring.coreos.com/v1/PodMonitor',
        ]),
      );
      expect(r.stderr).toContain('left out monitoring.coreos.com/v1 PrometheusRule shop-rules');
      expect(r.stderr).not.toContain('cert-manager.io');
    });

    it('refuses a value that is not an API version, naming the flag, and prints nothing', () => {
      for (const bad of [
        'certmanager',
        'cert-manager.io/Certificate',
        '/v1',
        'keda.sh/v1alpha1/',
      ]) {
        const r = run(['render', '-f', 'manifests/examples/full.yaml', '--api-versions', bad]);
        expect(r, bad).toEqual({
          code: 2,
          stdout: '',
          stderr: `--api-versions: "${bad}" is not group/version or group/version/Kind (e.g. cert-manager.io/v1, monitoring.coreos.com/v1/PodMonitor)\n`,
        });
      }
    });
  });

  describe('status: refused before it reads the cluster', () => {
    const runAsync = async (args: string[]) => {
      let stdout = '';
      let stderr = '';
      const code = await runCli(args, {
        stdout: (s) => (stdout += s),
        stderr: (s) => (stderr += s),
        readFile: (p) => readFileSync(p, 'utf8'),
      });
      return { code, stdout, stderr };
    };

    it('exits 2 naming a bad flag, value or argument', async () => {
      const flag = await runAsync(['status', 'shop', '--frobnicate']);
      expect(flag.code).toBe(2);
      expect(flag.stderr).toMatch(/^Unknown option '--frobnicate'/);
      const output = await runAsync(['status', 'shop', '-o', 'yaml']);
      expect(output).toEqual({
        code: 2,
        stdout: '',
        stderr: '-o must be text or json (got yaml)\n',
      });
      expect((await runAsync(['status'])).stderr).toMatch(/^status takes one app name\n/);
      expect((await runAsync(['status', 'a', 'b'])).stderr).toMatch(
        /^status takes one app name \(got a b\)\n/,
      );
      // A flag of another command is refused by name too.
      const render = await runAsync(['render', '-f', 'manifests/examples/minimal.yaml', '--watch']);
      expect(render.code).toBe(2);
      expect(render.stderr).toMatch(/^Unknown option '--watch'/);
      const validate = await runAsync(['status', 'shop', '-f', 'app.yaml']);
      expect(validate.code).toBe(2);
      expect(validate.stderr).toMatch(/^Unknown option '-f'/);
    });

    it('switchover: exits 2 naming a missing or bad --shard, --timeout, -o or --to', async () => {
      const usage = async (args: string[]) => {
        const r = await runAsync(['switchover', ...args]);
        expect(r.code, args.join(' ')).toBe(2);
        return r.stderr.split('\n')[0];
      };
      expect(await usage(['shop'])).toBe('--shard is required');
      expect(await usage(['shop', '--shard=-1'])).toBe(
        '--shard must be a shard index, 0 or more (got -1)',
      );
      expect(await usage(['shop', '--shard', 'x'])).toBe(
        '--shard must be a shard index, 0 or more (got x)',
      );
      expect(await usage(['shop', '--shard', '0', '--timeout', '0'])).toBe(
        '--timeout must be a number of seconds, 1 or more (got 0)',
      );
      expect(await usage(['shop', '--shard', '0', '-o', 'yaml'])).toBe(
        '-o must be text or json (got yaml)',
      );
      expect(await usage(['shop', '--shard', '0', '--to', ''])).toBe(
        '--to names a member pod (got an empty name)',
      );
      expect(await usage(['--shard', '0'])).toBe('switchover takes one app name');
      expect(await usage(['shop', '--shard', '0', '--watch'])).toMatch(/^Unknown option '--watch'/);
      // Its flags belong to it alone.
      expect((await runAsync(['status', 'shop', '--shard', '0'])).stderr).toMatch(
        /^Unknown option '--shard'/,
      );
    });

    it('says how to use it as a kubectl plugin', async () => {
      const help = await runAsync(['status', '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain('kubectl-scalable');
      expect(help.stdout).toContain('kubectl scalable status <app>');
    });
  });

  it('explains its usage', () => {
    expect(run([]).code).toBe(2);
    expect(run(['frobnicate', '-f', 'x']).stderr).toContain('unknown command frobnicate');
    expect(run(['render', '-f', 'manifests/examples/minimal.yaml', '-o', 'xml']).code).toBe(2);
  });
});
