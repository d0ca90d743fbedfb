// The ready endpoints of a Service over time, from a watch on its EndpointSlices: the fewest
// ready at any moment, and whether the watch ended on its own (a watch that ended early saw
// only part of what it was meant to see).
import { KubeConfig, Watch } from '@kubernetes/client-node';
import { eventually, kubeconfig } from './kube.ts';

export interface EndpointWatch {
  /** Events seen so far (the first ones list the current slices). */
  readonly events: () => number;
  /** The fewest ready endpoints over all slices since `resetMin` (or the start). */
  readonly minReady: () => number;
  /** Starts the minimum afresh from the current count. */
  readonly resetMin: () => void;
  /** Set when the watch ended by itself: when, and the error it ended with. */
  readonly ended: () => { at: number; err: unknown } | undefined;
  readonly stop: () => void;
}

type Slice = { metadata: { name: string }; endpoints?: { conditions?: { ready?: boolean } }[] };

/** Watches the Service's EndpointSlices; returns once the current ones are listed. */
export async function watchEndpoints(namespace: string, service: string): Promise<EndpointWatch> {
  const readyBySlice = new Map<string, number>();
  const total = () => [...readyBySlice.values()].reduce((a, b) => a + b, 0);
  let min = Number.POSITIVE_INFINITY;
  let events = 0;
  let ended: { at: number; err: unknown } | undefined;
  // Set by stop(): the end the abort itself causes is not the watch ending early.
  let aborting = false;
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig());
  const req = await new Watch(kc).watch(
    `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`,
    { labelSelector: `kubernetes.io/service-name=${service}` },
    (type: string, slice: Slice) => {
      events++;
      if (type === 'DELETED') readyBySlice.delete(slice.metadata.name);
      else
        readyBySlice.set(
          slice.metadata.name,
          (slice.endpoints ?? []).filter((e) => e.conditions?.ready === true).length,
        );
      min = Math.min(min, total());
    },
    (err: unknown) => {
      if (!aborting) ended ??= { at: Date.now(), err };
    },
  );
  await eventually(`the EndpointSlices of ${namespace}/${service} listed`, async () =>
    events > 0 ? true : undefined,
  );
  return {
    events: () => events,
    minReady: () => min,
    resetMin: () => {
      min = total();
    },
    ended: () => ended,
    stop: () => {
      aborting = true;
      req.abort();
    },
  };
}
