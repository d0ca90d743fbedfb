// The log port: structured logs (pino's interface), for every layer; runtime/log.ts makes one.
export type { Logger } from 'pino';
