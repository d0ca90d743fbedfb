// `npm run e2e:build`: builds (or finds) every binary of the kind e2e cluster, then the
// scale-out add-ons' (metrics-server, KEDA's metrics adapter), so `npm test` builds them all
// in the background of its first vitest run. When Docker answers and the Debian base exists
// (the engines project builds it at the start of that run), the kind node image is assembled
// too: about 100 s on empty caches that the e2e setup then finds cached. Without them, that
// setup builds it.
import { run } from '../../../devcluster/exec.ts';
import { debianBase, ensureNodeImage, nodeImageChoice } from './node-image.ts';
import { ensureScaleBinaries } from './scale-toolchain.ts';
import { ensureKindBinaries, kindDir } from './toolchain.ts';

const start = Date.now();
const log = (m: string) => console.log(`[e2e:build] ${m}`);

async function nodeImageIfPossible(): Promise<void> {
  if (nodeImageChoice().kind !== 'local') return;
  const docker = await run('docker', ['info']).then(
    () => true,
    () => false,
  );
  const base = docker ? await debianBase().catch(() => undefined) : undefined;
  if (!base) {
    log('node image: left to the e2e setup (no Docker daemon or no Debian base yet)');
    return;
  }
  await ensureNodeImage(log);
}

ensureKindBinaries(log)
  .then(() => ensureScaleBinaries(log))
  .then(() => nodeImageIfPossible())
  .then(
    () => log(`done in ${((Date.now() - start) / 1000).toFixed(0)}s: ${kindDir()}`),
    (err: unknown) => {
      console.error(`[e2e:build] failed: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
