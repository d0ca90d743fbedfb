// `npm run cluster:build`: builds the control plane's binaries into the cache (idempotent).
import { ensureSeed } from './seed.ts';
import { ensureBuilt, ensureKubeScore, ensurePrometheus, ensureVersitygw } from './toolchain.ts';

const start = Date.now();
const log = (m: string) => console.log(`[cluster:build] ${m}`);
ensureBuilt(log)
  .then(() => ensureSeed(log))
  // The monitoring tests' promtool and prometheus (not part of the control plane).
  .then(() => ensurePrometheus(log))
  // The manifest linter of `npm run lint`.
  .then(() => ensureKubeScore(log))
  // The S3-compatible store of the backup engine tests.
  .then(() => ensureVersitygw(log))
  .then(
    () => console.log(`[cluster:build] done in ${((Date.now() - start) / 1000).toFixed(0)}s`),
    (err: unknown) => {
      console.error(`[cluster:build] failed: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
