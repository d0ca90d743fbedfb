import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO = join(import.meta.dirname, '..', '..', '..', '..');

describe('@peculiar/x509', () => {
  it('is not loaded with the builders and the reconciler, only on the first issue', () => {
    // A fresh process: the test worker may have loaded it already. The library needs the
    // reflect-metadata polyfill, whose Reflect.defineMetadata tells whether it was loaded.
    const script = `
      await import('./operator/tiers/index.ts');
      await import('./operator/reconcile/reconcile.ts');
      const before = typeof Reflect.defineMetadata;
      const { issueCa } = await import('./operator/tiers/shared/tls/x509.ts');
      const ca = await issueCa('lazy', new Date());
      console.log(JSON.stringify({ before, after: typeof Reflect.defineMetadata, pem: ca.cert.slice(0, 27) }));`;
    const out = execFileSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        cwd: REPO,
        encoding: 'utf8',
      },
    );
    expect(JSON.parse(out.trim().split('\n').at(-1) ?? '{}')).toEqual({
      before: 'undefined',
      after: 'function',
      pem: '-----BEGIN CERTIFICATE-----',
    });
    // A fresh Node compiling the operator with tsx: seconds on a loaded machine.
  }, 60_000);
});
