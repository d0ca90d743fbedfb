// Images of the tiers the operator runs itself. Pinned here, overridable per operator
// install (Helm values -> env), never per app: a platform team owns these.
export interface Images {
  readonly redis: string;
  readonly redisExporter: string;
  readonly postgres: string;
  readonly postgresExporter: string;
}

export const DEFAULT_IMAGES: Images = {
  redis: 'docker.io/library/redis:8.2.3-alpine',
  redisExporter: 'docker.io/oliver006/redis_exporter:v1.80.0',
  // Postgres + Patroni, built from images/patroni/Dockerfile; the tag carries the major.
  postgres: 'ghcr.io/scalable-dev/postgres-patroni:{version}-4.1.5',
  postgresExporter: 'quay.io/prometheuscommunity/postgres-exporter:v0.18.1',
};

/** Operator-level overrides from the environment (set by the Helm chart). */
export function imagesFromEnv(env: Record<string, string | undefined>): Images {
  return {
    redis: env['SCALABLE_IMAGE_REDIS'] ?? DEFAULT_IMAGES.redis,
    redisExporter: env['SCALABLE_IMAGE_REDIS_EXPORTER'] ?? DEFAULT_IMAGES.redisExporter,
    postgres: env['SCALABLE_IMAGE_POSTGRES'] ?? DEFAULT_IMAGES.postgres,
    postgresExporter: env['SCALABLE_IMAGE_POSTGRES_EXPORTER'] ?? DEFAULT_IMAGES.postgresExporter,
  };
}
