import { describe, expect, it } from 'vitest';
import { DEFAULT_IMAGES, imagesOf } from '../api/images.ts';
import { LEASE_DEFAULTS, SettingsError, parseSettings } from './settings.ts';

const problemsOf = (env: Record<string, string>): readonly string[] => {
  try {
    parseSettings(env);
  } catch (err) {
    if (err instanceof SettingsError) return err.problems;
    throw err;
  }
  return [];
};

describe('parseSettings', () => {
  it('gives the defaults when nothing is set', () => {
    const s = parseSettings({});
    expect(s).toMatchObject({
      workers: 16,
      resyncMs: 300_000,
      discoveryRefreshMs: 60_000,
      watchIdleMs: 200_000,
      leaderElection: true,
      leaseName: 'scalable-operator',
      leaseNamespace: 'default',
      lease: { leaseDurationMs: 30_000, renewDeadlineMs: 20_000, retryPeriodMs: 2_000 },
      httpPort: 8080,
      httpHost: '0.0.0.0',
      apiQps: 200,
      apiBurst: 400,
      watchNamespaces: undefined,
      images: DEFAULT_IMAGES,
    });
  });

  it('reads every value that is set', () => {
    const s = parseSettings({
      SCALABLE_WORKERS: '4',
      SCALABLE_RESYNC_SECONDS: '60',
      SCALABLE_LEADER_ELECT: 'false',
      SCALABLE_LEASE_NAME: 'op.example',
      POD_NAMESPACE: 'ops',
      SCALABLE_WATCH_NAMESPACES: 'shop, blog,shop',
      SCALABLE_API_QPS: '2.5',
      SCALABLE_API_BURST: '5',
      SCALABLE_IMAGE_POSTGRES_EXPORTER: 'registry.local/exporter:8',
      SCALABLE_INGRESS_NAMESPACES: 'istio-ingress,contour',
      SCALABLE_DNS_NAMESPACE: 'dns',
      SCALABLE_DNS_POD_LABELS: 'app.kubernetes.io/name=coredns, tier=node',
      SCALABLE_DNS_CIDRS: '169.254.20.10/32,fd00::a/128',
      SCALABLE_API_SERVER_CIDRS: '10.96.0.1/32,172.18.0.2/32',
    });
    expect(s).toMatchObject({
      workers: 4,
      resyncMs: 60_000,
      leaderElection: false,
      leaseName: 'op.example',
      leaseNamespace: 'ops',
      watchNamespaces: ['shop', 'blog'],
      apiQps: 2.5,
      apiBurst: 5,
      images: { ...DEFAULT_IMAGES, postgresExporter: 'registry.local/exporter:8' },
      network: {
        ingressNamespaces: ['istio-ingress', 'contour'],
        monitoringNamespaces: ['monitoring'],
        dns: {
          namespace: 'dns',
          podLabels: { 'app.kubernetes.io/name': 'coredns', tier: 'node' },
          cidrs: ['169.254.20.10/32', 'fd00::a/128'],
        },
        apiServerCidrs: ['10.96.0.1/32', '172.18.0.2/32'],
      },
    });
    expect(parseSettings({}).network.dns).toEqual({
      namespace: 'kube-system',
      podLabels: { 'k8s-app': 'kube-dns' },
      cidrs: [],
    });
  });

  it('reads one variable per image', () => {
    const env: Record<string, string> = {};
    imagesOf((key, name) => (env[name] = `registry.local/${key}:9`));
    expect(Object.keys(env)).toHaveLength(Object.keys(DEFAULT_IMAGES).length);
    expect(parseSettings(env).images).toEqual(imagesOf((key) => `registry.local/${key}:9`));
  });

  it.each([
    ['SCALABLE_WORKERS', '', 'must not be empty'],
    ['SCALABLE_WORKERS', '0', 'from 1 to 256'],
    ['SCALABLE_WORKERS', '2.5', 'whole number'],
    ['SCALABLE_RESYNC_SECONDS', 'soon', 'whole number'],
    ['SCALABLE_RESYNC_SECONDS', '1', 'from 10 to 86400'],
    ['SCALABLE_HTTP_PORT', '70000', 'from 1 to 65535'],
    ['SCALABLE_LEADER_ELECT', 'yes', 'true or false'],
    ['SCALABLE_LEASE_NAME', 'Not_A_Name', 'DNS subdomain'],
    ['POD_NAMESPACE', 'a.b', 'namespace name'],
    ['SCALABLE_WATCH_NAMESPACES', 'shop,,blog', 'namespace names'],
    ['SCALABLE_API_QPS', '-1', 'number from 0.1'],
    ['SCALABLE_API_BURST', 'many', 'whole number'],
    ['SCALABLE_IMAGE_POSTGRES', 'a b', 'image reference'],
    ['SCALABLE_MONITORING_NAMESPACES', 'Prom', 'namespace names'],
    ['SCALABLE_DNS_NAMESPACE', 'Kube_System', 'namespace name'],
    ['SCALABLE_DNS_POD_LABELS', 'k8s-app', 'label=value'],
    ['SCALABLE_DNS_POD_LABELS', 'k8s-app=kube dns', 'label=value'],
    ['SCALABLE_DNS_CIDRS', '169.254.20.10', 'CIDRs'],
    ['SCALABLE_API_SERVER_CIDRS', 'kubernetes.default', 'CIDRs'],
  ])('%s=%j is an error naming the variable', (name, value, says) => {
    const problems = problemsOf({ [name]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(`${name}:`);
    expect(problems[0]).toContain(says);
  });

  it('reports every bad variable at once', () => {
    const problems = problemsOf({ SCALABLE_WORKERS: 'x', SCALABLE_RESYNC_SECONDS: 'y' });
    expect(problems.map((p) => p.split(':')[0])).toEqual([
      'SCALABLE_WORKERS',
      'SCALABLE_RESYNC_SECONDS',
    ]);
  });

  it('takes the lease defaults from one place, in the order leader election needs', () => {
    const { lease } = parseSettings({});
    expect(lease).toEqual(LEASE_DEFAULTS);
    // The leader gives up before a standby may take over, with a retry period to spare, and
    // several attempts (with client-go's 20 % jitter) fit in the renew deadline.
    expect(lease.renewDeadlineMs + lease.retryPeriodMs).toBeLessThan(lease.leaseDurationMs);
    expect(lease.retryPeriodMs * 1.2 * 5).toBeLessThanOrEqual(lease.renewDeadlineMs);
  });

  it('keeps the lease timings in the order leader election needs', () => {
    expect(problemsOf({ SCALABLE_LEASE_RENEW_DEADLINE_SECONDS: '30' })).toEqual([
      'SCALABLE_LEASE_RENEW_DEADLINE_SECONDS: must be less than SCALABLE_LEASE_DURATION_SECONDS',
    ]);
    expect(problemsOf({ SCALABLE_LEASE_RETRY_SECONDS: '20' })).toEqual([
      'SCALABLE_LEASE_RETRY_SECONDS: must be less than SCALABLE_LEASE_RENEW_DEADLINE_SECONDS',
    ]);
  });
});
