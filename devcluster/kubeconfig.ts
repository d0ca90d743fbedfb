// A kubeconfig with everything embedded, so it can be copied anywhere and still works.
import { dump } from 'js-yaml';
import type { ClientTls } from './certs.ts';

export const CONTEXT = 'scalable-devcluster';

export function renderKubeconfig(server: string, tls: ClientTls, user = 'admin'): string {
  const b64 = (b: Buffer) => b.toString('base64');
  return dump({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: CONTEXT, cluster: { server, 'certificate-authority-data': b64(tls.ca) } }],
    users: [
      {
        name: user,
        user: { 'client-certificate-data': b64(tls.cert), 'client-key-data': b64(tls.key) },
      },
    ],
    contexts: [{ name: CONTEXT, context: { cluster: CONTEXT, user } }],
    'current-context': CONTEXT,
  });
}
