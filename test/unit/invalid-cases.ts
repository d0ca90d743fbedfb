// Invalid ScalableApps and the messages each must produce, offline (validate.test.ts): every
// error, word for word, so a reworded or an extra error shows. The real API server
// (test/integration/crd-api.test.ts) must name the same fields: one table, so the two agree.
import { OPERATOR_ENV_NAMES } from '../../sdk/src/contract/env-names.ts';

/** The list the reserved-env rule quotes: the names the operator injects. */
const INJECTED = `(${OPERATOR_ENV_NAMES.join(', ')})`;
export const appDoc = (
  spec: Record<string, unknown>,
  metadata: Record<string, unknown> = { name: 'shop' },
) => ({
  apiVersion: 'scalable.dev/v1alpha1',
  kind: 'ScalableApp',
  metadata,
  spec: { web: { image: 'shop:1' }, ...spec },
});

const base = appDoc;
/** A valid backup target, for the backup cases to break one thing of. */
const S3 = {
  endpoint: 'https://s3.example.com',
  bucket: 'backups',
  credentialsSecret: 'backup-creds',
};

// Valid edge cases, accepted offline and by the API server alike: every quantity at its
// floor or ceiling, integer quantities, an image by digest.
export const VALID_EDGES: Array<[string, unknown]> = [
  [
    'quantities at their floors and ceilings',
    base(
      {
        web: {
          image: `ghcr.io/acme/shop:1.4.2@sha256:${'a'.repeat(64)}`,
          resources: { requests: { cpu: '1m', memory: '6Mi' }, limits: { memory: 16 * 2 ** 20 } },
        },
        cache: { memory: '1Ti' },
        sessions: { memory: 16 * 2 ** 20, storage: { size: '64Mi' } },
        database: {
          storage: { size: '64Ti' },
          resources: {
            requests: { cpu: '50m', memory: '256Mi' },
            limits: { cpu: '512', memory: '0.25Gi' },
          },
        },
      },
      { name: 'edges' },
    ),
  ],
  [
    'a quantity in another unit',
    base({ database: { storage: { size: '1024Mi' } } }, { name: 'units' }),
  ],
  [
    'every kind of allowFrom peer',
    base(
      {
        web: {
          image: 'x',
          allowFrom: [
            { namespaceSelector: { matchLabels: { 'example.com/role': 'ingress' } } },
            { podSelector: { matchLabels: { app: 'gateway' } } },
            { namespaceSelector: { matchLabels: {} }, podSelector: { matchLabels: { a: 'b' } } },
            { ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16', '10.2.3.4/32'] } },
            { ipBlock: { cidr: '2001:db8::/32', except: ['2001:db8:1::/48'] } },
            { namespaceSelector: {} },
          ],
        },
      },
      { name: 'peers' },
    ),
  ],
  ['an empty allowFrom', base({ web: { image: 'x', allowFrom: [] } }, { name: 'nopeers' })],
  [
    'a backup with every field, from the primary of a shard without replicas',
    base(
      {
        database: {
          replicasPerShard: 0,
          backup: {
            s3: {
              endpoint: 'https://store.backup.svc:7070/',
              bucket: 'pg.backups-1',
              path: '/prod/shop',
              region: 'eu-west-1',
              uriStyle: 'path',
              credentialsSecret: 'backup-creds',
              ca: { configMapName: 'store-ca', key: 'bundle.pem' },
            },
            schedule: '30 3 * * 0',
            retention: { days: 14 },
            runOn: 'Primary',
          },
        },
      },
      { name: 'backups' },
    ),
  ],
];

// Each invalid input and the errors it gets, exactly (one, or all of them in order).
export const INVALID: Array<[string, unknown, string | readonly string[]]> = [
  ['no web', { ...base({}), spec: {} }, 'spec.web: Required value'],
  ['no image', base({ web: { port: 80 } }), 'spec.web.image: Required value'],
  [
    'empty image',
    base({ web: { image: '' } }),
    [
      'spec.web.image: must not have fewer than 1 characters (got "")',
      'spec.web.image: must be an OCI image reference such as ghcr.io/acme/shop:1.4.2 (got "")',
    ],
  ],
  [
    'port too high',
    base({ web: { image: 'x', port: 70000 } }),
    'spec.web.port: must be <= 65535 (got 70000)',
  ],
  ['port zero', base({ web: { image: 'x', port: 0 } }), 'spec.web.port: must be >= 1 (got 0)'],
  [
    'port as string',
    base({ web: { image: 'x', port: '80' } }),
    'spec.web.port: must be integer (got "80")',
  ],
  [
    'queue tls as string',
    base({ queue: { tls: 'no', consumers: [{ name: 'a', image: 'x' }] } }),
    'spec.queue.tls: must be boolean (got "no")',
  ],
  [
    'reserved Redis CA env',
    base({ web: { image: 'x', env: [{ name: 'REDIS_SSLROOTCERT', value: '/ca.crt' }] } }),
    `spec.web.env: env must not set the names the operator injects ${INJECTED}`,
  ],
  [
    'unknown field',
    base({ web: { image: 'x', replicas: 3 } }),
    'spec.web.replicas: field not declared in schema',
  ],
  ['unknown section', base({ cdnn: {} }), 'spec.cdnn: field not declared in schema'],
  [
    'min > max',
    base({ web: { image: 'x', autoscaling: { minReplicas: 5, maxReplicas: 2 } } }),
    'spec.web.autoscaling: minReplicas must be <= maxReplicas (got 5 > 2)',
  ],
  [
    'cpu target > 100',
    base({ web: { image: 'x', autoscaling: { targetCPUUtilization: 150 } } }),
    'spec.web.autoscaling.targetCPUUtilization: must be <= 100 (got 150)',
  ],
  [
    'bad memory quantity',
    base({ web: { image: 'x', resources: { requests: { memory: 'lots' } } } }),
    'spec.web.resources.requests.memory: must be a quantity such as 256Mi, 1Gi or 500m (got "lots")',
  ],
  [
    'bad probe path',
    base({ web: { image: 'x', probes: { readinessPath: 'healthz' } } }),
    'spec.web.probes.readinessPath: must match pattern "^/" (got "healthz")',
  ],
  [
    'bad env name',
    base({ web: { image: 'x', env: [{ name: '1X', value: 'a' }] } }),
    'spec.web.env[0].name: must match pattern "^[A-Za-z_][A-Za-z0-9_]*$" (got "1X")',
  ],
  [
    'reserved env',
    base({ web: { image: 'x', env: [{ name: 'REDIS_URL', value: 'a' }] } }),
    `spec.web.env: env must not set the names the operator injects ${INJECTED}`,
  ],
  [
    'duplicate env',
    base({
      web: {
        image: 'x',
        env: [
          { name: 'A', value: '1' },
          { name: 'A', value: '2' },
        ],
      },
    }),
    'spec.web.env: env names must be unique',
  ],
  [
    'env value and valueFrom',
    base({
      web: {
        image: 'x',
        env: [{ name: 'A', value: '1', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }],
      },
    }),
    'spec.web.env[0]: set exactly one of value and valueFrom',
  ],
  [
    'env valueFrom empty',
    base({ web: { image: 'x', env: [{ name: 'A', valueFrom: {} }] } }),
    'spec.web.env[0].valueFrom: set exactly one of secretKeyRef and configMapKeyRef',
  ],
  [
    'bad eviction policy',
    base({ cache: { evictionPolicy: 'lru' } }),
    'spec.cache.evictionPolicy: must be one of "allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "noeviction" (got "lru")',
  ],
  [
    'cache replicas > 5',
    base({ cache: { replicas: 9 } }),
    'spec.cache.replicas: must be <= 5 (got 9)',
  ],
  [
    'ttl zero',
    base({ cache: { defaultTTLSeconds: 0 } }),
    'spec.cache.defaultTTLSeconds: must be >= 1 (got 0)',
  ],
  [
    'bad postgres version',
    base({ database: { version: '12' } }),
    'spec.database.version: must be one of "16", "17", "18" (got "12")',
  ],
  [
    'postgres version as number',
    base({ database: { version: 17 } }),
    [
      'spec.database.version: must be string (got 17)',
      'spec.database.version: must be one of "16", "17", "18" (got 17)',
    ],
  ],
  ['zero shards', base({ database: { shards: 0 } }), 'spec.database.shards: must be >= 1 (got 0)'],
  [
    'shards without shardKey',
    base({ database: { shards: 4 } }),
    'spec.database: shardKey is required when shards > 1 (got shards 4)',
  ],
  [
    'certificate issuer with tls off',
    base({ database: { tls: false, certificateIssuer: { name: 'corp-ca' } } }),
    'spec.database.certificateIssuer: certificateIssuer needs tls: true',
  ],
  [
    'certificate issuer of an unknown kind',
    base({ database: { certificateIssuer: { name: 'corp-ca', kind: 'Vault' } } }),
    'spec.database.certificateIssuer.kind: must be one of "Issuer", "ClusterIssuer" (got "Vault")',
  ],
  [
    'sync without replicas',
    base({ database: { synchronous: true, replicasPerShard: 0 } }),
    'spec.database: synchronous replication needs replicasPerShard >= 1',
  ],
  [
    'failover faster than the operator can release a lease safely',
    base({ database: { failoverSeconds: 9 } }),
    'spec.database.failoverSeconds: must be >= 10 (got 9)',
  ],
  [
    'fast failover on an asynchronous shard (a promoted replica may lack acknowledged writes)',
    base({ database: { failoverSeconds: 10 } }),
    "spec.database.failoverSeconds: failoverSeconds below 20 needs synchronous: true (a replica promoted before Patroni's 20 s lease ends may lack acknowledged writes); leave it out for 30 s, or set synchronous: true (got 10)",
  ],
  [
    'bad deletion policy',
    base({ database: { deletionPolicy: 'Purge' } }),
    'spec.database.deletionPolicy: must be one of "Retain", "Delete" (got "Purge")',
  ],
  [
    'backup without credentials',
    base({
      database: { backup: { s3: { endpoint: 'https://s3.example.com', bucket: 'backups' } } },
    }),
    'spec.database.backup.s3.credentialsSecret: Required value',
  ],
  [
    'backup endpoint over plain http',
    base({ database: { backup: { s3: { ...S3, endpoint: 'http://s3.example.com:9000' } } } }),
    'spec.database.backup.s3.endpoint: must match pattern "^https://[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?(:[0-9]{1,5})?/?$" (got "http://s3.example.com:9000")',
  ],
  [
    'backup CA from a Secret and a ConfigMap',
    base({
      database: {
        backup: { s3: { ...S3, ca: { secretName: 'store-ca', configMapName: 'store-ca' } } },
      },
    }),
    'spec.database.backup.s3.ca: set exactly one of secretName and configMapName',
  ],
  [
    'backup retention by count and by days',
    base({ database: { backup: { s3: S3, retention: { fullBackups: 3, days: 14 } } } }),
    'spec.database.backup.retention: set fullBackups or days, not both: pgBackRest keeps full backups by count or by age',
  ],
  [
    'backup schedule of four fields',
    base({ database: { backup: { s3: S3, schedule: '0 2 * *' } } }),
    'spec.database.backup.schedule: must match pattern "^\\S+(\\s+\\S+){4}$" (got "0 2 * *")',
  ],
  [
    'backup from a replica of a shard without replicas',
    base({ database: { replicasPerShard: 0, backup: { s3: S3 } } }),
    'spec.database.backup.runOn: runOn: Replica needs replicasPerShard >= 1; set runOn: Primary to back up a shard without replicas',
  ],
  [
    'bad storage size',
    base({ database: { storage: { size: '10 GB' } } }),
    'spec.database.storage.size: must be a quantity such as 256Mi, 1Gi or 500m (got "10 GB")',
  ],
  [
    'gateway with className',
    base({ ingress: { className: 'traefik', gateway: { name: 'gw' } } }),
    'spec.ingress: className applies to an Ingress only: with gateway set, the Gateway decides; remove one of them',
  ],
  [
    'gateway with tls',
    base({ ingress: { host: 'a.example.com', tls: { secretName: 's' }, gateway: { name: 'gw' } } }),
    "spec.ingress: tls applies to an Ingress only: with gateway set, TLS is configured on the Gateway's listener",
  ],
  [
    'tls without host',
    base({ ingress: { tls: { secretName: 's' } } }),
    'spec.ingress: tls needs host: the certificate is issued for a host name',
  ],
  [
    'bad host',
    base({ ingress: { host: 'Shop_Example' } }),
    'spec.ingress.host: must match pattern "^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$" (got "Shop_Example")',
  ],
  [
    'an ingress-nginx configuration snippet (issue 36)',
    base({
      ingress: {
        annotations: {
          'nginx.ingress.kubernetes.io/configuration-snippet': 'proxy_pass http://evil;',
        },
      },
    }),
    'spec.ingress.annotations: annotations must not hold configuration snippets (keys containing "snippet"): they run as the ingress controller, for every namespace',
  ],
  [
    'a HAProxy backend config snippet (issue 36)',
    base({ ingress: { annotations: { 'haproxy.org/backend-config-Snippet': 'x' } } }),
    'spec.ingress.annotations: annotations must not hold configuration snippets (keys containing "snippet"): they run as the ingress controller, for every namespace',
  ],
  [
    'max-age too long',
    base({ ingress: { staticAssets: { maxAgeSeconds: 99999999 } } }),
    'spec.ingress.staticAssets.maxAgeSeconds: must be <= 31536000 (got 99999999)',
  ],
  [
    'cdn without ingress',
    base({ cdn: { baseURL: 'https://cdn.example.com' } }),
    'spec: cdn needs ingress: the CDN pulls static assets from the ingress as its origin',
  ],
  [
    'cdn not a URL',
    base({ ingress: {}, cdn: { baseURL: 'cdn.example.com' } }),
    'spec.cdn.baseURL: must match pattern "^https?://[^\\s/$.?#].[^\\s]*$" (got "cdn.example.com")',
  ],
  [
    'no consumers',
    base({ queue: { consumers: [] } }),
    'spec.queue.consumers: must not have fewer than 1 items (got [])',
  ],
  [
    'duplicate consumers',
    base({
      queue: {
        consumers: [
          { name: 'a', image: 'x' },
          { name: 'a', image: 'y' },
        ],
      },
    }),
    [
      'spec.queue.consumers: consumer names must be unique',
      'spec.queue.consumers: each stream + group must belong to one consumer (stream and group default to the consumer name)',
    ],
  ],
  [
    'consumer min > max',
    base({ queue: { consumers: [{ name: 'a', image: 'x', minReplicas: 5, maxReplicas: 2 }] } }),
    'spec.queue.consumers[0]: minReplicas must be <= maxReplicas (got 5 > 2)',
  ],
  [
    'consumer without image',
    base({ queue: { consumers: [{ name: 'a' }] } }),
    'spec.queue.consumers[0].image: Required value',
  ],
  [
    'bad consumer name',
    base({ queue: { consumers: [{ name: 'Mail_Q', image: 'x' }] } }),
    'spec.queue.consumers[0].name: must match pattern "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" (got "Mail_Q")',
  ],
  [
    'duplicate stream + group',
    base({
      queue: {
        consumers: [
          { name: 'a', image: 'x', stream: 'jobs', group: 'g' },
          { name: 'b', image: 'y', stream: 'jobs', group: 'g' },
        ],
      },
    }),
    'spec.queue.consumers: each stream + group must belong to one consumer (stream and group default to the consumer name)',
  ],
  [
    'stream + group equal to another consumer by default',
    base({
      queue: {
        consumers: [
          { name: 'mail', image: 'x' },
          { name: 'b', image: 'y', stream: 'mail', group: 'mail' },
        ],
      },
    }),
    'spec.queue.consumers: each stream + group must belong to one consumer (stream and group default to the consumer name)',
  ],
  [
    'unknown consumer field',
    base({ queue: { consumers: [{ name: 'a', image: 'x', replicas: 2 }] } }),
    'spec.queue.consumers[0].replicas: field not declared in schema',
  ],
  [
    'maxDeliveries zero',
    base({ queue: { consumers: [{ name: 'a', image: 'x', maxDeliveries: 0 }] } }),
    'spec.queue.consumers[0].maxDeliveries: must be >= 1 (got 0)',
  ],
  [
    'negative cooldown',
    base({ queue: { consumers: [{ name: 'a', image: 'x', cooldownSeconds: -1 }] } }),
    'spec.queue.consumers[0].cooldownSeconds: must be >= 0 (got -1)',
  ],
  [
    'stream retention too small',
    base({ queue: { maxLength: 10, consumers: [{ name: 'a', image: 'x' }] } }),
    'spec.queue.maxLength: must be >= 1000 (got 10)',
  ],
  [
    'bad stream name',
    base({ queue: { consumers: [{ name: 'a', image: 'x', stream: 'a b' }] } }),
    'spec.queue.consumers[0].stream: must match pattern "^[A-Za-z0-9._:-]+$" (got "a b")',
  ],
  [
    'worker env sets an injected name',
    base({
      queue: {
        consumers: [{ name: 'a', image: 'x', env: [{ name: 'QUEUE_STREAM', value: 's' }] }],
      },
    }),
    `spec.queue.consumers[0].env: env must not set the names the operator injects ${INJECTED}`,
  ],
  [
    'bad queue memory',
    base({ queue: { memory: 'lots', consumers: [{ name: 'a', image: 'x' }] } }),
    'spec.queue.memory: must be a quantity such as 256Mi, 1Gi or 500m (got "lots")',
  ],
  // Quantities: a floor the engine starts with, a ceiling, requests within limits.
  [
    'negative cache memory',
    base({ cache: { memory: '-5Gi' } }),
    'spec.cache.memory: must be at least 4Mi: Redis itself takes about 1 MiB, less leaves no room for data (got -5Gi)',
  ],
  [
    'cache memory too small',
    base({ cache: { memory: '1Mi' } }),
    'spec.cache.memory: must be at least 4Mi: Redis itself takes about 1 MiB, less leaves no room for data (got 1Mi)',
  ],
  [
    'cache memory too large',
    base({ cache: { memory: '2Ti' } }),
    'spec.cache.memory: must be at most 1Ti: a single Redis this large takes hours to resync a replica (got 2Ti)',
  ],
  [
    'session memory as a negative integer',
    base({ sessions: { memory: -5 } }),
    'spec.sessions.memory: must be at least 4Mi: Redis itself takes about 1 MiB, less leaves no room for data (got -5)',
  ],
  [
    'zero web CPU request',
    base({ web: { image: 'x', resources: { requests: { cpu: '0' } } } }),
    'spec.web.resources.requests.cpu: must be at least 1m: the container runtime refuses less (got 0)',
  ],
  [
    'web CPU limit too large',
    base({ web: { image: 'x', resources: { limits: { cpu: '1000' } } } }),
    'spec.web.resources.limits.cpu: must be at most 512: no node has more cores (got 1000)',
  ],
  [
    'web memory request above its limit',
    base({
      web: { image: 'x', resources: { requests: { memory: '1Gi' }, limits: { memory: '512Mi' } } },
    }),
    'spec.web.resources: requests.memory must be <= limits.memory',
  ],
  [
    'web CPU request above its limit',
    base({ web: { image: 'x', resources: { requests: { cpu: '2' }, limits: { cpu: '500m' } } } }),
    'spec.web.resources: requests.cpu must be <= limits.cpu',
  ],
  [
    'Postgres memory too small to start',
    base({ database: { resources: { requests: { memory: '64Mi' }, limits: { memory: '64Mi' } } } }),
    [
      'spec.database.resources.requests.memory: must be at least 256Mi: Postgres and Patroni need this much to start (got 64Mi)',
      'spec.database.resources.limits.memory: must be at least 256Mi: Postgres and Patroni need this much to start (got 64Mi)',
    ],
  ],
  [
    'unknown pooler mode',
    base({ database: { pooler: { mode: 'statement' } } }),
    'spec.database.pooler.mode: must be one of "transaction", "session" (got "statement")',
  ],
  [
    'pooler with no pool',
    base({ database: { pooler: { defaultPoolSize: 0 } } }),
    'spec.database.pooler.defaultPoolSize: must be >= 1 (got 0)',
  ],
  [
    'pooler min pool above the pool',
    base({ database: { pooler: { defaultPoolSize: 5, minPoolSize: 10 } } }),
    'spec.database.pooler.minPoolSize: minPoolSize must be <= defaultPoolSize (got 10 > 5)',
  ],
  [
    'pooler server connections beyond max_connections',
    base({ database: { pooler: { replicas: 4, defaultPoolSize: 40 } } }),
    "spec.database.pooler: (defaultPoolSize + reservePoolSize) * replicas must be <= 150: the pods' server connections must fit in the primary's 200 max_connections (got 160)",
  ],
  [
    'pooler few client connections',
    base({ database: { pooler: { maxClientConnections: 5 } } }),
    'spec.database.pooler.maxClientConnections: must be >= 10 (got 5)',
  ],
  [
    'pooler without tls',
    base({ database: { tls: false, pooler: {} } }),
    'spec.database.pooler: pooler needs tls: true (PgBouncer serves and verifies certificates from the database CA)',
  ],
  [
    'negative database storage',
    base({ database: { storage: { size: '-10Gi' } } }),
    'spec.database.storage.size: must be at least 1Gi: Postgres keeps up to 1 GB of WAL (max_wal_size) besides the data (got -10Gi)',
  ],
  [
    'database storage too large',
    base({ database: { storage: { size: '1Pi' } } }),
    'spec.database.storage.size: must be at most 64Ti: the largest volumes cloud providers offer (got 1Pi)',
  ],
  [
    'session storage too small',
    base({ sessions: { storage: { size: '1Mi' } } }),
    'spec.sessions.storage.size: must be at least 64Mi: the append-only file needs room to be rewritten (got 1Mi)',
  ],
  [
    'worker memory limit too small',
    base({
      queue: {
        consumers: [{ name: 'a', image: 'x', resources: { limits: { memory: '1Mi' } } }],
      },
    }),
    [
      'spec.queue.consumers[0].resources: requests.memory must be <= limits.memory',
      'spec.queue.consumers[0].resources.limits.memory: must be at least 6Mi: the container runtime refuses less (got 1Mi)',
    ],
  ],
  // Images: an OCI reference, not any string.
  [
    'blank image',
    base({ web: { image: ' ' } }),
    'spec.web.image: must be an OCI image reference such as ghcr.io/acme/shop:1.4.2 (got " ")',
  ],
  [
    'image with a URL scheme',
    base({ web: { image: 'https://ghcr.io/acme/shop:1' } }),
    'spec.web.image: must be an OCI image reference such as ghcr.io/acme/shop:1.4.2 (got "https://ghcr.io/acme/shop:1")',
  ],
  [
    'image with two tags',
    base({ web: { image: 'shop:1:2' } }),
    'spec.web.image: must be an OCI image reference such as ghcr.io/acme/shop:1.4.2 (got "shop:1:2")',
  ],
  [
    'upper-case worker image',
    base({ queue: { consumers: [{ name: 'a', image: 'Worker:latest' }] } }),
    'spec.queue.consumers[0].image: must be an OCI image reference such as ghcr.io/acme/shop:1.4.2 (got "Worker:latest")',
  ],
  [
    'bad whenUnsatisfiable',
    base({ topology: { whenUnsatisfiable: 'Never' } }),
    'spec.topology.whenUnsatisfiable: must be one of "ScheduleAnyway", "DoNotSchedule" (got "Never")',
  ],
  [
    'wrong kind',
    { ...base({}), kind: 'Deployment' },
    'kind: must be ScalableApp (got "Deployment")',
  ],
  [
    'wrong apiVersion',
    { ...base({}), apiVersion: 'apps/v1' },
    'apiVersion: must be scalable.dev/v1alpha1 (got "apps/v1")',
  ],
  ['no name', base({}, {}), 'metadata.name: Required value'],
  [
    'upper-case name',
    base({}, { name: 'Shop' }),
    'metadata.name: must be a lower-case RFC 1123 name (got "Shop")',
  ],
  [
    'name starting with a digit',
    base({}, { name: '1shop' }),
    'metadata.name: must start with a letter and hold only lower-case letters, digits and "-" (it names Services)',
  ],
  [
    'name too long',
    base({}, { name: 'a'.repeat(41) }),
    'metadata.name: must be at most 40 characters: it prefixes the names of every object the app gets (got 41)',
  ],
  [
    'bad namespace',
    base({}, { name: 'shop', namespace: 'Prod' }),
    'metadata.namespace: must be a lower-case RFC 1123 label (got "Prod")',
  ],
  [
    'allowFrom peer mixing ipBlock and a selector',
    base({
      web: { image: 'x', allowFrom: [{ ipBlock: { cidr: '10.0.0.0/8' }, namespaceSelector: {} }] },
    }),
    'spec.web.allowFrom[0]: set ipBlock alone, or namespaceSelector and/or podSelector (a NetworkPolicy peer cannot mix them)',
  ],
  [
    'empty allowFrom peer',
    base({ web: { image: 'x', allowFrom: [{}] } }),
    'spec.web.allowFrom[0]: set ipBlock alone, or namespaceSelector and/or podSelector (a NetworkPolicy peer cannot mix them)',
  ],
  [
    'allowFrom prefix too long',
    base({ web: { image: 'x', allowFrom: [{ ipBlock: { cidr: '10.0.0.0/33' } }] } }),
    'spec.web.allowFrom[0].ipBlock.cidr: cidr must be a CIDR such as 10.0.0.0/8 or 2001:db8::/32 (got 10.0.0.0/33)',
  ],
  [
    'allowFrom address without prefix',
    base({ web: { image: 'x', allowFrom: [{ ipBlock: { cidr: '10.0.0.1' } }] } }),
    'spec.web.allowFrom[0].ipBlock.cidr: cidr must be a CIDR such as 10.0.0.0/8 or 2001:db8::/32 (got 10.0.0.1)',
  ],
  [
    'allowFrom IPv4 with leading zeros',
    base({ web: { image: 'x', allowFrom: [{ ipBlock: { cidr: '10.0.0.01/32' } }] } }),
    'spec.web.allowFrom[0].ipBlock.cidr: cidr must be a CIDR such as 10.0.0.0/8 or 2001:db8::/32 (got 10.0.0.01/32)',
  ],
  [
    'allowFrom except not a CIDR',
    base({
      web: { image: 'x', allowFrom: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0'] } }] },
    }),
    'spec.web.allowFrom[0].ipBlock.except: except must hold CIDRs such as 10.1.0.0/16',
  ],
  [
    'allowFrom except outside cidr',
    base({
      web: {
        image: 'x',
        allowFrom: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['192.168.0.0/16'] } }],
      },
    }),
    'spec.web.allowFrom[0].ipBlock.except: each of except must be a strict subset of cidr',
  ],
  [
    'allowFrom except equal to cidr',
    base({
      web: { image: 'x', allowFrom: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.0.0.0/8'] } }] },
    }),
    'spec.web.allowFrom[0].ipBlock.except: each of except must be a strict subset of cidr',
  ],
  [
    'allowFrom except of the other family',
    base({
      web: {
        image: 'x',
        allowFrom: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['2001:db8::/32'] } }],
      },
    }),
    'spec.web.allowFrom[0].ipBlock.except: each of except must be a strict subset of cidr',
  ],
  [
    'allowFrom bad label key',
    base({
      web: { image: 'x', allowFrom: [{ namespaceSelector: { matchLabels: { 'bad key': 'x' } } }] },
    }),
    'spec.web.allowFrom[0].namespaceSelector.matchLabels: matchLabels keys must be label keys such as app or example.com/tier',
  ],
  [
    'allowFrom bad label value',
    base({
      web: { image: 'x', allowFrom: [{ podSelector: { matchLabels: { app: 'no spaces' } } }] },
    }),
    'spec.web.allowFrom[0].podSelector.matchLabels.app: must match pattern "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$" (got "no spaces")',
  ],
  ['spec not a mapping', { ...base({}), spec: 'web' }, 'spec: Required value'],
];
