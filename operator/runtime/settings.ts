// Every SCALABLE_* setting of the operator process, parsed and bounded once at start. A value
// that is set but wrong (empty, not a number, out of range, not a name) is an error naming the
// variable: main.ts exits non-zero before touching the cluster, instead of running with 0
// workers or a resync that fires every millisecond (what `Number("")` and `Number("x")` gave).
// Pure: takes the environment, returns the settings or every problem at once.
import { parseCidr } from '../api/cidr.ts';
import { DEFAULT_IMAGES, imagesOf } from '../api/images.ts';
import type { Images } from '../api/images.ts';
import { DEFAULT_NETWORK, DEFAULT_RBAC } from '../api/model.ts';
import type { NetworkDefaults, RbacDefaults } from '../api/model.ts';

export interface LeaseTiming {
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
}

/**
 * Leader election defaults, in seconds: twice client-go's 15 / 10 / 2 for the lease and the
 * renew deadline. A renewal is late when the API server is slow or this process is starved of
 * CPU (its event loop stalled); bench:operator saw attempts of 3.4 s after a 3.1 s stall at load
 * average ~14 on 2 cores, and an earlier run at ~23 missed the 10 s deadline and exited. A 20 s
 * deadline rides out twice that; the cost is a crashed leader replaced after up to 30 s instead
 * of 15 (a graceful stop still hands over at once). The retry stays 2 s: about ten attempts
 * fit in the deadline, and a renewal is one request (0.5 req/s). Order as client-go: the
 * leader gives up (renew deadline) before anyone may take over (lease duration).
 */
export const LEASE_DEFAULT_SECONDS = { duration: 30, renewDeadline: 20, retry: 2 } as const;

/** The same in milliseconds, as the elector takes them. */
export const LEASE_DEFAULTS: LeaseTiming = {
  leaseDurationMs: LEASE_DEFAULT_SECONDS.duration * 1000,
  renewDeadlineMs: LEASE_DEFAULT_SECONDS.renewDeadline * 1000,
  retryPeriodMs: LEASE_DEFAULT_SECONDS.retry * 1000,
};

export interface Settings {
  readonly workers: number;
  readonly resyncMs: number;
  /** Between the steps of a move to a new CA (reconcile/certificates.ts issuePlan). */
  readonly tlsTrustHoldMs: number;
  readonly discoveryRefreshMs: number;
  readonly watchIdleMs: number;
  readonly leaderElection: boolean;
  readonly leaseName: string;
  /** Where the Lease lives: the operator's own namespace (POD_NAMESPACE). */
  readonly leaseNamespace: string;
  readonly lease: LeaseTiming;
  readonly httpPort: number;
  readonly httpHost: string;
  readonly statusLines: boolean;
  /** False in the image: never start a development control plane. */
  readonly embeddedAllowed: boolean;
  readonly images: Images;
  /** Namespaces to watch (Roles there); undefined: every namespace (ClusterRole). */
  readonly watchNamespaces: readonly string[] | undefined;
  /**
   * Client-side rate limit of API requests: client-go's token bucket. QPS 200 / burst 400,
   * above controller-runtime's 20 / 30: a burst of 200 new apps is about 2,100 requests
   * (children, finalizers, statuses, events) where `kubectl apply --server-side` of the same
   * objects sends 1,600, unthrottled; on an idle machine QPS 100 held the operator to 18 s
   * against kubectl's 10-15 s (median ratio 1.57), 200 to 9-12 s (0.90; bench:operator).
   * The limit only shapes bursts (a converged operator writes nothing), and the API server
   * guards itself with priority and fairness.
   */
  readonly apiQps: number;
  readonly apiBurst: number;
  /** Writes one reconcile may have in flight at once. */
  readonly reconcileConcurrency: number;
  /** Who may reach web pods (ingress controllers) and metrics ports (Prometheus). */
  readonly network: NetworkDefaults;
  /** The chart's Patroni ClusterRole, which database tiers bind (SCALABLE_PATRONI_CLUSTER_ROLE). */
  readonly rbac: RbacDefaults;
}

export class SettingsError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid settings:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'SettingsError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Reads one variable at a time, collecting problems instead of throwing at the first. */
class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  private raw(name: string): string | undefined {
    const v = this.env[name];
    if (v === undefined) return undefined;
    if (v.trim() === '') {
      this.problems.push(`${name}: must not be empty (unset it for the default)`);
      return undefined;
    }
    return v.trim();
  }

  int(name: string, dflt: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined) return dflt;
    if (!/^[0-9]+$/.test(v)) {
      this.problems.push(`${name}: must be a whole number from ${min} to ${max} (got "${v}")`);
      return dflt;
    }
    const n = Number(v);
    if (n < min || n > max) {
      this.problems.push(`${name}: must be from ${min} to ${max} (got ${v})`);
      return dflt;
    }
    return n;
  }

  number(name: string, dflt: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined) return dflt;
    const n = /^[0-9]+(\.[0-9]+)?$/.test(v) ? Number(v) : NaN;
    if (!Number.isFinite(n) || n < min || n > max) {
      this.problems.push(`${name}: must be a number from ${min} to ${max} (got "${v}")`);
      return dflt;
    }
    return n;
  }

  bool(name: string, dflt: boolean): boolean {
    const v = this.raw(name);
    if (v === undefined) return dflt;
    if (v === 'true') return true;
    if (v === 'false') return false;
    this.problems.push(`${name}: must be true or false (got "${v}")`);
    return dflt;
  }

  name(name: string, dflt: string, pattern: RegExp, max: number, what: string): string {
    const v = this.raw(name);
    if (v === undefined) return dflt;
    if (v.length > max || !pattern.test(v)) {
      this.problems.push(`${name}: must be ${what} (got "${v}")`);
      return dflt;
    }
    return v;
  }

  text(name: string, dflt: string, check: (v: string) => boolean, what: string): string {
    const v = this.raw(name);
    if (v === undefined) return dflt;
    if (!check(v)) {
      this.problems.push(`${name}: must be ${what} (got "${v}")`);
      return dflt;
    }
    return v;
  }

  namespaces(name: string): readonly string[] | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    const list = v.split(',').map((s) => s.trim());
    const bad = list.filter((s) => s.length > 63 || !DNS_LABEL.test(s));
    if (bad.length > 0) {
      this.problems.push(
        `${name}: must be a comma-separated list of namespace names (bad: ${bad.map((b) => `"${b}"`).join(', ')})`,
      );
      return undefined;
    }
    return [...new Set(list)];
  }

  /** `key=value,key=value`: label keys (optional prefix/) and values as Kubernetes has them. */
  labels(name: string): Readonly<Record<string, string>> | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    const out: Record<string, string> = {};
    const bad: string[] = [];
    for (const pair of v.split(',').map((s) => s.trim())) {
      const eq = pair.indexOf('=');
      const key = eq < 0 ? '' : pair.slice(0, eq);
      const value = eq < 0 ? '' : pair.slice(eq + 1);
      if (!LABEL_KEY.test(key) || !LABEL_VALUE.test(value)) bad.push(pair);
      else out[key] = value;
    }
    if (bad.length > 0 || Object.keys(out).length === 0) {
      this.problems.push(
        `${name}: must be a comma-separated list of label=value (bad: ${bad.map((b) => `"${b}"`).join(', ') || 'none given'})`,
      );
      return undefined;
    }
    return out;
  }

  cidrs(name: string): readonly string[] | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    const list = v.split(',').map((s) => s.trim());
    const bad = list.filter((s) => parseCidr(s) === undefined);
    if (bad.length > 0) {
      this.problems.push(
        `${name}: must be a comma-separated list of CIDRs such as 169.254.20.10/32 (bad: ${bad.map((b) => `"${b}"`).join(', ')})`,
      );
      return undefined;
    }
    return [...new Set(list)];
  }
}

const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

const imageRef = (v: string): boolean => !/\s/.test(v) && v.length <= 512;

export function parseSettings(env: Env): Settings {
  const r = new Reader(env);
  const seconds = (name: string, dflt: number, min: number, max: number) =>
    r.int(name, dflt, min, max) * 1000;
  const image = (name: string, dflt: string) =>
    r.text(name, dflt, imageRef, 'an image reference without spaces');
  const lease: LeaseTiming = {
    leaseDurationMs: seconds(
      'SCALABLE_LEASE_DURATION_SECONDS',
      LEASE_DEFAULT_SECONDS.duration,
      2,
      300,
    ),
    renewDeadlineMs: seconds(
      'SCALABLE_LEASE_RENEW_DEADLINE_SECONDS',
      LEASE_DEFAULT_SECONDS.renewDeadline,
      1,
      299,
    ),
    retryPeriodMs: seconds('SCALABLE_LEASE_RETRY_SECONDS', LEASE_DEFAULT_SECONDS.retry, 1, 60),
  };
  // client-go's rules: the leader gives up before anyone may take over, and retries in time.
  if (lease.renewDeadlineMs >= lease.leaseDurationMs)
    r.problems.push(
      'SCALABLE_LEASE_RENEW_DEADLINE_SECONDS: must be less than SCALABLE_LEASE_DURATION_SECONDS',
    );
  if (lease.retryPeriodMs >= lease.renewDeadlineMs)
    r.problems.push(
      'SCALABLE_LEASE_RETRY_SECONDS: must be less than SCALABLE_LEASE_RENEW_DEADLINE_SECONDS',
    );
  const settings: Settings = {
    workers: r.int('SCALABLE_WORKERS', 16, 1, 256),
    resyncMs: seconds('SCALABLE_RESYNC_SECONDS', 300, 10, 86_400),
    tlsTrustHoldMs: seconds('SCALABLE_TLS_TRUST_HOLD_SECONDS', 600, 0, 604_800),
    discoveryRefreshMs: seconds('SCALABLE_REDISCOVER_SECONDS', 60, 5, 86_400),
    // Longer than the server's watch timeout (120-180 s), or healthy watches count as stalled.
    watchIdleMs: seconds('SCALABLE_WATCH_IDLE_SECONDS', 200, 30, 3_600),
    leaderElection: r.bool('SCALABLE_LEADER_ELECT', true),
    leaseName: r.name(
      'SCALABLE_LEASE_NAME',
      'scalable-operator',
      DNS_SUBDOMAIN,
      253,
      'a DNS subdomain name (lower case, digits, - and .)',
    ),
    leaseNamespace: r.name(
      'POD_NAMESPACE',
      'default',
      DNS_LABEL,
      63,
      'a namespace name (lower case, digits and -)',
    ),
    lease,
    httpPort: r.int('SCALABLE_HTTP_PORT', 8080, 1, 65_535),
    httpHost: r.text(
      'SCALABLE_HTTP_HOST',
      '0.0.0.0',
      (v) => /^[A-Za-z0-9.:[\]-]+$/.test(v),
      'an IP address or host name',
    ),
    statusLines: r.bool('SCALABLE_STATUS_LINES', false),
    embeddedAllowed: r.bool('SCALABLE_EMBEDDED', true),
    images: imagesOf((key, env) => image(env, DEFAULT_IMAGES[key])),
    watchNamespaces: r.namespaces('SCALABLE_WATCH_NAMESPACES'),
    apiQps: r.number('SCALABLE_API_QPS', 200, 0.1, 10_000),
    apiBurst: r.int('SCALABLE_API_BURST', 400, 1, 10_000),
    reconcileConcurrency: r.int('SCALABLE_RECONCILE_CONCURRENCY', 8, 1, 64),
    network: {
      ingressNamespaces:
        r.namespaces('SCALABLE_INGRESS_NAMESPACES') ?? DEFAULT_NETWORK.ingressNamespaces,
      monitoringNamespaces:
        r.namespaces('SCALABLE_MONITORING_NAMESPACES') ?? DEFAULT_NETWORK.monitoringNamespaces,
      dns: {
        namespace: r.name(
          'SCALABLE_DNS_NAMESPACE',
          DEFAULT_NETWORK.dns.namespace,
          DNS_LABEL,
          63,
          'a namespace name (lower case, digits and -)',
        ),
        podLabels: r.labels('SCALABLE_DNS_POD_LABELS') ?? DEFAULT_NETWORK.dns.podLabels,
        cidrs: r.cidrs('SCALABLE_DNS_CIDRS') ?? DEFAULT_NETWORK.dns.cidrs,
      },
      apiServerCidrs: r.cidrs('SCALABLE_API_SERVER_CIDRS') ?? DEFAULT_NETWORK.apiServerCidrs,
    },
    rbac: {
      patroniClusterRole: r.name(
        'SCALABLE_PATRONI_CLUSTER_ROLE',
        DEFAULT_RBAC.patroniClusterRole,
        DNS_SUBDOMAIN,
        253,
        'a ClusterRole name (lower case, digits, - and .)',
      ),
    },
  };
  if (r.problems.length > 0) throw new SettingsError(r.problems);
  return settings;
}
