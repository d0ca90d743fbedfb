// Everything `scalable render` produces for the examples, judged by the API server's own
// schemas and the upstream CRDs (cert-manager's applied here): `kubectl apply --server-side --dry-run=server`.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubectl } from '../../devcluster/index.ts';
import {
  clients,
  printLogDirOnFailure,
  testKubeconfig,
  uniqueName,
} from '../../devcluster/testing.ts';
import { runCli } from '../../operator/cli/main.ts';
import { installCertManagerCrds, removeCertManagerCrds } from './cert-manager.ts';

/**
 * `scalable render -f <file> -n <ns> [flags]`, run in-process. `--all-apis` unless flags are
 * given: this cluster serves every add-on CRD the operator renders for.
 */
function render(file: string, ns: string, flags = ['--all-apis']): string {
  let out = '';
  const code = runCli(['render', '-f', file, '-n', ns, ...flags], {
    stdout: (t) => (out += t),
    stderr: (t) => {
      // Only the list of what a cluster without an add-on API does not get.
      if (!t.startsWith('left out ')) throw new Error(t);
    },
    readFile: (p) => readFileSync(p, 'utf8'),
  });
  if (code !== 0) throw new Error(`render exited ${code}`);
  return out;
}

const dryRun = (rendered: string) =>
  kubectl(
    testKubeconfig(),
    ['apply', '--server-side', '--dry-run=server', '--field-manager=scalable-operator', '-f', '-'],
    rendered,
  );

let namespace = '';

beforeAll(async () => {
  namespace = uniqueName('render');
  const { core } = clients();
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await core.createNamespace({ body: { metadata: { name: 'shop' } } }).catch(() => undefined);
  // The database's Certificates and Issuers, judged by cert-manager's own schemas.
  await installCertManagerCrds();
});

afterAll(async () => {
  await removeCertManagerCrds();
});

describe('rendered objects are accepted by the API server', () => {
  printLogDirOnFailure();

  it.each(['minimal', 'full'])('%s example', async (name) => {
    const rendered = render(`manifests/examples/${name}.yaml`, namespace);
    const kinds = rendered.match(/^kind: .*/gm) ?? [];
    expect(kinds.length).toBeGreaterThan(5);
    const { stdout } = await kubectl(
      testKubeconfig(),
      [
        'apply',
        '--server-side',
        '--dry-run=server',
        '--field-manager=scalable-operator',
        '-f',
        '-',
      ],
      rendered,
    );
    // One line per object, each "(server dry run)".
    expect(stdout.trim().split('\n')).toHaveLength(kinds.length);
    expect(stdout).not.toMatch(/error/i);
  });

  it('web NetworkPolicy with every kind of web.allowFrom peer', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'allow-from-')), 'app.yaml');
    writeFileSync(
      file,
      `apiVersion: scalable.dev/v1alpha1
kind: ScalableApp
metadata: { name: peers }
spec:
  web:
    image: ghcr.io/acme/shop:1.4.2
    allowFrom:
      - namespaceSelector: { matchLabels: { example.com/role: ingress } }
      - podSelector: { matchLabels: { app: edge } }
      - namespaceSelector: {}
        podSelector: { matchLabels: { app: alb } }
      - ipBlock: { cidr: 10.0.0.0/8, except: [10.1.0.0/16] }
      - ipBlock: { cidr: 2001:db8::/32 }
`,
    );
    const rendered = render(file, namespace);
    const policy = rendered.split(/^---$/m).find((d) => /^kind: NetworkPolicy$/m.test(d));
    expect(policy).toMatch(/except:\n\s+- 10\.1\.0\.0\/16/);
    const { stdout } = await kubectl(
      testKubeconfig(),
      [
        'apply',
        '--server-side',
        '--dry-run=server',
        '--field-manager=scalable-operator',
        '-f',
        '-',
      ],
      policy ?? '',
    );
    expect(stdout).toMatch(
      /networkpolicy.networking.k8s.io\/peers-web serverside-applied \(server dry run\)/,
    );
  });

  it('without cert-manager: the default render applies, one naming cert-manager.io/v1 does not', async () => {
    await removeCertManagerCrds();
    // The symptom first (the control): Certificates on a cluster that has no such kind.
    await expect(
      dryRun(
        render('manifests/examples/full.yaml', namespace, ['--api-versions', 'cert-manager.io/v1']),
      ),
    ).rejects.toThrow(
      // kubectl's answer depends on its discovery cache: a fresh one knows the kind is gone, a
      // stale one sends the patch and the API server answers 404.
      /no matches for kind "(Certificate|Issuer)" in version "cert-manager.io\/v1"|could not find the requested resource \(patch (certificates|issuers)\.cert-manager\.io/,
    );
    const rendered = render('manifests/examples/full.yaml', namespace, []);
    expect(rendered).not.toMatch(/^apiVersion: cert-manager\.io/m);
    const { stdout } = await dryRun(rendered);
    expect(stdout.trim().split('\n')).toHaveLength((rendered.match(/^kind: .*/gm) ?? []).length);
  });
});
