// Builds every image once per run (`npm run images`: layer cache, so seconds when nothing
// changed; the first run on a machine builds the Debian base and every layer).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export default function setup(): void {
  const root = join(import.meta.dirname, '..', '..');
  execFileSync('bash', [join(root, 'scripts', 'images.sh')], { cwd: root, stdio: 'inherit' });
}
