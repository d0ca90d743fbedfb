// The project's images every e2e cluster gets (`kind load`), named as the chart names them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const DEFAULT_PREFIX = 'ghcr.io/scalable-dev';
/**
 * SCALABLE_IMAGE_PREFIX (as for `npm run images`): a private prefix keeps a run's images from
 * being retagged by another build on the same Docker daemon while the suite runs.
 */
export const IMAGE_PREFIX = process.env['SCALABLE_IMAGE_PREFIX'] || DEFAULT_PREFIX;

/** helm --set flags that point the chart at the images under IMAGE_PREFIX. */
export function imageValues(): string[] {
  if (IMAGE_PREFIX === DEFAULT_PREFIX) return [];
  return [
    '--set',
    `image.repository=${IMAGE_PREFIX}/operator`,
    '--set',
    `images.prefix=${IMAGE_PREFIX}`,
  ];
}

export function appVersion(root: string): string {
  const chart = readFileSync(join(root, 'charts', 'scalable-operator', 'Chart.yaml'), 'utf8');
  const m = /^appVersion:\s*["']?([^"'\s]+)/m.exec(chart);
  if (!m?.[1]) throw new Error('no appVersion in charts/scalable-operator/Chart.yaml');
  return m[1];
}

/** Postgres major the e2e apps run (the operator's default database.version). */
export const PG_MAJOR = '17';

export function projectImages(root: string): string[] {
  const v = appVersion(root);
  return [
    `${IMAGE_PREFIX}/operator:${v}`,
    `${IMAGE_PREFIX}/redis:${v}`,
    `${IMAGE_PREFIX}/redis-exporter:${v}`,
    `${IMAGE_PREFIX}/postgres-patroni:${PG_MAJOR}-${v}`,
    `${IMAGE_PREFIX}/postgres-exporter:${v}`,
    `${IMAGE_PREFIX}/pgbouncer:${v}`,
    `${IMAGE_PREFIX}/photoshare:${v}`,
  ];
}
