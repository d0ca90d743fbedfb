// The web process: connect from the injected env, make sure the schema exists on every
// shard, serve on PORT; on SIGTERM stop taking connections, finish requests, close.
import { connect } from '@scalable-dev/sdk';
import { createApp } from './app.ts';
import { migrate } from './schema.ts';

const sdk = await connect();
if (!sdk.db) throw new Error('photoshare needs spec.database');
await migrate(sdk.db);
const port = Number(process.env['PORT'] ?? 8080);
const server = createApp(sdk).listen(port, () =>
  console.log(JSON.stringify({ level: 'info', msg: `photoshare web listening on ${port}` })),
);

process.once('SIGTERM', () => {
  server.close(() => void sdk.close());
  server.closeIdleConnections();
});
