// Which optional APIs `scalable render` renders for, as `helm template --api-versions` does.
// The operator skips objects of an API the cluster does not serve (runtime/discovery.ts) and
// issues TLS itself where cert-manager is absent; an offline render that printed them all
// would fail `kubectl apply` on a plain cluster ("no matches for kind Certificate"). So the
// built-in kinds are always rendered, an add-on's only when the user names its API.
import { OWNED_KINDS, apiVersionOf } from '../reconcile/kinds.ts';
import type { K8sObject } from '../tiers/shared/chart.ts';
import { IF_SERVED_ANNOTATION } from '../tiers/shared/meta.ts';

/** `group/version` (every kind of it) or `group/version/Kind` (that kind only). */
const API_VERSION_PATTERN =
  /^(?:[a-z0-9]([a-z0-9.-]*[a-z0-9])?\/)?v[0-9]+[a-z0-9]*(?:\/[A-Z][A-Za-z0-9]*)?$/;

export type ApiSelection =
  { readonly all: true } | { readonly all: false; readonly served: ReadonlySet<string> };

/** Parses the --api-versions values; an error names the flag and the value. */
export function parseApiVersions(
  values: readonly string[],
  all: boolean,
): { ok: true; selection: ApiSelection } | { ok: false; error: string } {
  if (all) return { ok: true, selection: { all: true } };
  const bad = values.find((v) => !API_VERSION_PATTERN.test(v));
  if (bad !== undefined) {
    return {
      ok: false,
      error: `--api-versions: "${bad}" is not group/version or group/version/Kind (e.g. cert-manager.io/v1, monitoring.coreos.com/v1/PodMonitor)`,
    };
  }
  return { ok: true, selection: { all: false, served: new Set(values) } };
}

const OPTIONAL = new Set(
  OWNED_KINDS.filter((k) => k.optional).map((k) => `${apiVersionOf(k)}/${k.kind}`),
);

/** Whether the target cluster serves `obj`'s kind: built-in kinds always, an add-on's if named. */
export function isServed(obj: K8sObject, selection: ApiSelection): boolean {
  const kindKey = `${obj.apiVersion}/${obj.kind}`;
  if (selection.all || !OPTIONAL.has(kindKey)) return true;
  return selection.served.has(obj.apiVersion) || selection.served.has(kindKey);
}

/** The objects to print, and one line per object left out (for stderr). */
export function selectServed(
  objects: readonly K8sObject[],
  selection: ApiSelection,
): { kept: K8sObject[]; leftOut: string[] } {
  const kept: K8sObject[] = [];
  const leftOut: string[] = [];
  for (const o of objects) {
    if (isServed(o, selection)) {
      kept.push(o);
      continue;
    }
    const fallback =
      o.metadata.annotations?.[IF_SERVED_ANNOTATION] === 'true'
        ? ' (without it the operator issues the certificate into the Secret itself)'
        : '';
    leftOut.push(
      `left out ${o.apiVersion} ${o.kind} ${o.metadata.name}: its API was not named with --api-versions${fallback}`,
    );
  }
  return { kept, leftOut };
}
