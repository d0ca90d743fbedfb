// `npm run cluster:build`: builds the control plane's binaries into the cache (idempotent).
import { ensureBuilt } from './toolchain.ts';

const start = Date.now();
ensureBuilt((m) => console.log(`[cluster:build] ${m}`)).then(
  () => console.log(`[cluster:build] done in ${((Date.now() - start) / 1000).toFixed(0)}s`),
  (err: unknown) => {
    console.error(`[cluster:build] failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
