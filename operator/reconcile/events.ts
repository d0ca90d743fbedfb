// Kubernetes Events on the ScalableApp, for `kubectl describe`: what the operator created,
// updated or deleted, and what went wrong. Repeats of the same event within a window are
// dropped so that a retrying error cannot flood the API server.
import type { KubeApi } from '../ports/kube-api.ts';
import type { Logger } from '../ports/log.ts';
import { API_VERSION, KIND } from '../api/schema.ts';
import { EVENT_KIND, pathOf } from './kinds.ts';
import type { EventSink, EventTarget, EventType } from '../tiers/watch.ts';

export type { EventTarget, EventType } from '../tiers/watch.ts';

export class EventRecorder implements EventSink {
  private readonly recent = new Map<string, number>();

  constructor(
    private readonly client: KubeApi,
    private readonly log: Logger,
    private readonly instance: string,
    private readonly dedupMs = 10 * 60_000,
  ) {}

  /** Fire and forget: an event that cannot be written is logged, never fatal. */
  emit(target: EventTarget, type: EventType, reason: string, message: string): void {
    const key = `${target.namespace}/${target.name}|${type}|${reason}|${message}`;
    const now = Date.now();
    const last = this.recent.get(key);
    if (last !== undefined && now - last < this.dedupMs) return;
    this.recent.set(key, now);
    if (this.recent.size > 10_000) this.prune(now);
    const ts = new Date(now);
    const body = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: {
        name: `${target.name}.${now.toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`,
        namespace: target.namespace,
      },
      involvedObject: {
        apiVersion: API_VERSION,
        kind: KIND,
        name: target.name,
        namespace: target.namespace,
        ...(target.uid ? { uid: target.uid } : {}),
        ...(target.resourceVersion ? { resourceVersion: target.resourceVersion } : {}),
      },
      type,
      reason,
      message: message.length > 1024 ? `${message.slice(0, 1021)}...` : message,
      source: { component: 'scalable-operator' },
      reportingComponent: 'scalable-operator',
      reportingInstance: this.instance,
      firstTimestamp: ts.toISOString().replace(/\.\d+Z$/, 'Z'),
      lastTimestamp: ts.toISOString().replace(/\.\d+Z$/, 'Z'),
      count: 1,
    };
    this.client
      .request('POST', pathOf(EVENT_KIND, target.namespace), {
        verb: 'create',
        resource: 'events',
        body,
      })
      .catch((err: unknown) =>
        this.log.debug({ err: String(err), reason }, 'could not record event'),
      );
  }

  private prune(now: number): void {
    for (const [k, t] of this.recent) if (now - t >= this.dedupMs) this.recent.delete(k);
  }
}
