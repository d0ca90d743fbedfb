// docs/compatibility.md states the versions the project is tested with: each row must name the
// version its source pins, and the charts' kubeVersion the floor the page explains.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BINARY_VERSIONS, CRD_VERSIONS, PROMETHEUS } from '../../devcluster/versions.ts';
import { KIND_VERSIONS } from '../e2e/support/versions.ts';
import { CERT_MANAGER_MODULE } from '../integration/cert-manager.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const PAGE = read('docs/compatibility.md');

/** An `ARG NAME=value` of a Dockerfile. */
function arg(dockerfile: string, name: string): string {
  const m = new RegExp(`^ARG ${name}=(.+)$`, 'm').exec(read(dockerfile));
  if (!m?.[1]) throw new Error(`${dockerfile}: no ARG ${name}`);
  return m[1].trim();
}

/** The "Tested with" table: component -> version cell. */
function table(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of PAGE.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 5 || cells[1] === 'Component' || /^-+$/.test(cells[1] ?? '')) continue;
    rows.set(cells[1] ?? '', cells[2] ?? '');
  }
  return rows;
}

const pinned: Record<string, string> = {
  'Kubernetes (embedded and kind)': BINARY_VERSIONS.kubernetes,
  etcd: BINARY_VERSIONS.etcd,
  Helm: BINARY_VERSIONS.helm,
  kind: KIND_VERSIONS.kind,
  'containerd (kind nodes)': KIND_VERSIONS.containerd,
  'flannel + kube-router (kind)': `${KIND_VERSIONS.flannel}, ${KIND_VERSIONS.kubeRouter}`,
  'KEDA (CRDs; operator on kind)': CRD_VERSIONS.keda,
  'Prometheus Operator CRDs': CRD_VERSIONS.prometheusOperator,
  'Prometheus (rule tests)': PROMETHEUS.release,
  'Gateway API CRDs': CRD_VERSIONS.gatewayApi,
  'Traefik CRDs': CRD_VERSIONS.traefik,
  'cert-manager CRDs': CERT_MANAGER_MODULE.split('@')[1] ?? '',
  'Node.js (operator image, npm)': arg('images/node/Dockerfile', 'NODE_VERSION'),
  PostgreSQL: arg('images/postgres-patroni/Dockerfile', 'POSTGRESQL_VERSION'),
  Patroni: arg('images/postgres-patroni/Dockerfile', 'PATRONI_VERSION'),
  'Redis and Sentinel': arg('images/redis/Dockerfile', 'REDIS_VERSION'),
  redis_exporter: arg('images/redis-exporter/Dockerfile', 'REDIS_EXPORTER_VERSION'),
  postgres_exporter: arg('images/postgres-exporter/Dockerfile', 'POSTGRES_EXPORTER_VERSION'),
  PgBouncer: arg('images/pgbouncer/Dockerfile', 'PGBOUNCER_VERSION'),
  pgbouncer_exporter: arg('images/pgbouncer/Dockerfile', 'PGBOUNCER_EXPORTER_VERSION'),
};

describe('docs/compatibility.md', () => {
  it('names every pinned version as its source pins it, and nothing else', () => {
    expect(Object.fromEntries(table())).toEqual(pinned);
  });

  it("agrees with the Node.js the npm scripts run and package.json's engines", () => {
    const pkg = JSON.parse(read('package.json')) as {
      engines: { node: string };
      devDependencies: Record<string, string>;
    };
    const node = pinned['Node.js (operator image, npm)'] ?? '';
    expect(pkg.devDependencies['node']).toBe(node);
    expect(pkg.engines.node).toBe(`>=${node.split('.')[0]} <${Number(node.split('.')[0]) + 1}`);
  });

  it("states the charts' kubeVersion floor, which is what both charts declare", () => {
    const floor = /`kubeVersion: '(>=[^']+)'`/.exec(PAGE)?.[1];
    expect(floor).toBe('>=1.31.0-0');
    for (const chart of ['scalable-operator', 'scalable-app']) {
      expect(read(`charts/${chart}/Chart.yaml`)).toContain(`kubeVersion: '${floor}'`);
    }
    // The floor's reasons are still true: the CRD calls isCIDR (1.31), the policies are v1.
    expect(read('crds/scalableapps.scalable.dev.yaml')).toContain('isCIDR(');
    expect(read('charts/scalable-operator/templates/admission.yaml')).toContain(
      'apiVersion: admissionregistration.k8s.io/v1\n',
    );
  });
});
