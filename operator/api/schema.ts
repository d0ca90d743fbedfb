// The ScalableApp v1alpha1 API: the single source of the TypeScript types and of the CRD's
// OpenAPI schema (crd.ts). Conventions:
// - a field with a `default` is listed as required here, so Static<> gives the *defaulted*
//   model type; the CRD generator drops it from `required` (the API server fills it in);
// - a section left out of the spec is off; a section that is present is on with defaults;
// - cross-field rules live in rules.ts; crd.ts attaches them to the node at their path.
import Type from 'typebox';
import type { Static } from 'typebox';
import {
  DNS_LABEL_PATTERN,
  ENV_NAME_PATTERN,
  bool,
  image,
  int,
  opt,
  quantity,
  str,
  strEnum,
} from './fields.ts';

export const GROUP = 'scalable.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'ScalableApp';
export const PLURAL = 'scalableapps';

const NAME_MAX = 253;

const Resources = (what: string, requests: { cpu: string; memory: string }, memory: string) =>
  Type.Object(
    {
      requests: Type.Object(
        {
          cpu: quantity(`CPU requested for each ${what} container.`, requests.cpu),
          memory: quantity(`Memory requested for each ${what} container.`, requests.memory),
        },
        { description: 'What the scheduler reserves for each container.', default: {} },
      ),
      limits: Type.Object(
        {
          cpu: opt(
            quantity(
              `CPU limit for each ${what} container. Unset by default: CPU limits throttle latency-sensitive work.`,
            ),
          ),
          memory: quantity(`Memory limit for each ${what} container.`, memory),
        },
        { description: 'Hard limits for each container.', default: {} },
      ),
    },
    {
      description: `Compute resources of the ${what} containers.`,
      default: {},
    },
  );

const KeyRef = (what: string) =>
  Type.Object(
    {
      name: str(`Name of the ${what} in the app's namespace.`, {
        maxLength: NAME_MAX,
        minLength: 1,
      }),
      key: str(`Key within the ${what}.`, { maxLength: NAME_MAX, minLength: 1 }),
    },
    { description: `A key of a ${what}.` },
  );

const EnvVar = Type.Object(
  {
    name: str('Name of the environment variable.', {
      pattern: ENV_NAME_PATTERN,
      maxLength: 128,
    }),
    value: opt(str('Literal value.', { maxLength: 32768 })),
    valueFrom: opt(
      Type.Object(
        {
          secretKeyRef: opt(KeyRef('Secret')),
          configMapKeyRef: opt(KeyRef('ConfigMap')),
        },
        {
          description: 'Take the value from a Secret or ConfigMap key.',
        },
      ),
    ),
  },
  { description: 'One environment variable.' },
);

const Env = Type.Array(EnvVar, {
  description:
    'Extra environment variables for the containers. Names the operator injects (REDIS_URL, DATABASE_HOST, ...) are reserved.',
  maxItems: 64,
  default: [],
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': ['name'],
});

const Storage = (what: string, size: string) =>
  Type.Object(
    {
      size: quantity(`Size of each ${what} volume.`, size),
      storageClassName: opt(
        str(`StorageClass of the ${what} volumes. Unset: the cluster's default class.`, {
          maxLength: NAME_MAX,
        }),
      ),
    },
    { description: `Persistent volumes of the ${what}.`, default: {} },
  );

// Label selectors as NetworkPolicy peers take them: label values' shape here, keys by a
// rule (rules.ts), since a CRD schema cannot constrain map keys.
const MatchLabels = (what: string) =>
  Type.Object(
    {
      matchLabels: opt(
        Type.Record(
          Type.String(),
          str('Label value.', {
            maxLength: 63,
            pattern: '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$',
          }),
          {
            description: `Labels the ${what} must all carry. Empty: every ${what}.`,
            maxProperties: 16,
          },
        ),
      ),
    },
    { description: `Selects ${what}s by label.` },
  );

const CIDR_MAX = 43; // the longest IPv6 prefix: 39 characters, a slash and 3 digits

const AllowFrom = Type.Array(
  Type.Object(
    {
      namespaceSelector: opt(MatchLabels('namespace')),
      podSelector: opt(
        MatchLabels("pod (in the app's namespace, or with namespaceSelector in those namespaces)"),
      ),
      ipBlock: opt(
        Type.Object(
          {
            cidr: str('Addresses admitted, as a CIDR, e.g. 10.0.0.0/8 or 2001:db8::/32.', {
              maxLength: CIDR_MAX,
            }),
            except: opt(
              Type.Array(str('A CIDR within cidr.', { maxLength: CIDR_MAX }), {
                description: 'Ranges within cidr that are not admitted.',
                maxItems: 16,
              }),
            ),
          },
          { description: 'Admit addresses (e.g. a load balancer outside the cluster).' },
        ),
      ),
    },
    {
      description:
        'One NetworkPolicy peer: namespaceSelector, podSelector, both (those pods in those namespaces), or ipBlock alone.',
    },
  ),
  {
    description:
      "Who may reach the web port (the ingress path), replacing the operator-wide ingress-controller namespaces (Helm networkPolicy.ingressNamespaces). The app's own pods, the Gateway's namespace (ingress.gateway) and Prometheus on the metrics port are admitted either way. Unset: the operator-wide list. Empty: no one else.",
    maxItems: 32,
  },
);

const Web = Type.Object(
  {
    image: image('Container image of the stateless web tier, e.g. ghcr.io/acme/shop:1.4.2.'),
    port: int('Port the web container listens on (handed to the app as PORT).', {
      minimum: 1,
      maximum: 65535,
      default: 8080,
    }),
    env: Env,
    resources: Resources('web', { cpu: '250m', memory: '256Mi' }, '512Mi'),
    probes: Type.Object(
      {
        readinessPath: str('HTTP path the readiness probe GETs.', {
          pattern: '^/',
          maxLength: 256,
          default: '/healthz',
        }),
        livenessPath: opt(
          str(
            'HTTP path the liveness probe GETs; it restarts the container after a minute of failures. Unset: liveness only checks that the port accepts connections, so a slow dependency takes pods out of rotation (readiness) without restarting them.',
            { pattern: '^/', maxLength: 256 },
          ),
        ),
      },
      { description: 'Health checks of the web container.', default: {} },
    ),
    autoscaling: Type.Object(
      {
        minReplicas: int(
          'Fewest web pods. At least 2 by default: no single point of failure in the web tier.',
          { minimum: 1, maximum: 1000, default: 2 },
        ),
        maxReplicas: int('Most web pods the autoscaler may run.', {
          minimum: 1,
          maximum: 1000,
          default: 10,
        }),
        targetCPUUtilization: int(
          'Average CPU utilisation (percent of requests) the autoscaler aims for.',
          { minimum: 1, maximum: 100, default: 70 },
        ),
        scaleDownStabilizationSeconds: opt(
          int(
            "How long the load must stay low before the autoscaler removes web pods (it keeps the highest count it computed in this window, so a short dip does not shed pods it needs again a minute later). Unset: Kubernetes' default, 300.",
            { minimum: 0, maximum: 3600 },
          ),
        ),
      },
      {
        description: 'Horizontal autoscaling of the web tier on CPU.',
        default: {},
      },
    ),
    allowFrom: opt(AllowFrom),
    metrics: opt(
      Type.Object(
        {
          port: opt(
            int(
              'Port the web container serves Prometheus metrics on. Unset: the web port. A port of its own keeps the app port closed to Prometheus.',
              { minimum: 1, maximum: 65535 },
            ),
          ),
          path: str('HTTP path of the metrics endpoint.', {
            pattern: '^/',
            maxLength: 256,
            default: '/metrics',
          }),
        },
        {
          description:
            "The web pods' own Prometheus metrics, scraped by a PodMonitor when monitoring is on. Unset: not scraped.",
        },
      ),
    ),
  },
  {
    description:
      'The stateless web tier: a Deployment behind a Service, scaled by a HorizontalPodAutoscaler. Required.',
  },
);

const Ingress = Type.Object(
  {
    host: opt(
      str('Host name the app is served on, e.g. shop.example.com. Unset: every host.', {
        maxLength: 253,
        pattern: '^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
      }),
    ),
    className: opt(
      str("IngressClass to use. Unset: the cluster's default class. Ingress only.", {
        maxLength: NAME_MAX,
      }),
    ),
    annotations: opt(
      Type.Record(Type.String(), Type.String({ description: 'Annotation value.' }), {
        description: 'Extra annotations for the Ingress or HTTPRoute.',
        maxProperties: 64,
      }),
    ),
    tls: opt(
      Type.Object(
        {
          secretName: str('Secret of type kubernetes.io/tls holding the certificate for host.', {
            minLength: 1,
            maxLength: NAME_MAX,
          }),
        },
        { description: 'Terminate TLS at the Ingress. Ingress only.' },
      ),
    ),
    staticAssets: Type.Object(
      {
        pathPrefix: str('Path under which the app serves versioned static assets.', {
          pattern: '^/[A-Za-z0-9._~/-]*$',
          maxLength: 256,
          default: '/static',
        }),
        maxAgeSeconds: int(
          'max-age of the Cache-Control header on static assets. Assets are versioned, so a year is safe.',
          { minimum: 0, maximum: 31536000, default: 31536000 },
        ),
      },
      {
        description:
          'The static-asset route: responses carry Cache-Control: public, max-age=N, immutable so browsers and CDNs keep them.',
        default: {},
      },
    ),
    gateway: opt(
      Type.Object(
        {
          name: str('Name of the Gateway.', {
            minLength: 1,
            maxLength: NAME_MAX,
            pattern: DNS_LABEL_PATTERN,
          }),
          namespace: opt(
            str("Namespace of the Gateway. Unset: the app's namespace.", {
              maxLength: 63,
              pattern: DNS_LABEL_PATTERN,
            }),
          ),
          sectionName: opt(
            str('Listener of the Gateway to attach to. Unset: every listener that allows it.', {
              maxLength: 253,
            }),
          ),
        },
        {
          description:
            'Attach a Gateway API HTTPRoute to this Gateway instead of creating an Ingress.',
        },
      ),
    ),
  },
  {
    description:
      'Expose the web tier: a networking.k8s.io/v1 Ingress, or a Gateway API HTTPRoute when gateway is set.',
  },
);

const Cdn = Type.Object(
  {
    baseURL: str(
      'Base URL of the CDN in front of the static assets, handed to the app as ASSET_BASE_URL.',
      { pattern: '^https?://[^\\s/$.?#].[^\\s]*$', maxLength: 2048 },
    ),
  },
  { description: 'A CDN that serves the static assets, with the ingress as its origin.' },
);

export const EVICTION_POLICIES = [
  'allkeys-lru',
  'allkeys-lfu',
  'allkeys-random',
  'volatile-lru',
  'volatile-lfu',
  'volatile-random',
  'volatile-ttl',
  'noeviction',
] as const;

const Cache = Type.Object(
  {
    enabled: bool('Turn the cache off without removing its settings.', true),
    memory: quantity(
      'Memory for cached data (Redis maxmemory). The container gets headroom above it.',
      '256Mi',
    ),
    evictionPolicy: strEnum(
      "Redis maxmemory-policy: what Redis evicts when memory is full. Redis's own names.",
      EVICTION_POLICIES,
      'allkeys-lru',
    ),
    defaultTTLSeconds: int('Default time to live of cached entries, handed to the app.', {
      minimum: 1,
      maximum: 2592000,
      default: 300,
    }),
    replicas: int(
      'Redis replicas. More than 0 adds a 3-member Sentinel set that promotes a replica when the master fails.',
      { minimum: 0, maximum: 5, default: 0 },
    ),
    tls: bool(
      'TLS only for the cache (Redis tls-port, the plain port closed; replication and Sentinel over TLS too), with certificates from the operator; clients get rediss:// and the CA. false gives up encryption and server authentication in transit: only for networks that encrypt elsewhere (e.g. a service mesh).',
      true,
    ),
  },
  {
    description:
      'A Redis cache with maxmemory and an eviction policy. Only evictable data lives here.',
  },
);

const Sessions = Type.Object(
  {
    store: strEnum('Where sessions live.', ['redis'] as const, 'redis'),
    memory: quantity(
      'Memory for session data (Redis maxmemory). When it is full, new sessions fail rather than evict live ones.',
      '256Mi',
    ),
    ttlSeconds: int('Session lifetime, handed to the app as SESSION_TTL_SECONDS.', {
      minimum: 60,
      maximum: 31536000,
      default: 86400,
    }),
    storage: Storage('session store', '1Gi'),
    tls: bool(
      'TLS only for the session store (Redis tls-port, the plain port closed), with certificates from the operator; clients get rediss:// and the CA. false gives up encryption and server authentication in transit: only for networks that encrypt elsewhere (e.g. a service mesh).',
      true,
    ),
  },
  {
    description:
      'Keep the web tier stateless: sessions live in a persistent Redis of their own (append-only file, no eviction), never in a web pod.',
  },
);

// Backups with pgBackRest to an S3-compatible store (issue 28). Each shard is a stanza of its
// own under one repository path, so one bucket serves every shard of the app.
export const BACKUP_RUN_ON = ['Replica', 'Primary'] as const;
/** The keys of the credentials Secret (the AWS CLI's environment names). */
export const BACKUP_CREDENTIAL_KEYS = {
  accessKeyId: 'AWS_ACCESS_KEY_ID',
  secretAccessKey: 'AWS_SECRET_ACCESS_KEY',
} as const;

const Backup = Type.Object(
  {
    s3: Type.Object(
      {
        endpoint: str(
          'URL of the S3-compatible endpoint, https only: https://host or https://host:port (e.g. https://s3.eu-west-1.amazonaws.com).',
          {
            maxLength: 2048,
            pattern: '^https://[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?(:[0-9]{1,5})?/?$',
          },
        ),
        bucket: str('Bucket that holds the repository. It must exist.', {
          minLength: 3,
          maxLength: 63,
          pattern: '^[a-z0-9][a-z0-9.-]*[a-z0-9]$',
        }),
        path: opt(
          str(
            'Path of the repository in the bucket; each shard is a stanza of its own under it. Unset: /<namespace>/<app name>.',
            { maxLength: 1024, pattern: '^/[A-Za-z0-9._/-]*$' },
          ),
        ),
        region: str('Region the endpoint signs requests for.', {
          minLength: 1,
          maxLength: 64,
          pattern: '^[a-z0-9-]+$',
          default: 'us-east-1',
        }),
        uriStyle: strEnum(
          'How buckets are addressed: host (bucket.endpoint, as AWS) or path (endpoint/bucket, most self-hosted stores).',
          ['host', 'path'] as const,
          'host',
        ),
        credentialsSecret: str(
          `Secret in the app's namespace with the access key under ${BACKUP_CREDENTIAL_KEYS.accessKeyId} and the secret key under ${BACKUP_CREDENTIAL_KEYS.secretAccessKey}. The pods read them as environment variables; they never enter a ConfigMap.`,
          { minLength: 1, maxLength: NAME_MAX, pattern: DNS_LABEL_PATTERN },
        ),
        ca: opt(
          Type.Object(
            {
              secretName: opt(
                str("Secret in the app's namespace holding the CA certificate.", {
                  maxLength: NAME_MAX,
                  pattern: DNS_LABEL_PATTERN,
                }),
              ),
              configMapName: opt(
                str("ConfigMap in the app's namespace holding the CA certificate.", {
                  maxLength: NAME_MAX,
                  pattern: DNS_LABEL_PATTERN,
                }),
              ),
              key: str('Key holding the PEM certificate(s).', {
                minLength: 1,
                maxLength: NAME_MAX,
                pattern: '^[-._a-zA-Z0-9]+$',
                default: 'ca.crt',
              }),
            },
            {
              description:
                "CA that signed a private endpoint's certificate, from a Secret or a ConfigMap (one of them). Unset: the system's CAs. The endpoint's certificate is verified either way.",
            },
          ),
        ),
      },
      { description: 'The S3-compatible store (pgBackRest repo1-type s3).' },
    ),
    schedule: str(
      'When full base backups run, a cron expression of five fields (UTC). WAL is archived continuously whatever this says.',
      { maxLength: 128, pattern: '^\\S+(\\s+\\S+){4}$', default: '0 2 * * *' },
    ),
    retention: Type.Object(
      {
        fullBackups: opt(
          int('Full backups kept, with the WAL to recover from each. Unset with days unset: 2.', {
            minimum: 1,
            maximum: 9999,
          }),
        ),
        days: opt(
          int('Days full backups are kept, instead of a count.', { minimum: 1, maximum: 9999 }),
        ),
      },
      {
        description:
          'How many full backups pgBackRest keeps (fullBackups) or for how long (days): one of them. pgBackRest expires older backups and the WAL only they need.',
        default: {},
      },
    ),
    runOn: strEnum(
      'Where base backups run: on a Replica (the primary does no extra work; needs replicasPerShard >= 1) or on the Primary. WAL is archived by whichever member is primary either way.',
      BACKUP_RUN_ON,
      'Replica',
    ),
  },
  {
    description:
      'Continuous WAL archiving and base backups of every shard to an S3-compatible store, with pgBackRest. Unset: no backups.',
  },
);

export const POSTGRES_VERSIONS = ['16', '17', '18'] as const;

export const POOLER_MODES = ['transaction', 'session'] as const;

// Off unless the section is present, like every other section: turning it on moves the app's
// DATABASE_URL behind PgBouncer, and transaction pooling changes what a connection keeps
// (session SET, advisory locks, LISTEN): an app must opt in.
const Pooler = Type.Object(
  {
    mode: strEnum(
      'PgBouncer pool_mode. transaction: a server connection per transaction (session state such as SET, LISTEN or advisory locks does not survive between transactions; protocol-level prepared statements do). session: a server connection per client connection, fewer savings.',
      POOLER_MODES,
      'transaction',
    ),
    replicas: int('PgBouncer pods per shard, spread over zones.', {
      minimum: 1,
      maximum: 20,
      default: 2,
    }),
    defaultPoolSize: int(
      "Server connections each PgBouncer pod opens to the primary (default_pool_size). Times replicas, it must stay below the primary's 200 max_connections.",
      { minimum: 1, maximum: 150, default: 20 },
    ),
    minPoolSize: int('Server connections each pod keeps open when idle (min_pool_size).', {
      minimum: 0,
      maximum: 150,
      default: 0,
    }),
    reservePoolSize: int(
      'Extra server connections a pod may open when clients wait longer than 5 s (reserve_pool_size).',
      { minimum: 0, maximum: 50, default: 0 },
    ),
    maxClientConnections: int('Client connections each PgBouncer pod accepts (max_client_conn).', {
      minimum: 10,
      maximum: 50000,
      default: 1000,
    }),
    resources: Resources('PgBouncer', { cpu: '100m', memory: '64Mi' }, '128Mi'),
  },
  {
    description:
      "PgBouncer in front of each shard's primary (<app>-db-<shard>-rw-pooler), so many app pods share few Postgres connections. Off unless present: an app opts in, since transaction pooling drops session state between transactions. Turned on, app pods (the shard map, DATABASE_HOST) are pointed at it once every shard's PgBouncer has a ready pod, and stay pointed at it.",
  },
);

const Database = Type.Object(
  {
    enabled: bool('Turn the database off. Its volumes stay unless deletionPolicy is Delete.', true),
    version: strEnum('Postgres major version. Immutable.', POSTGRES_VERSIONS, '17'),
    shards: int(
      "Number of shard groups. Each is a Patroni cluster of its own. Changing it moves buckets online (status.resharding): growing moves a share of every shard's buckets to the new ones; shrinking moves the departing shards' buckets to those that stay, and removes a departing group only once it owns none (its volumes stay).",
      { minimum: 1, maximum: 64, default: 1 },
    ),
    replicasPerShard: int('Streaming replicas per shard, besides the primary.', {
      minimum: 0,
      maximum: 5,
      default: 1,
    }),
    storage: Storage('Postgres', '10Gi'),
    resources: Resources('Postgres', { cpu: '500m', memory: '1Gi' }, '1Gi'),
    synchronous: bool(
      'Synchronous replication: a commit waits for a replica, so failover loses no acknowledged write.',
      false,
    ),
    failoverSeconds: opt(
      int(
        "Time from a primary's death (kill -9, a lost node) to a new primary taking writes. Default 10 with synchronous: true, 30 otherwise. From 20 s up it is Patroni's leader lease (ttl). Below 20 s (synchronous only: an asynchronous replica promoted early may lack acknowledged writes) Patroni keeps its 20 s lease and the operator releases the lock of a primary silent for failoverSeconds - 1 s (at least 9), once the pod's fence has stopped its Postgres and the synchronous standby has stopped streaming from it. Members act every loop_wait (1 s at a 20 s lease), so a shorter time costs the API server more requests.",
        { minimum: 10, maximum: 300 },
      ),
    ),
    shardKey: opt(
      str(
        'Name of the key the app shards by (e.g. customer_id), recorded in the shard map. Required when shards > 1.',
        { maxLength: 63, pattern: '^[a-z_][a-z0-9_]*$' },
      ),
    ),
    deletionPolicy: strEnum(
      'What happens to the volumes when the app or the database is deleted. Retain keeps them.',
      ['Retain', 'Delete'] as const,
      'Retain',
    ),
    tls: bool(
      'TLS for every TCP connection to Postgres (clients, replication, Patroni REST API), with certificates from the operator. false gives up encryption and server authentication in transit: only for networks that encrypt elsewhere (e.g. a service mesh).',
      true,
    ),
    pooler: opt(Pooler),
    certificateIssuer: opt(
      Type.Object(
        {
          name: str('Name of the cert-manager Issuer or ClusterIssuer.', {
            maxLength: NAME_MAX,
            minLength: 1,
          }),
          kind: strEnum(
            "Issuer (in the app's namespace) or ClusterIssuer.",
            ['Issuer', 'ClusterIssuer'] as const,
            'Issuer',
          ),
        },
        {
          description:
            "When cert-manager (cert-manager.io/v1) is served: the issuer of the database's certificates. It must put ca.crt in the Secrets it writes (a CA or Vault issuer does). Unset: a self-signed CA Issuer of the app's own. Without cert-manager the operator issues the certificates itself and this is unused.",
        },
      ),
    ),
    backup: opt(Backup),
  },
  {
    description:
      'Postgres managed by Patroni: per shard a primary and streaming replicas, automatic failover, -rw and -ro Services, and a shard map.',
  },
);

const Consumer = Type.Object(
  {
    name: str('Name of the worker Deployment (<app>-worker-<name>).', {
      pattern: DNS_LABEL_PATTERN,
      maxLength: 20,
    }),
    image: image('Container image of the worker.'),
    stream: opt(
      str('Redis stream the worker reads (QUEUE_STREAM). Unset: the consumer name.', {
        maxLength: 128,
        minLength: 1,
        pattern: '^[A-Za-z0-9._:-]+$',
      }),
    ),
    group: opt(
      str(
        'Consumer group the workers share (QUEUE_GROUP): each message goes to one worker of the group. Unset: the consumer name.',
        { maxLength: 128, minLength: 1, pattern: '^[A-Za-z0-9._:-]+$' },
      ),
    ),
    minReplicas: int('Fewest workers; 0 scales to zero when the stream is empty.', {
      minimum: 0,
      maximum: 1000,
      default: 0,
    }),
    maxReplicas: int('Most workers.', { minimum: 1, maximum: 1000, default: 10 }),
    targetBacklog: int(
      "Messages not yet read by the group (its lag) per worker that KEDA aims for (the redis-streams trigger's lagCount). Any lag wakes a worker from zero.",
      { minimum: 1, maximum: 100000, default: 10 },
    ),
    maxDeliveries: int(
      'Deliveries of one message before it goes to the dead-letter stream <stream>:dead (QUEUE_MAX_DELIVERIES).',
      { minimum: 1, maximum: 100, default: 5 },
    ),
    pollingIntervalSeconds: int('How often KEDA checks the backlog.', {
      minimum: 1,
      maximum: 3600,
      default: 30,
    }),
    cooldownSeconds: int(
      'How long the backlog must stay empty before KEDA scales the workers back to minReplicas (when that is 0).',
      { minimum: 0, maximum: 86400, default: 300 },
    ),
    terminationGracePeriodSeconds: int(
      'How long a stopping worker may take to finish the messages it holds before it is killed; unfinished ones stay pending and another worker claims them.',
      { minimum: 1, maximum: 86400, default: 60 },
    ),
    env: Env,
    resources: Resources('worker', { cpu: '100m', memory: '128Mi' }, '256Mi'),
  },
  { description: 'A worker Deployment consuming one stream as one consumer group.' },
);

const Queue = Type.Object(
  {
    consumers: Type.Array(Consumer, {
      description: "Worker Deployments, each scaled on its consumer group's backlog.",
      minItems: 1,
      maxItems: 20,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
    }),
    memory: quantity(
      'Memory for queued messages (Redis maxmemory, noeviction). When it is full, enqueueing fails instead of dropping messages.',
      '256Mi',
    ),
    maxLength: int(
      'Stream retention: producers trim each stream to about this many entries (XADD MAXLEN ~, QUEUE_MAX_LENGTH). Trimming drops the oldest entries whether or not they were acknowledged: size it above the worst backlog.',
      { minimum: 1000, maximum: 100000000, default: 100000 },
    ),
    storage: Storage('queue', '1Gi'),
    replicas: int(
      'Redis replicas of the queue store, each with its own volume. More than 0 adds a 3-member Sentinel set that promotes a replica when the master fails (apps and KEDA then find the master through Sentinel).',
      { minimum: 0, maximum: 5, default: 0 },
    ),
    kedaNamespace: str(
      "Namespace KEDA runs in; the queue store's NetworkPolicy admits it so KEDA can read the backlog.",
      { maxLength: 63, pattern: DNS_LABEL_PATTERN, default: 'keda' },
    ),
    tls: bool(
      'TLS only for the queue store (Redis tls-port, the plain port closed; replication, Sentinel and the KEDA scalers over TLS too), with certificates from the operator; clients get rediss:// and the CA. false gives up encryption and server authentication in transit: only for networks that encrypt elsewhere (e.g. a service mesh).',
      true,
    ),
  },
  {
    description:
      'A durable queue (Redis Streams on a persistent Redis of its own: append-only file, PVC, noeviction) with worker Deployments scaled by KEDA on their backlog, down to zero.',
  },
);

const Monitoring = Type.Object(
  {
    enabled: bool('Turn monitoring off without removing its settings.', true),
    prometheusRelease: opt(
      str(
        'Value of the release label your Prometheus selects PodMonitors and PrometheusRules by (kube-prometheus-stack: its release name).',
        { maxLength: 63 },
      ),
    ),
    alerts: bool('Create PrometheusRule alerts.', true),
    dashboards: bool('Create a Grafana dashboard ConfigMap.', true),
  },
  {
    description:
      'PodMonitors, PrometheusRule alerts and a Grafana dashboard (needs the Prometheus Operator CRDs).',
  },
);

const Topology = Type.Object(
  {
    spreadAcrossZones: bool(
      "Spread every tier over zones and nodes (topology.kubernetes.io/zone, kubernetes.io/hostname). Whatever this says, the members of one replicated data set (a shard's Postgres, a replicated cache or queue, their Sentinels) never share a node while the cluster has a schedulable node for each; on fewer nodes they share.",
      true,
    ),
    whenUnsatisfiable: strEnum(
      'What the scheduler does when a spread cannot be met. ScheduleAnyway keeps single-zone clusters working. DoNotSchedule makes zone spread a requirement, and a node of its own per member of a replicated data set too: a member with no node left to itself stays Pending.',
      ['ScheduleAnyway', 'DoNotSchedule'] as const,
      'ScheduleAnyway',
    ),
  },
  { description: 'Where pods run.', default: {} },
);

export const ScalableAppSpec = Type.Object(
  {
    web: Web,
    ingress: opt(Ingress),
    cdn: opt(Cdn),
    cache: opt(Cache),
    sessions: opt(Sessions),
    database: opt(Database),
    queue: opt(Queue),
    monitoring: opt(Monitoring),
    topology: Topology,
  },
  {
    description:
      'The desired architecture. web is required; any other section left out is off, a section that is present is on with defaults.',
  },
);

const Condition = Type.Object(
  {
    type: str('Type of condition: Ready, Progressing, Degraded, WebReady, CacheReady, ...', {
      maxLength: 316,
    }),
    status: strEnum('True, False or Unknown.', ['True', 'False', 'Unknown'] as const),
    reason: str('Machine-readable CamelCase reason.', { maxLength: 1024 }),
    message: str('Human-readable details.', { maxLength: 32768 }),
    observedGeneration: opt(
      int('The generation this condition was computed for.', { format: 'int64', minimum: 0 }),
    ),
    lastTransitionTime: str('When status last changed.', { format: 'date-time' }),
  },
  { description: 'A Kubernetes condition.' },
);

const TierStatus = (what: string, extra: Record<string, ReturnType<typeof int>> = {}) =>
  Type.Object(
    {
      replicas: opt(int(`${what} pods that exist.`, { minimum: 0 })),
      readyReplicas: opt(int(`${what} pods that are ready.`, { minimum: 0 })),
      ready: opt(str(`Ready over desired ${what} pods, e.g. 2/2.`)),
      ...extra,
    },
    { description: `Observed state of the ${what}.` },
  );

const ShardStatus = Type.Object(
  {
    index: int('Shard number.', { minimum: 0 }),
    primary: opt(str('Pod that is the primary now.')),
    readyReplicas: int('Replicas that are ready.', { minimum: 0 }),
    replicas: int('Desired replicas.', { minimum: 0 }),
  },
  { description: 'One shard.' },
);

export const ScalableAppStatus = Type.Object(
  {
    observedGeneration: opt(int('The generation the operator last acted on.', { format: 'int64' })),
    conditions: opt(
      Type.Array(Condition, {
        description: 'Ready, Progressing, Degraded and one per tier.',
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['type'],
      }),
    ),
    web: opt(TierStatus('web', { desiredReplicas: int('Replicas the autoscaler wants.') })),
    cache: opt(TierStatus('cache')),
    sessions: opt(TierStatus('session store')),
    database: opt(
      Type.Object(
        { shards: Type.Array(ShardStatus, { description: 'Per shard.' }) },
        { description: 'Observed state of the database.' },
      ),
    ),
    queue: opt(
      Type.Object(
        {
          replicas: opt(int('Queue store pods that exist.', { minimum: 0 })),
          readyReplicas: opt(int('Queue store pods that are ready.', { minimum: 0 })),
          ready: opt(str('Ready over desired queue store pods, e.g. 1/1.')),
          consumers: Type.Array(
            Type.Object(
              {
                name: str('Consumer name.'),
                replicas: int('Workers running.', { minimum: 0 }),
                scaler: str('KEDA, or None when KEDA is not installed (fixed replicas).'),
              },
              { description: 'One consumer.' },
            ),
            { description: 'Per consumer.' },
          ),
        },
        { description: 'Observed state of the queue.' },
      ),
    ),
    shardMap: opt(
      Type.Object(
        {
          version: int('Version of the shard map; bumped whenever a bucket moves.', { minimum: 1 }),
          configMapName: str('ConfigMap holding the shard map as JSON.'),
          buckets: int('Number of hash buckets.', { minimum: 1 }),
          ranges: opt(
            Type.Array(
              Type.Object(
                {
                  from: int('First bucket of the range.', { minimum: 0 }),
                  to: int('One past the last bucket of the range.', { minimum: 1 }),
                  shard: int('The shard that holds the rows of these buckets.', { minimum: 0 }),
                },
                { description: 'Buckets [from, to) held by one shard.' },
              ),
              {
                description:
                  'Which shard holds which buckets, as recorded (also on each shard StatefulSet): the map is restored from here if its ConfigMap is lost.',
              },
            ),
          ),
        },
        { description: 'Summary of the shard map.' },
      ),
    ),
    url: opt(str('Where the app is reachable.')),
    resharding: opt(
      Type.Object(
        {
          phase: str('Prepare, SchemaCopy, InitialCopy, CatchUp, Cutover, Cleanup, or Aborting.'),
          fromShards: int('Shards that owned buckets when the move began.', { minimum: 1 }),
          toShards: int('Shards that own buckets when it ends.', { minimum: 1 }),
          mapVersion: int('The shard map version the cutover publishes.', { minimum: 1 }),
          ranges: Type.Array(
            Type.Object(
              {
                from: int('First bucket of the range.', { minimum: 0 }),
                to: int('One past the last bucket of the range.', { minimum: 1 }),
                shard: int('The shard that holds the rows of these buckets after the move.', {
                  minimum: 0,
                }),
              },
              { description: 'Buckets [from, to) and their owner after the move.' },
            ),
            { description: 'The assignment the cutover publishes.' },
          ),
          moves: Type.Array(
            Type.Object(
              {
                id: str('Names the publication, subscription, slot and fence of the move.'),
                source: int('Shard the buckets leave.', { minimum: 0 }),
                target: int('Shard the buckets go to.', { minimum: 0 }),
                ranges: Type.Array(
                  Type.Object(
                    {
                      from: int('First bucket.', { minimum: 0 }),
                      to: int('One past the last bucket.', { minimum: 1 }),
                    },
                    { description: 'Buckets [from, to).' },
                  ),
                  { description: 'The buckets this move carries.' },
                ),
                fenceLsn: opt(str("The source's WAL position right after the fence.")),
                caughtUp: opt(
                  Type.Boolean({
                    description: 'The target confirmed every write before the fence.',
                  }),
                ),
              },
              { description: 'One source -> target move.' },
            ),
            { description: 'The moves of this resharding, in lockstep.' },
          ),
          publishedAt: opt(
            str(
              'When the new map became the record (the cutover); apps read it within the ack delay.',
            ),
          ),
          note: opt(
            Type.Object(
              {
                reason: str('Why the move waits (e.g. SequenceColumnsRefused, ReshardingBlocked).'),
                message: str('What to do about it.'),
              },
              { description: 'A move that cannot go on by itself says why here.' },
            ),
          ),
        },
        {
          description:
            'A bucket move in progress (online resharding), written by the operator before each step; absent when none.',
        },
      ),
    ),
  },
  { description: 'Observed state, written by the operator.' },
);

export type ScalableAppSpecModel = Static<typeof ScalableAppSpec>;
export type ScalableAppStatus = Static<typeof ScalableAppStatus>;
export type Condition = Static<typeof Condition>;

export interface ScalableAppObject {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    resourceVersion?: string;
  };
  spec: ScalableAppSpecModel;
  status?: ScalableAppStatus;
}
