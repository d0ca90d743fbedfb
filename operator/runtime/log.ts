// Structured JSON logs (pino). Messages follow the Kubernetes style: "Created Deployment shop-web".
// Values of Secrets never reach a log line: the reconciler logs names, never data.
import { pino } from 'pino';
import type { Logger } from '../ports/log.ts';

export type { Logger };

/** JSON lines on stderr, so stdout stays free for `npm start`'s status lines. */
export function createLogger(level: string = process.env['LOG_LEVEL'] ?? 'info'): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}
