// PromQL text helpers: one app's PrometheusRule and dashboard select only its own series, so
// each query carries the app's namespace and name; names are DNS labels (nothing to escape).
import type { AppModel } from '../../api/model.ts';
import { SERIES_LABELS } from './names.ts';

export type Matchers = Readonly<Record<string, string>>;

/** `{a="x", b=~"y"}`: a value starting with `~` is a regex matcher. */
export function selector(m: Matchers): string {
  const parts = Object.entries(m).map(([k, v]) =>
    v.startsWith('~') ? `${k}=~"${v.slice(1)}"` : `${k}="${v}"`,
  );
  return `{${parts.join(', ')}}`;
}

/** Series scraped from one tier of this app (labels the PodMonitors add). */
export const tierSeries = (app: AppModel, tier: string, extra: Matchers = {}): string =>
  selector({
    namespace: app.namespace,
    [SERIES_LABELS.app]: app.name,
    [SERIES_LABELS.tier]: tier,
    ...extra,
  });

/** kube-state-metrics / kubelet series of this app's namespace. */
export const nsSeries = (app: AppModel, extra: Matchers = {}): string =>
  selector({ namespace: app.namespace, ...extra });

/** The labels a per-tier aggregation keeps. */
export const BY_TIER = `namespace, ${SERIES_LABELS.app}, ${SERIES_LABELS.tier}`;
export const BY_SHARD = `${BY_TIER}, ${SERIES_LABELS.shard}`;
