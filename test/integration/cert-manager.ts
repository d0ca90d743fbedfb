// cert-manager's own CRDs for the kinds the operator renders (Certificate, Issuer), from its
// Go module at a pinned version. Applied by the tests that need them and removed after, so
// that the other test files see a cluster without cert-manager (the operator then issues
// certificates itself). Not in devcluster's optional CRDs for that reason.
import { join } from 'node:path';
import { kubectl, waitEstablished } from '../../devcluster/crds.ts';
import { testKubeconfig } from '../../devcluster/testing.ts';
import { downloadModule } from '../../devcluster/toolchain.ts';

export const CERT_MANAGER_MODULE = 'github.com/cert-manager/cert-manager@v1.19.1';

async function crdFiles(): Promise<string[]> {
  const dir = (await downloadModule(CERT_MANAGER_MODULE)).Dir ?? '';
  return ['certificates', 'issuers'].map((k) =>
    join(dir, 'deploy/crds', `cert-manager.io_${k}.yaml`),
  );
}

export async function installCertManagerCrds(): Promise<void> {
  const files = await crdFiles();
  await kubectl(testKubeconfig(), ['apply', '--server-side', ...files.flatMap((f) => ['-f', f])]);
  // Polled: `kubectl wait` fails at once on a CRD the API server has not looked at yet.
  await waitEstablished(testKubeconfig(), [
    'certificates.cert-manager.io',
    'issuers.cert-manager.io',
  ]);
}

export async function removeCertManagerCrds(): Promise<void> {
  const files = await crdFiles();
  await kubectl(testKubeconfig(), [
    'delete',
    '--ignore-not-found',
    '--wait=true',
    ...files.flatMap((f) => ['-f', f]),
  ]);
}
