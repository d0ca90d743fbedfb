// The one table of cross-field rules. Each rule is CEL: the CRD carries it as
// x-kubernetes-validations (the API server enforces it) and `scalable validate` evaluates
// the very same expression offline, so the two can never disagree.
// Rules that read `oldSelf` are transition rules: the API server checks them on every update,
// and `scalable validate --previous` checks them against the version it is given. Every spec
// field that feeds an immutable Kubernetes field (volumeClaimTemplates) has one.
import { OPERATOR_ENV_NAMES } from '../../sdk/src/contract/env-names.ts';
import { ASYNC_MIN_FAILOVER_SECONDS } from './failover-defaults.ts';

export interface CelRule {
  readonly rule: string;
  /** What the user reads, from the API server and offline alike. */
  readonly message: string;
  /** Offline only: a CEL expression naming the values, appended in parentheses. Not sent to
   *  the API server: messageExpression with string(int) is costed as unbounded there
   *  (kubernetes/kubernetes#124234) and the CRD would be rejected. */
  readonly detail?: string;
  readonly reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired';
  /** The field the error is reported on, relative to the rule's node (e.g. .metadata.name). */
  readonly fieldPath?: string;
  /**
   * Checked when a spec is written (the API server, which ratchets it: an update that leaves
   * the rule's node unchanged passes; `scalable validate`), never on an app the operator
   * reads back: apps stored before the rule keep running, with what they can safely have.
   */
  readonly whenWritten?: true;
}

const reserved = OPERATOR_ENV_NAMES.map((n) => `'${n}'`).join(', ');

const ENV_RULES: readonly CelRule[] = [
  {
    rule: 'self.all(e, self.exists_one(f, f.name == e.name))',
    message: 'env names must be unique',
  },
  {
    rule: `self.all(e, !(e.name in [${reserved}]))`,
    message: `env must not set the names the operator injects (${OPERATOR_ENV_NAMES.join(', ')})`,
    reason: 'FieldValueForbidden',
  },
];
const ENV_ITEM_RULES: readonly CelRule[] = [
  {
    rule: 'has(self.value) != has(self.valueFrom)',
    message: 'set exactly one of value and valueFrom',
  },
];
const ENV_VALUE_FROM_RULES: readonly CelRule[] = [
  {
    rule: 'has(self.secretKeyRef) != has(self.configMapKeyRef)',
    message: 'set exactly one of secretKeyRef and configMapKeyRef',
  },
];

// Label keys as Kubernetes validates them ([prefix/]name); a schema cannot constrain map keys.
const LABEL_KEYS: CelRule = {
  rule: "!has(self.matchLabels) || self.matchLabels.all(k, k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$') && k.size() <= 317)",
  message: 'matchLabels keys must be label keys such as app or example.com/tier',
  fieldPath: '.matchLabels',
};

/** A consumer's stream and group in CEL: both default to its name. */
const streamOf = (v: string) => `(has(${v}.stream) ? ${v}.stream : ${v}.name)`;
const groupOf = (v: string) => `(has(${v}.group) ? ${v}.group : ${v}.name)`;

// Quantities: the schema checks their shape only, so every quantity field gets a floor its
// engine can start with (which also rules out zero and negative values) and a sane ceiling.
// CEL's quantity() is the API server's quantity library; validate.ts provides it offline.
// string(self): a quantity field is int-or-string. A value that is no quantity at all is the
// schema pattern's error: the rules pass it (`isQuantity` first), or the API server would add
// an evaluation error per rule ("quantities must match the regular expression ...").
const q = (self: string) => `quantity(string(${self}))`;
const isQ = (self: string) => `isQuantity(string(${self}))`;
const atLeast = (min: string, why: string): CelRule => ({
  rule: `!${isQ('self')} || ${q('self')}.compareTo(quantity('${min}')) >= 0`,
  message: `must be at least ${min}: ${why}`,
  detail: "'got ' + string(self)",
});
const atMost = (max: string, why: string): CelRule => ({
  rule: `!${isQ('self')} || ${q('self')}.compareTo(quantity('${max}')) <= 0`,
  message: `must be at most ${max}: ${why}`,
  detail: "'got ' + string(self)",
});
const CPU_MAX = atMost('512', 'no node has more cores');
const MEMORY_MAX = atMost('4Ti', 'no node has more memory');
const STORAGE_MAX = atMost('64Ti', 'the largest volumes cloud providers offer');
const REDIS_MEMORY = [
  atLeast('4Mi', 'Redis itself takes about 1 MiB, less leaves no room for data'),
  atMost('1Ti', 'a single Redis this large takes hours to resync a replica'),
];

/** A `resources` section: floors per tier, requests within limits (else the pod is refused). */
function resourceRules(
  path: string,
  floors: { readonly cpu: string; readonly memory: string; readonly why: string },
): Record<string, readonly CelRule[]> {
  const cpu = [atLeast(floors.cpu, floors.why), CPU_MAX];
  const memory = [atLeast(floors.memory, floors.why), MEMORY_MAX];
  return {
    [path]: [
      {
        rule: `!${isQ('self.requests.memory')} || !${isQ('self.limits.memory')} || ${q('self.requests.memory')}.compareTo(${q('self.limits.memory')}) <= 0`,
        message: 'requests.memory must be <= limits.memory',
      },
      {
        rule: `!has(self.limits.cpu) || !${isQ('self.requests.cpu')} || !${isQ('self.limits.cpu')} || ${q('self.requests.cpu')}.compareTo(${q('self.limits.cpu')}) <= 0`,
        message: 'requests.cpu must be <= limits.cpu',
      },
    ],
    [`${path}.requests.cpu`]: cpu,
    [`${path}.requests.memory`]: memory,
    [`${path}.limits.cpu`]: cpu,
    [`${path}.limits.memory`]: memory,
  };
}

const APP_FLOORS = { cpu: '1m', memory: '6Mi', why: 'the container runtime refuses less' };
const QUANTITY_RULES: Readonly<Record<string, readonly CelRule[]>> = {
  ...resourceRules('spec.web.resources', APP_FLOORS),
  ...resourceRules('spec.queue.consumers[].resources', APP_FLOORS),
  ...resourceRules('spec.database.resources', {
    cpu: '50m',
    memory: '256Mi',
    why: 'Postgres and Patroni need this much to start',
  }),
  'spec.cache.memory': REDIS_MEMORY,
  'spec.sessions.memory': REDIS_MEMORY,
  'spec.queue.memory': REDIS_MEMORY,
  'spec.database.storage.size': [
    atLeast('1Gi', 'Postgres keeps up to 1 GB of WAL (max_wal_size) besides the data'),
    STORAGE_MAX,
  ],
  'spec.sessions.storage.size': [
    atLeast('64Mi', 'the append-only file needs room to be rewritten'),
    STORAGE_MAX,
  ],
  'spec.queue.storage.size': [
    atLeast('64Mi', 'the append-only file needs room to be rewritten'),
    STORAGE_MAX,
  ],
};

/** Rules of both tables at one path. */
const merged = (
  ...tables: ReadonlyArray<Readonly<Record<string, readonly CelRule[]>>>
): Record<string, readonly CelRule[]> => {
  const out: Record<string, CelRule[]> = {};
  for (const t of tables) for (const [k, v] of Object.entries(t)) (out[k] ??= []).push(...v);
  return out;
};

export const RULES: Readonly<Record<string, readonly CelRule[]>> = merged(QUANTITY_RULES, {
  // Derived names such as <name>-db-12-ro and StatefulSet pod labels must fit in 63 chars,
  // and Services need DNS-1035 names (a letter first).
  '': [
    {
      rule: "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
      fieldPath: '.metadata.name',
      message:
        'must start with a letter and hold only lower-case letters, digits and "-" (it names Services)',
    },
    {
      rule: 'self.metadata.name.size() <= 40',
      fieldPath: '.metadata.name',
      message: 'must be at most 40 characters: it prefixes the names of every object the app gets',
      detail: "'got ' + string(self.metadata.name.size())",
    },
  ],
  spec: [
    {
      rule: '!has(self.cdn) || has(self.ingress)',
      message: 'cdn needs ingress: the CDN pulls static assets from the ingress as its origin',
    },
  ],
  'spec.web.autoscaling': [
    {
      rule: 'self.minReplicas <= self.maxReplicas',
      message: 'minReplicas must be <= maxReplicas',
      detail: "'got ' + string(self.minReplicas) + ' > ' + string(self.maxReplicas)",
    },
  ],
  'spec.web.allowFrom[]': [
    {
      rule: 'has(self.ipBlock) != (has(self.namespaceSelector) || has(self.podSelector))',
      message:
        'set ipBlock alone, or namespaceSelector and/or podSelector (a NetworkPolicy peer cannot mix them)',
    },
  ],
  'spec.web.allowFrom[].namespaceSelector': [LABEL_KEYS],
  'spec.web.allowFrom[].podSelector': [LABEL_KEYS],
  'spec.web.allowFrom[].ipBlock': [
    {
      rule: 'isCIDR(self.cidr)',
      message: 'cidr must be a CIDR such as 10.0.0.0/8 or 2001:db8::/32',
      fieldPath: '.cidr',
      detail: "'got ' + self.cidr",
    },
    {
      rule: '!has(self.except) || self.except.all(e, isCIDR(e))',
      message: 'except must hold CIDRs such as 10.1.0.0/16',
      fieldPath: '.except',
    },
    {
      // NetworkPolicy validation's own rule: each exception a strict subset of cidr.
      rule: '!has(self.except) || !isCIDR(self.cidr) || self.except.all(e, !isCIDR(e) || (cidr(self.cidr).containsCIDR(cidr(e)) && cidr(e).prefixLength() > cidr(self.cidr).prefixLength()))',
      message: 'each of except must be a strict subset of cidr',
      fieldPath: '.except',
    },
  ],
  'spec.web.env': ENV_RULES,
  'spec.web.env[]': ENV_ITEM_RULES,
  'spec.web.env[].valueFrom': ENV_VALUE_FROM_RULES,
  'spec.ingress': [
    {
      rule: '!has(self.gateway) || !has(self.className)',
      message:
        'className applies to an Ingress only: with gateway set, the Gateway decides; remove one of them',
    },
    {
      rule: '!has(self.gateway) || !has(self.tls)',
      message:
        "tls applies to an Ingress only: with gateway set, TLS is configured on the Gateway's listener",
    },
    {
      rule: '!has(self.tls) || has(self.host)',
      message: 'tls needs host: the certificate is issued for a host name',
    },
  ],
  // Raw controller configuration (ingress-nginx's configuration-snippet, server-snippet,
  // auth-snippet; HAProxy's *-config-snippet) runs as the controller, which serves every
  // namespace's hosts: not an app author's to set. (JS and RE2 both read the class form.)
  'spec.ingress.annotations': [
    {
      rule: "!self.exists(k, k.matches('[sS][nN][iI][pP][pP][eE][tT]'))",
      message:
        'annotations must not hold configuration snippets (keys containing "snippet"): they run as the ingress controller, for every namespace',
      reason: 'FieldValueForbidden',
    },
  ],
  'spec.database': [
    {
      rule: '!self.synchronous || self.replicasPerShard >= 1',
      message: 'synchronous replication needs replicasPerShard >= 1',
    },
    {
      rule: 'self.tls || !has(self.certificateIssuer)',
      message: 'certificateIssuer needs tls: true',
      fieldPath: '.certificateIssuer',
    },
    {
      // Stored apps may hold 10 (the default of every app before this rule): the operator runs
      // them on Patroni's 20 s lease and says so in DatabaseReady.
      rule: `self.synchronous || !has(self.failoverSeconds) || self.failoverSeconds >= ${ASYNC_MIN_FAILOVER_SECONDS}`,
      message: `failoverSeconds below ${ASYNC_MIN_FAILOVER_SECONDS} needs synchronous: true (a replica promoted before Patroni's ${ASYNC_MIN_FAILOVER_SECONDS} s lease ends may lack acknowledged writes); leave it out for 30 s, or set synchronous: true`,
      detail: "'got ' + string(self.failoverSeconds)",
      fieldPath: '.failoverSeconds',
      whenWritten: true,
    },
    {
      // Base backups from a replica need one; WAL archiving (the primary) needs none.
      rule: "!has(self.backup) || self.backup.runOn != 'Replica' || self.replicasPerShard >= 1",
      message:
        'runOn: Replica needs replicasPerShard >= 1; set runOn: Primary to back up a shard without replicas',
      fieldPath: '.backup.runOn',
    },
    {
      // The pooler's client certificate comes from the database's CA, and it verifies
      // Postgres with it (verify-full): no CA without tls.
      rule: 'self.tls || !has(self.pooler)',
      message:
        'pooler needs tls: true (PgBouncer serves and verifies certificates from the database CA)',
      fieldPath: '.pooler',
    },
    {
      // <= 1: zero shards is the schema minimum's error, not a missing shardKey.
      rule: 'self.shards <= 1 || has(self.shardKey)',
      message: 'shardKey is required when shards > 1',
      detail: "'got shards ' + string(self.shards)",
      reason: 'FieldValueRequired',
    },
  ],
  'spec.database.backup.retention': [
    {
      rule: '!has(self.fullBackups) || !has(self.days)',
      message:
        'set fullBackups or days, not both: pgBackRest keeps full backups by count or by age',
    },
  ],
  'spec.database.backup.s3.ca': [
    {
      rule: 'has(self.secretName) != has(self.configMapName)',
      message: 'set exactly one of secretName and configMapName',
    },
  ],
  'spec.database.pooler': [
    {
      rule: 'self.minPoolSize <= self.defaultPoolSize',
      message: 'minPoolSize must be <= defaultPoolSize',
      detail: "'got ' + string(self.minPoolSize) + ' > ' + string(self.defaultPoolSize)",
      fieldPath: '.minPoolSize',
    },
    {
      // The primary's max_connections is 200: leave 50 for replication, Patroni, the
      // exporter, PgBouncer's auth_query and direct clients.
      rule: '(self.defaultPoolSize + self.reservePoolSize) * self.replicas <= 150',
      message:
        "(defaultPoolSize + reservePoolSize) * replicas must be <= 150: the pods' server connections must fit in the primary's 200 max_connections",
      detail: "'got ' + string((self.defaultPoolSize + self.reservePoolSize) * self.replicas)",
    },
  ],
  'spec.database.version': [
    {
      rule: 'self == oldSelf',
      message: 'version is immutable: major upgrades are not supported yet',
    },
  ],
  'spec.database.storage': [
    {
      rule: 'self.size == oldSelf.size',
      message: 'storage.size cannot be changed yet: volume expansion is not supported yet',
    },
    {
      rule: 'has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)',
      message: 'storage.storageClassName is immutable: existing volumes keep their class',
    },
  ],
  // The session store's volume comes from a volumeClaimTemplate, which Kubernetes cannot change.
  'spec.sessions.storage': [
    {
      rule: 'self.size == oldSelf.size',
      message: 'storage.size cannot be changed yet: volume expansion is not supported yet',
    },
    {
      rule: 'has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)',
      message: 'storage.storageClassName is immutable: existing volumes keep their class',
    },
  ],
  // The queue store's volumes come from a volumeClaimTemplate, which Kubernetes cannot change.
  'spec.queue.storage': [
    {
      rule: 'self.size == oldSelf.size',
      message: 'storage.size cannot be changed yet: volume expansion is not supported yet',
    },
    {
      rule: 'has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)',
      message: 'storage.storageClassName is immutable: existing volumes keep their class',
    },
  ],
  'spec.queue.consumers': [
    {
      rule: 'self.all(c, self.exists_one(d, d.name == c.name))',
      message: 'consumer names must be unique',
    },
    {
      // Two Deployments in one group would split its messages between two programs.
      rule: `self.all(c, self.exists_one(d, ${streamOf('d')} == ${streamOf('c')} && ${groupOf('d')} == ${groupOf('c')}))`,
      message:
        'each stream + group must belong to one consumer (stream and group default to the consumer name)',
    },
  ],
  'spec.queue.consumers[]': [
    {
      rule: 'self.minReplicas <= self.maxReplicas',
      message: 'minReplicas must be <= maxReplicas',
      detail: "'got ' + string(self.minReplicas) + ' > ' + string(self.maxReplicas)",
    },
  ],
  // Workers get the same injected env as web pods, plus their consumer's.
  'spec.queue.consumers[].env': ENV_RULES,
  'spec.queue.consumers[].env[]': ENV_ITEM_RULES,
  'spec.queue.consumers[].env[].valueFrom': ENV_VALUE_FROM_RULES,
});

export function rulesAt(path: string): readonly CelRule[] {
  return RULES[path] ?? [];
}

/** A transition rule compares with the stored object and is only checked on update. */
export function isTransitionRule(rule: CelRule): boolean {
  return /\boldSelf\b/.test(rule.rule);
}
