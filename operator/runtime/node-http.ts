// node:http through require, not an ESM import: building the ESM namespace of node:http reads
// its lazy getters (WebSocket, ...), which loads undici and compiles its llhttp WebAssembly,
// ~10 MiB of resident memory the operator never uses (measured in a fresh Node 22: 55 MiB
// after `import 'node:http'`, 45 MiB after require).
import { createRequire } from 'node:module';
import type * as Http from 'node:http';

export const http = createRequire(import.meta.url)('node:http') as typeof Http;
