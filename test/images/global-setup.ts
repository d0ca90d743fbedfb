// Builds every image once per run (`npm run images`: layer cache, so seconds when nothing
// changed; the first run on a machine builds the Debian base and every layer). The engines
// project's setup, earlier in the same run, has built the engine images already.
import { buildImages } from './build.ts';

export default function setup(): void {
  buildImages();
}
