// Stream and group names of each consumer, in one place: the workers read them from their
// env, KEDA scales on them, and the store's redis_exporter reports exactly these streams.
import type { AppModel } from '../../api/model.ts';

export type ConsumerSpec = NonNullable<AppModel['queue']>['consumers'][number];

export const streamOf = (c: ConsumerSpec): string => c.stream ?? c.name;
export const groupOf = (c: ConsumerSpec): string => c.group ?? c.name;
export const deadLetterStreamOf = (c: ConsumerSpec): string => `${streamOf(c)}:dead`;

/** Every stream the consumers read and their dead-letter streams, each once. */
export const streamsOf = (consumers: readonly ConsumerSpec[]): string[] => [
  ...new Set(consumers.flatMap((c) => [streamOf(c), deadLetterStreamOf(c)])),
];
