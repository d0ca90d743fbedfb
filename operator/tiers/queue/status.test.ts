import { describe, expect, it } from 'vitest';
import { appWiring } from '../index.ts';
import type { K8sObject } from '../shared/chart.ts';
import type { ObservedObject } from '../shared/report.ts';
import { modelOf, obj, observed, workload } from '../shared/test-helpers.ts';
import { buildQueue } from './index.ts';
import { queueReport } from './status.ts';

const app = modelOf({
  queue: {
    consumers: [
      { name: 'emails', image: 'w:1' },
      { name: 'thumbs', image: 'w:1', minReplicas: 2, maxReplicas: 4 },
    ],
  },
});
const desired = buildQueue(app, appWiring(app));
const refs = (objs: readonly K8sObject[]) =>
  objs.map((o) => ({ apiVersion: o.apiVersion, kind: o.kind, name: o.metadata.name }));
const withKeda = refs(desired);
const withoutKeda = refs(desired.filter((o) => !o.apiVersion.startsWith('keda.sh/')));
const so = (name: string, ready?: { status: string; message: string }): ObservedObject => ({
  apiVersion: 'keda.sh/v1alpha1',
  kind: 'ScaledObject',
  metadata: { name, namespace: 'prod', generation: 1 },
  ...(ready ? { status: { conditions: [{ type: 'Ready', ...ready }] } } : {}),
});
const live = (emails: number, thumbs: number, extra: ObservedObject[] = []) =>
  observed([
    obj('Secret', 'shop-queue-users'),
    workload('StatefulSet', 'shop-queue', 1, 1),
    workload('Deployment', 'shop-worker-emails', emails, emails),
    workload('Deployment', 'shop-worker-thumbs', thumbs, thumbs),
    ...extra,
  ]);

describe('queueReport', () => {
  it('is Ready with workers scaled to zero by KEDA (an empty stream)', () => {
    const r = queueReport(
      app,
      live(0, 2, [so('shop-worker-emails'), so('shop-worker-thumbs')]),
      withKeda,
    );
    expect(r.condition).toEqual({
      type: 'QueueReady',
      status: 'True',
      reason: 'Ready',
      message: '1/1 queue Redis pods ready; workers emails: 0, thumbs: 2',
    });
    expect(r.fields).toEqual({
      queue: {
        replicas: 1,
        readyReplicas: 1,
        ready: '1/1',
        consumers: [
          { name: 'emails', replicas: 0, scaler: 'KEDA' },
          { name: 'thumbs', replicas: 2, scaler: 'KEDA' },
        ],
      },
    });
  });

  it('waits for the store before anything else', () => {
    const r = queueReport(app, observed([obj('Secret', 'shop-queue-users')]), withKeda);
    expect(r.condition).toMatchObject({ status: 'False', reason: 'Creating' });
    expect(r.condition.message).toContain('StatefulSet shop-queue');
  });

  it('says when KEDA cannot act on a ScaledObject', () => {
    const r = queueReport(
      app,
      live(0, 2, [
        so('shop-worker-emails', { status: 'False', message: 'dial tcp: connection refused' }),
        so('shop-worker-thumbs'),
      ]),
      withKeda,
    );
    expect(r.condition).toMatchObject({ status: 'False', reason: 'ScalerNotReady' });
    expect(r.condition.message).toContain('connection refused');
  });

  it('names KEDA when it is not installed, with the fixed replicas the workers run at', () => {
    const r = queueReport(app, live(1, 2), withoutKeda);
    expect(r.condition.status).toBe('False');
    expect(r.condition.reason).toBe('APIUnavailable');
    expect(r.condition.message).toBe(
      'KEDA (keda.sh/v1alpha1) is not installed: workers run at fixed replicas (emails: 1, thumbs: 2) and are not scaled on their backlog; install KEDA to scale them, down to zero',
    );
    expect(r.fields?.['queue']).toMatchObject({
      consumers: [
        { name: 'emails', replicas: 1, scaler: 'None' },
        { name: 'thumbs', replicas: 2, scaler: 'None' },
      ],
    });
  });

  it('with replicas: usable with a master and a Sentinel quorum, Degraded until all are ready', () => {
    const r3 = modelOf({ queue: { replicas: 2, consumers: [{ name: 'emails', image: 'w:1' }] } });
    const base = [
      obj('Secret', 'shop-queue-users'),
      workload('Deployment', 'shop-worker-emails', 0, 0),
      so('shop-worker-emails'),
    ];
    const kedaRefs = refs(buildQueue(r3, appWiring(r3)));
    const noQuorum = queueReport(
      r3,
      observed([
        ...base,
        workload('StatefulSet', 'shop-queue', 3, 3),
        workload('StatefulSet', 'shop-queue-sentinel', 3, 1),
      ]),
      kedaRefs,
    );
    expect(noQuorum.condition).toMatchObject({ status: 'False', reason: 'NoSentinelQuorum' });
    const degraded = queueReport(
      r3,
      observed([
        ...base,
        workload('StatefulSet', 'shop-queue', 3, 2),
        workload('StatefulSet', 'shop-queue-sentinel', 3, 3),
      ]),
      kedaRefs,
    );
    expect(degraded.condition).toMatchObject({ status: 'True', reason: 'Degraded' });
    expect(degraded.condition.message).toContain('2/3 queue Redis pods ready, 3/3 Sentinels ready');
  });
});
