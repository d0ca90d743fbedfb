// libpq's sslmode, for node-postgres: what `ssl` each pool gets. verify-full (what the
// operator injects) checks the chain against the mounted CA and the server's name against
// the host connected to; verify-ca only the chain; require encrypts without checking.
import type { ConnectionOptions } from 'node:tls';
import type { TlsSettings } from '../env.ts';
import { liveCa } from '../ca-file.ts';

/**
 * The pool's `ssl` setting; undefined for a plain connection. The CA is the mounted file's
 * current bundle (ca-file.ts), so a CA move reaches the pool's new connections.
 */
export function pgSsl(tls: TlsSettings | undefined): ConnectionOptions | undefined {
  if (!tls || tls.mode === 'disable') return undefined;
  if (tls.mode === 'require') return { rejectUnauthorized: false };
  if (!tls.caFile) throw new Error(`sslmode ${tls.mode} needs the CA file`);
  const ca = liveCa(tls.caFile);
  return tls.mode === 'verify-ca'
    ? { ca, rejectUnauthorized: true, checkServerIdentity: () => undefined }
    : { ca, rejectUnauthorized: true };
}
