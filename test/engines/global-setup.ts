// vitest global setup of the engines project: the engine tests run the project's images
// (containers.ts), so they are built first (Docker's layer cache: about a second when
// nothing changed; scripts/images.sh starts dockerd when none answers). Containers a crashed
// run of this control-plane home left behind are removed before and after.
import { buildImages } from '../images/build.ts';
import { ENGINE_IMAGE_NAMES, sweepContainers } from './containers.ts';

export default function setup(): () => void {
  buildImages(ENGINE_IMAGE_NAMES);
  const left = sweepContainers();
  if (left.length > 0) console.warn(`[engines] removed ${left.length} containers of a past run`);
  return () => void sweepContainers();
}
