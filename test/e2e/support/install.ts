// What installing an add-on into the kind cluster takes: its one binary in a Debian image of
// ours, its objects applied server-side, its Deployment and API waited for.
import { chmod, copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import yaml from 'js-yaml';
import { run } from '../../../devcluster/exec.ts';
import type { Doc } from './addons.ts';
import { kubectl, type KindCluster } from './cluster.ts';

export async function applyDocs(c: KindCluster, docs: readonly Doc[]): Promise<void> {
  await kubectl(
    c,
    ['apply', '--server-side', '--force-conflicts', '-f', '-'],
    docs.map((d) => yaml.dump(d, { lineWidth: -1, noRefs: true })).join('---\n'),
  );
}

export async function waitAvailable(c: KindCluster, ns: string, deployment: string) {
  await kubectl(c, ['rollout', 'status', `deployment/${deployment}`, '-n', ns, '--timeout=300s']);
}

/** Until an aggregated API is Available (its server answers the API server's checks). */
export async function waitApiService(c: KindCluster, name: string): Promise<void> {
  await kubectl(c, ['wait', '--for=condition=Available', `apiservice/${name}`, '--timeout=300s']);
}

/**
 * An image of one static binary on the Debian base the project's images use, at `path` in the
 * image (where upstream's image has it, so upstream's command and args work), run as a
 * non-root uid. Docker's layer cache makes a rebuild of an unchanged binary a no-op.
 */
export async function buildBinaryImage(opts: {
  readonly base: string;
  readonly binary: string;
  readonly path: string;
  readonly tag: string;
}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'addon-image-'));
  try {
    const name = basename(opts.binary);
    await copyFile(opts.binary, join(dir, name));
    await chmod(join(dir, name), 0o555); // the classic builder has no COPY --chmod
    await writeFile(
      join(dir, 'Dockerfile'),
      [
        'ARG BASE',
        'FROM ${BASE}',
        `COPY ${name} ${opts.path}`,
        'USER 65532:65532',
        `ENTRYPOINT ["${opts.path}"]`,
        '',
      ].join('\n'),
    );
    await run('docker', ['build', '-q', '--build-arg', `BASE=${opts.base}`, '-t', opts.tag, dir]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return opts.tag;
}
