// Scrape objects: one PodMonitor per tier that is on. PodMonitors rather than
// ServiceMonitors: the session store has two Services over one pod (the pod would be scraped
// twice), a replicated cache has no ClusterIP Service, and replicas of a database shard sit
// behind no Service that carries their metrics ports. Each endpoint copies the app, tier and
// (database) shard from the pod's labels onto every series: alerts and dashboard select by them.
import { POOLER_SHARD_LABEL } from '../pooler/build.ts';
import type { AppModel } from '../../api/model.ts';
import { SCOPE_LABEL, shardName, tlsCommonName } from '../database/names.ts';
import { TLS_FILES, tlsSecretName } from '../shared/tls/objects.ts';
import type { K8sObject } from '../shared/chart.ts';
import { APP_LABEL, TIER_LABEL, selectorOf } from '../shared/meta.ts';
import { webMetricsPort } from '../web/build.ts';
import { monitoringMetadata } from './meta.ts';
import { SERIES_LABELS, podLabelMeta, podMonitorName } from './names.ts';

export const SCRAPE_INTERVAL = '30s';

export interface Relabeling {
  readonly sourceLabels: readonly string[];
  readonly targetLabel: string;
  readonly regex?: string;
  readonly replacement?: string;
}

export interface PodMetricsEndpoint {
  /** The container port's name in the pod template. */
  readonly port: string;
  readonly path: string;
  readonly interval: string;
  readonly relabelings: readonly Relabeling[];
  readonly scheme?: 'https';
  readonly tlsConfig?: {
    readonly ca: { readonly secret: { readonly name: string; readonly key: string } };
    readonly serverName: string;
  };
}

const copy = (label: string, target: string): Relabeling => ({
  sourceLabels: [podLabelMeta(label)],
  targetLabel: target,
});

const TIER_RELABELINGS: readonly Relabeling[] = [
  copy(APP_LABEL, SERIES_LABELS.app),
  copy(TIER_LABEL, SERIES_LABELS.tier),
];

/** The shard number from the Patroni scope label (<app>-db-<i>). */
const SHARD_RELABELING: Relabeling = {
  sourceLabels: [podLabelMeta(SCOPE_LABEL)],
  targetLabel: SERIES_LABELS.shard,
  regex: '.+-([0-9]+)',
  replacement: '$1',
};

function endpoint(port: string, path = '/metrics', extra: Relabeling[] = []): PodMetricsEndpoint {
  return { port, path, interval: SCRAPE_INTERVAL, relabelings: [...TIER_RELABELINGS, ...extra] };
}

/**
 * Patroni's REST API speaks HTTPS when the database has TLS: Prometheus verifies it against
 * the CA (shard 0's Secret, its ca.crt only; one CA signs every shard) by the name
 * every shard's certificate carries, since it scrapes pods by IP.
 */
function patroniEndpoint(app: AppModel): PodMetricsEndpoint {
  const plain = endpoint('patroni', '/metrics', [SHARD_RELABELING]);
  if (!app.database?.tls) return plain;
  return {
    ...plain,
    scheme: 'https',
    tlsConfig: {
      ca: { secret: { name: tlsSecretName(shardName(app, 0)), key: TLS_FILES.ca } },
      serverName: tlsCommonName(app),
    },
  };
}

function podMonitor(
  app: AppModel,
  tier: string,
  selector: Record<string, string>,
  endpoints: PodMetricsEndpoint[],
): K8sObject {
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PodMonitor',
    metadata: monitoringMetadata(app, podMonitorName(app, tier), tier),
    spec: {
      selector: { matchLabels: selector },
      namespaceSelector: { matchNames: [app.namespace] },
      podMetricsEndpoints: endpoints,
    },
  };
}

export function buildScrapeObjects(app: AppModel): K8sObject[] {
  const web = webMetricsPort(app);
  return [
    ...(web && app.web.metrics
      ? [podMonitor(app, 'web', selectorOf(app, 'web'), [endpoint(web.name, app.web.metrics.path)])]
      : []),
    // The redis_exporter sidecar's port is named 'metrics' in every Redis tier (engines/redis/pod.ts).
    ...(app.cache
      ? [podMonitor(app, 'cache', selectorOf(app, 'cache'), [endpoint('metrics')])]
      : []),
    ...(app.sessions
      ? [podMonitor(app, 'sessions', selectorOf(app, 'sessions'), [endpoint('metrics')])]
      : []),
    // The queue store's pods only (component queue): not its Sentinels, not the workers.
    ...(app.queue
      ? [podMonitor(app, 'queue', selectorOf(app, 'queue'), [endpoint('metrics')])]
      : []),
    // PgBouncer's exporter, per shard's pooler pods (operator/tiers/pooler).
    ...(app.database?.pooler && app.database.tls
      ? [
          podMonitor(app, 'pooler', selectorOf(app, 'pooler', 'pgbouncer'), [
            endpoint('metrics', '/metrics', [
              {
                sourceLabels: [podLabelMeta(POOLER_SHARD_LABEL)],
                targetLabel: SERIES_LABELS.shard,
              },
            ]),
          ]),
        ]
      : []),
    ...(app.database
      ? [
          podMonitor(app, 'database', selectorOf(app, 'database', 'postgres'), [
            // postgres_exporter, and Patroni's REST API (leader, sync standby, WAL positions).
            endpoint('metrics', '/metrics', [SHARD_RELABELING]),
            patroniEndpoint(app),
          ]),
        ]
      : []),
  ];
}
