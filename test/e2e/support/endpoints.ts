// The ready endpoints of a Service over time, from its EndpointSlices: listed, then watched
// from the list's resourceVersion. client-node ends a watch that is silent for 30 s; it is
// resumed from the last resourceVersion seen, so no event is missed. A watch that cannot go on
// (an ERROR event such as 410 Gone, a failed resume) is `ended`: it saw only part of what it
// was meant to see.
import { KubeConfig, Watch } from '@kubernetes/client-node';
import { getJson, kubeconfig } from './kube.ts';

export interface EndpointWatch {
  /** Events seen so far. */
  readonly events: () => number;
  /** The pods of the ready endpoints now, by name (sorted). */
  readonly readyPods: () => string[];
  /** The fewest ready endpoints over all slices since `resetMin` (or the start). */
  readonly minReady: () => number;
  /** Starts the minimum afresh from the current count. */
  readonly resetMin: () => void;
  /** Set when the watch could not go on: when, and why. */
  readonly ended: () => { at: number; err: unknown } | undefined;
  readonly stop: () => void;
}

type Slice = {
  metadata: { name: string; resourceVersion?: string };
  endpoints?: { conditions?: { ready?: boolean }; targetRef?: { name?: string } }[];
};

/** Lists the Service's EndpointSlices and watches them from there. */
export async function watchEndpoints(namespace: string, service: string): Promise<EndpointWatch> {
  const labelSelector = `kubernetes.io/service-name=${service}`;
  const readyBySlice = new Map<string, string[]>();
  const readyOf = (s: Slice) =>
    (s.endpoints ?? [])
      .filter((e) => e.conditions?.ready === true)
      .map((e) => e.targetRef?.name ?? '?');
  const total = () => [...readyBySlice.values()].reduce((a, b) => a + b.length, 0);
  const list = await getJson<{ metadata: { resourceVersion: string }; items: Slice[] }>([
    'get',
    'endpointslices',
    '-n',
    namespace,
    '-l',
    labelSelector,
  ]);
  for (const s of list.items) readyBySlice.set(s.metadata.name, readyOf(s));
  let lastRV = list.metadata.resourceVersion;
  let min = total();
  let events = 0;
  let ended: { at: number; err: unknown } | undefined;
  // Set by stop(): the end the abort itself causes is not the watch ending.
  let aborting = false;
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig());
  let current: AbortController | undefined;
  const start = async (): Promise<void> => {
    current = await new Watch(kc).watch(
      `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`,
      { labelSelector, resourceVersion: lastRV, allowWatchBookmarks: true },
      (type: string, slice: Slice) => {
        if (type === 'ERROR') {
          ended ??= { at: Date.now(), err: slice };
          return;
        }
        lastRV = slice.metadata.resourceVersion ?? lastRV;
        if (type === 'BOOKMARK') return;
        events++;
        if (type === 'DELETED') readyBySlice.delete(slice.metadata.name);
        else readyBySlice.set(slice.metadata.name, readyOf(slice));
        min = Math.min(min, total());
      },
      () => {
        if (aborting || ended) return;
        start().catch((err: unknown) => {
          ended ??= { at: Date.now(), err };
        });
      },
    );
  };
  await start();
  return {
    events: () => events,
    readyPods: () => [...readyBySlice.values()].flat().sort(),
    minReady: () => min,
    resetMin: () => {
      min = total();
    },
    ended: () => ended,
    stop: () => {
      aborting = true;
      current?.abort();
    },
  };
}
