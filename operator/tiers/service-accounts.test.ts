// Every workload the operator renders runs as a ServiceAccount of its app's own, rendered
// beside it: the operator's admission policy (operator/admission.ts) refuses a Deployment or
// StatefulSet whose pods would run as another account (the namespace's default one included).
// The pooler's Deployment once had none, which only a kind run showed (its apply refused 403).
import { describe, expect, it } from 'vitest';
import { buildAll } from './index.ts';
import { modelOf } from './shared/test-helpers.ts';

const everything = modelOf({
  ingress: { host: 'shop.example.com' },
  cache: { replicas: 2 },
  sessions: {},
  database: { shards: 2, replicasPerShard: 1, shardKey: 'tenant_id', pooler: {} },
  queue: { consumers: [{ name: 'mail', image: 'shop-worker:1' }] },
  monitoring: {},
});

describe('service accounts', () => {
  it('every Deployment and StatefulSet runs as one of the app’s own ServiceAccounts, rendered too', () => {
    const objects = buildAll(everything);
    const accounts = new Set(
      objects.filter((o) => o.kind === 'ServiceAccount').map((o) => o.metadata.name),
    );
    const workloads = objects.filter((o) => ['Deployment', 'StatefulSet'].includes(o.kind));
    expect(workloads.length).toBeGreaterThan(8);
    const wrong = workloads
      .map((o) => ({
        name: `${o.kind}/${o.metadata.name}`,
        account: (o['spec'] as { template: { spec: { serviceAccountName?: string } } }).template
          .spec.serviceAccountName,
      }))
      .filter((w) => !w.account || !w.account.startsWith('shop-') || !accounts.has(w.account));
    expect(wrong).toEqual([]);
  });
});
