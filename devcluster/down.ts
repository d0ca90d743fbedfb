// `npm run cluster:down`: stops what cluster:up started, by pid, and removes its state.
import { readState, stopCluster } from './cluster.ts';

const state = await readState();
await stopCluster();
console.log(
  state
    ? `[cluster:down] stopped ${state.processes.length} processes; logs kept in ${state.logDir}`
    : '[cluster:down] no cluster was running',
);
