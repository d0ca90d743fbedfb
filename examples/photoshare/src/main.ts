// One image, two roles: worker pods are the ones the operator gives a consumer group
// (QUEUE_GROUP); every other pod serves the web.
import type { AppEnvName, OperatorEnvName } from '@scalable-dev/sdk';

const role: OperatorEnvName | AppEnvName = 'QUEUE_GROUP';
await import(process.env[role] ? './worker.ts' : './web.ts');
