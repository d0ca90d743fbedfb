import { describe, expect, it } from 'vitest';
import type { AppModel } from '../../api/model.ts';
import { buildAll } from '../index.ts';
import type { K8sObject } from '../shared/chart.ts';
import type { ObservedObject } from '../shared/report.ts';
import { modelOf } from '../shared/test-helpers.ts';
import type { LiveView, Tier } from '../tier.ts';
import { databaseTier } from '../database/index.ts';
import { queueTier } from '../queue/index.ts';
import { webTier } from '../web/index.ts';
import { shardMapIn } from '../database/shard-map.ts';

const spec = (pooler: boolean) => ({
  database: { shards: 2, shardKey: 'tenant_id', ...(pooler ? { pooler: {} } : {}) },
  queue: { consumers: [{ name: 'thumbs', image: 'shop-worker:1' }] },
});
const on = modelOf(spec(true));

/** A cluster holding these objects (by kind and name). */
const liveOf = (objects: readonly K8sObject[]): LiveView => ({
  object: (o) =>
    objects.find((l) => l.kind === o.kind && l.metadata.name === o.metadata.name) as
      ObservedObject | undefined,
  status: {},
});
const poolerDeployment = (shard: number, readyReplicas: number): K8sObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: `shop-db-${shard}-pooler` },
  status: { replicas: 2, readyReplicas },
});

/** Every tier's adjust hook over its own objects, as the reconciler runs them. */
function adjusted(app: AppModel, live: LiveView): K8sObject[] {
  const desired = buildAll(app);
  const tiers: Tier[] = [databaseTier, webTier, queueTier];
  return tiers.flatMap((t) =>
    t.hooks?.adjust
      ? t.hooks.adjust(
          app,
          desired.filter((o) => o.metadata.labels?.['scalable.dev/tier'] === t.name),
          live,
        )
      : [],
  );
}

/** Where the app pods are pointed: the shard map's primaries and each Deployment's DATABASE_HOST. */
function pointedAt(objects: readonly K8sObject[]) {
  const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'shop-shard-map');
  const hosts = objects
    .filter((o) => ['shop-web', 'shop-worker-thumbs'].includes(o.metadata.name))
    .filter((o) => o.kind === 'Deployment')
    .map((o) => {
      const c = (o['spec'] as any).template.spec.containers[0]; // eslint-disable-line @typescript-eslint/no-explicit-any
      return `${o.metadata.name}=${c.env.find((e: { name: string }) => e.name === 'DATABASE_HOST').value}`;
    });
  return { primaries: shardMapIn(cm)?.shards.map((s) => s.primary), hosts };
}

const DIRECT = {
  primaries: ['shop-db-0.prod.svc', 'shop-db-1.prod.svc'],
  hosts: ['shop-web=shop-db-0.prod.svc', 'shop-worker-thumbs=shop-db-0.prod.svc'],
};
const POOLED = {
  primaries: ['shop-db-0-rw-pooler.prod.svc', 'shop-db-1-rw-pooler.prod.svc'],
  hosts: [
    'shop-web=shop-db-0-rw-pooler.prod.svc',
    'shop-worker-thumbs=shop-db-0-rw-pooler.prod.svc',
  ],
};

describe('app pods are pointed at the pooler once it serves', () => {
  it('the pooler just turned on: the shard map and DATABASE_HOST keep the -rw Services', () => {
    expect(pointedAt(adjusted(on, liveOf([])))).toEqual(DIRECT);
  });

  it('until every shard’s PgBouncer has a ready pod', () => {
    const oneShard = liveOf([poolerDeployment(0, 2), poolerDeployment(1, 0)]);
    expect(pointedAt(adjusted(on, oneShard))).toEqual(DIRECT);
    const both = liveOf([poolerDeployment(0, 1), poolerDeployment(1, 2)]);
    expect(pointedAt(adjusted(on, both))).toEqual(POOLED);
  });

  it('once the live map names the pooler it stays wired, whatever its pods do', () => {
    const wired = adjusted(on, liveOf([poolerDeployment(0, 1), poolerDeployment(1, 1)]));
    const map = wired.find((o) => o.metadata.name === 'shop-shard-map')!;
    const restarting = liveOf([map, poolerDeployment(0, 0), poolerDeployment(1, 0)]);
    expect(pointedAt(adjusted(on, restarting))).toEqual(POOLED);
  });

  it('the map’s version and buckets do not change with its addresses', () => {
    const direct = adjusted(on, liveOf([]));
    const pooled = adjusted(on, liveOf([poolerDeployment(0, 1), poolerDeployment(1, 1)]));
    const mapOf = (objs: K8sObject[]) =>
      shardMapIn(objs.find((o) => o.metadata.name === 'shop-shard-map'));
    const withoutAddresses = (objs: K8sObject[]) => ({ ...mapOf(objs), shards: undefined });
    expect(withoutAddresses(direct)).toEqual(withoutAddresses(pooled));
    expect(mapOf(direct)?.version).toBe(2);
  });

  it('without the pooler nothing is touched', () => {
    const off = modelOf(spec(false));
    const desired = buildAll(off);
    const out = adjusted(off, liveOf([]));
    expect(pointedAt(out)).toEqual(DIRECT);
    // (The worker gets replicas of its own until KEDA's ScaledObject is live: adjust.ts.)
    const web = (objs: K8sObject[]) =>
      objs.find((o) => o.metadata.name === 'shop-web' && o.kind === 'Deployment');
    expect(web(out)).toEqual(web(desired));
  });
});
