// Images of the tiers the operator runs itself. Overridable per operator install (Helm
// values -> env), never per app: a platform team owns these.
//
// The defaults are the project's own images: images/<name>/Dockerfile, built from Debian
// trixie packages by `npm run images` and tagged <prefix>/<name>:<appVersion>. IMAGE_TAG is
// the chart's appVersion and package.json's version (a unit test keeps the three equal).
export interface Images {
  readonly redis: string;
  readonly redisExporter: string;
  readonly postgres: string;
  readonly postgresExporter: string;
  /** PgBouncer and its exporter (database.pooler). */
  readonly pgbouncer: string;
}

export const IMAGE_PREFIX = 'ghcr.io/scalable-dev';
export const IMAGE_TAG = '0.1.0';

export const DEFAULT_IMAGES: Images = {
  // redis-server + redis-sentinel + redis-cli, uid 999.
  redis: `${IMAGE_PREFIX}/redis:${IMAGE_TAG}`,
  redisExporter: `${IMAGE_PREFIX}/redis-exporter:${IMAGE_TAG}`,
  // Postgres + Patroni; {version} is database.version (the image is tagged <major>-<tag>;
  // Debian trixie carries Postgres 17, so that is the major `npm run images` builds).
  postgres: `${IMAGE_PREFIX}/postgres-patroni:{version}-${IMAGE_TAG}`,
  postgresExporter: `${IMAGE_PREFIX}/postgres-exporter:${IMAGE_TAG}`,
  pgbouncer: `${IMAGE_PREFIX}/pgbouncer:${IMAGE_TAG}`,
};

/**
 * Images chosen per image by `pick`, given its key and the operator's environment variable
 * for it (the chart's deployment sets them; runtime/settings.ts reads them).
 */
export const imagesOf = (pick: (key: keyof Images, env: string) => string): Images => ({
  redis: pick('redis', 'SCALABLE_IMAGE_REDIS'),
  redisExporter: pick('redisExporter', 'SCALABLE_IMAGE_REDIS_EXPORTER'),
  postgres: pick('postgres', 'SCALABLE_IMAGE_POSTGRES'),
  postgresExporter: pick('postgresExporter', 'SCALABLE_IMAGE_POSTGRES_EXPORTER'),
  pgbouncer: pick('pgbouncer', 'SCALABLE_IMAGE_PGBOUNCER'),
});
