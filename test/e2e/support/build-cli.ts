// `npm run e2e:build`: builds (or finds) every binary of the kind e2e cluster, then the
// scale-out add-ons' (metrics-server), so `npm test` builds them all in the background of its
// first vitest run.
import { ensureScaleBinaries } from './scale-toolchain.ts';
import { ensureKindBinaries, kindDir } from './toolchain.ts';

const start = Date.now();
const log = (m: string) => console.log(`[e2e:build] ${m}`);
ensureKindBinaries(log)
  .then(() => ensureScaleBinaries(log))
  .then(
    () => log(`done in ${((Date.now() - start) / 1000).toFixed(0)}s: ${kindDir()}`),
    (err: unknown) => {
      console.error(`[e2e:build] failed: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
