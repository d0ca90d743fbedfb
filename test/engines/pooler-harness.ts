// A shard's pooler pod on loopback, in front of a Patroni harness: PgBouncer from our image
// on the files the pooler tier renders for `model` (pgbouncer.ini and hba; the -rw address
// and the listen address edited for loopback only), the certificates its Secrets name issued
// from the harness's CA, and a stand-in for the shard's -rw Service that follows its
// EndpointSlices (the primary label), as a pod reaches it. Engine tests and bench:pooler
// start it the same way.
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AppModel } from '../../operator/api/model.ts';
import { buildAll } from '../../operator/tiers/index.ts';
import { POSTGRES_PORT, shardName } from '../../operator/tiers/database/names.ts';
import {
  POOLER_AUTH_ROLE,
  POOLER_CONFIG_DIR,
  POOLER_HBA,
  POOLER_INI,
  POOLER_SOCKET_DIR,
} from '../../operator/tiers/pooler/config.ts';
import { POOLER_CLIENT_CERT_DIR } from '../../operator/tiers/pooler/build.ts';
import { poolerName } from '../../operator/tiers/pooler/names.ts';
import {
  CA_DIR,
  SERVER_TLS_DIR,
  TLS_FILES,
  tlsDnsNamesOf,
  tlsSecretName,
} from '../../operator/tiers/shared/tls/objects.ts';
import { issueClientCert, issueServerCert } from '../../operator/tiers/shared/tls/x509.ts';
import type { K8sObject } from '../../operator/tiers/shared/chart.ts';
import { ENGINE_IMAGES, ENGINE_UID, startContainer } from './containers.ts';
import type { Container } from './containers.ts';
import { TEST_CA, freePort } from './patroni-harness.ts';
import type { Harness } from './patroni-harness.ts';
import { serviceProxies } from './sdk-db-harness.ts';
import type { ServiceProxies } from './sdk-db-harness.ts';

export interface PoolerOptions {
  /** Loopback address PgBouncer listens on (its Service's, as clients reach it). */
  readonly ip: string;
  /** Loopback address of the -rw Service's stand-in. */
  readonly rwIp: string;
  /** Shard whose pooler this is; 0 unless told. */
  readonly shard?: number;
}

export interface Pooler {
  readonly ip: string;
  readonly port: number;
  /** The rendered objects of `model` (the pooler's ConfigMap, Secrets and the rest). */
  readonly objects: readonly K8sObject[];
  /** DNS names the pooler's serving certificate carries, as rendered. */
  readonly servingNames: readonly string[];
  /** PgBouncer's log (stdout and stderr). */
  readonly log: string;
  /** Where the volumes' files and the log live. */
  readonly dir: string;
  /** Stops PgBouncer and the stand-in; removes the files unless SCALABLE_KEEP_ENGINE_LOGS. */
  close(): Promise<void>;
}

export const objectOf = (objects: readonly K8sObject[], kind: string, name: string): K8sObject => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name} rendered`);
  return o;
};

/** Files as a Secret or ConfigMap volume gives them to uid 999. */
function volume(root: string, name: string, files: Record<string, string>): string {
  const dir = join(root, name);
  mkdirSync(dir);
  chmodSync(dir, 0o755);
  for (const [f, text] of Object.entries(files)) {
    writeFileSync(join(dir, f), text, { mode: f.endsWith('.key') ? 0o600 : 0o644 });
    chownSync(join(dir, f), ENGINE_UID, ENGINE_UID);
  }
  return dir;
}

/** PgBouncer as the pooler pod of `model`'s shard runs it, on loopback. */
export async function startPooler(
  h: Harness,
  model: AppModel,
  opts: PoolerOptions,
): Promise<Pooler> {
  const shard = opts.shard ?? 0;
  const objects = buildAll(model);
  const cm = objectOf(objects, 'ConfigMap', poolerName(model, shard))['data'] as Record<
    string,
    string
  >;
  const rendered = cm[POOLER_INI] ?? '';
  const rwHost = `${shardName(model, shard)}.${h.ns}.svc`;
  const dbLine = `host='${rwHost}' port=${POSTGRES_PORT} `;
  if (!rendered.includes(dbLine))
    throw new Error(`the rendered ${POOLER_INI} has no line with ${dbLine}:\n${rendered}`);
  let proxies: ServiceProxies | undefined;
  let bouncer: Container | undefined;
  const dir = mkdtempSync(join(tmpdir(), `${h.ns}-pooler-`));
  chmodSync(dir, 0o755);
  const close = async () => {
    await bouncer?.remove();
    await proxies?.close();
    if (!process.env['SCALABLE_KEEP_ENGINE_LOGS']) rmSync(dir, { recursive: true, force: true });
  };
  try {
    const rwPort = await freePort();
    const port = await freePort();
    proxies = serviceProxies(h, 300, true);
    await proxies.add(shardName(model, shard), opts.rwIp, rwPort);
    const ini = rendered
      .replace(dbLine, `host='${rwHost}' port=${rwPort} `)
      .replace(/^listen_addr = .*$/m, `listen_addr = ${opts.ip}`)
      .replace(/^listen_port = .*$/m, `listen_port = ${port}`);
    const now = new Date();
    const servingNames = tlsDnsNamesOf(
      objectOf(objects, 'Secret', tlsSecretName(poolerName(model, shard))),
    );
    const serving = await issueServerCert(TEST_CA, [...servingNames, opts.ip], now);
    const client = await issueClientCert(TEST_CA, POOLER_AUTH_ROLE, now);
    const log = join(dir, 'pgbouncer.log');
    const files = (name: string, f: Record<string, string>) => volume(dir, name, f);
    bouncer = startContainer(
      {
        image: ENGINE_IMAGES.pgbouncer,
        name: `${h.ns}-pooler-${shard}`,
        args: [`${POOLER_CONFIG_DIR}/${POOLER_INI}`],
        binds: [
          [
            files('config', { [POOLER_INI]: ini, [POOLER_HBA]: cm[POOLER_HBA] ?? '' }),
            POOLER_CONFIG_DIR,
          ],
          [
            files('tls', { [TLS_FILES.cert]: serving.cert, [TLS_FILES.key]: serving.key }),
            SERVER_TLS_DIR,
          ],
          [
            files('client', { [TLS_FILES.cert]: client.cert, [TLS_FILES.key]: client.key }),
            POOLER_CLIENT_CERT_DIR,
          ],
          [files('ca', { [TLS_FILES.ca]: TEST_CA.cert }), CA_DIR],
        ],
        tmpfs: [POOLER_SOCKET_DIR],
        // The -rw Service's name as the cluster's DNS answers it: its stand-in's address.
        hosts: { [rwHost]: opts.rwIp },
      },
      { log },
    );
    return { ip: opts.ip, port, objects, servingNames, log, dir, close };
  } catch (e) {
    await close();
    throw e;
  }
}
