// `npm run images` for the vitest global setups that need images (engines, images, e2e) and
// for the benchmarks that run the engine harness. The Docker layer cache makes a build of
// unchanged images take seconds; within one process, what was built is not asked again
// (`npm test` runs the engines and images projects' global setups one after another).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
/** Images this process has built, as <prefix>/<name> (shared by every setup in it). */
const BUILT_ENV = 'SCALABLE_IMAGES_BUILT';

/** Every images/<name> with a Dockerfile, or SCALABLE_IMAGES when it names a subset. */
function allNames(): string[] {
  const subset = process.env['SCALABLE_IMAGES']?.split(/\s+/).filter((n) => n !== '');
  if (subset && subset.length > 0) return subset;
  return readdirSync(join(ROOT, 'images')).filter((n) =>
    existsSync(join(ROOT, 'images', n, 'Dockerfile')),
  );
}

/**
 * Builds the named images (default: all) under SCALABLE_IMAGE_PREFIX, skipping those this
 * process built already. An image that names NODE_BASE needs `node` built first: ask for
 * both, or for all.
 */
export function buildImages(names: readonly string[] = allNames()): void {
  const prefix = process.env['SCALABLE_IMAGE_PREFIX'] || 'ghcr.io/scalable-dev';
  const built = new Set((process.env[BUILT_ENV] ?? '').split(' ').filter((n) => n !== ''));
  const wanted = names.filter((n) => !built.has(`${prefix}/${n}`));
  if (wanted.length === 0) return;
  execFileSync('bash', [join(ROOT, 'scripts', 'images.sh')], {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...process.env, SCALABLE_IMAGES: wanted.join(' ') },
  });
  for (const n of wanted) built.add(`${prefix}/${n}`);
  process.env[BUILT_ENV] = [...built].join(' ');
}
