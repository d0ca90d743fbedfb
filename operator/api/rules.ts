// The one table of cross-field rules. Each rule is CEL: the CRD carries it as
// x-kubernetes-validations (the API server enforces it) and `scalable validate` evaluates
// the very same expression offline, so the two can never disagree.
// Rules that read `oldSelf` are transition rules: the API server checks them on every update,
// and `scalable validate --previous` checks them against the version it is given. Every spec
// field that feeds an immutable Kubernetes field (volumeClaimTemplates) has one.
import { OPERATOR_ENV_NAMES } from '../../sdk/src/contract/env-names.ts';

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

/** A consumer's stream and group in CEL: both default to its name. */
const streamOf = (v: string) => `(has(${v}.stream) ? ${v}.stream : ${v}.name)`;
const groupOf = (v: string) => `(has(${v}.group) ? ${v}.group : ${v}.name)`;

export const RULES: Readonly<Record<string, readonly CelRule[]>> = {
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
      rule: 'self.shards == 1 || has(self.shardKey)',
      message: 'shardKey is required when shards > 1',
      detail: "'got shards ' + string(self.shards)",
      reason: 'FieldValueRequired',
    },
  ],
  'spec.database.shards': [
    {
      rule: 'self >= oldSelf',
      message: 'shards cannot be decreased: every shard holds data',
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
};

export function rulesAt(path: string): readonly CelRule[] {
  return RULES[path] ?? [];
}

/** A transition rule compares with the stored object and is only checked on update. */
export function isTransitionRule(rule: CelRule): boolean {
  return /\boldSelf\b/.test(rule.rule);
}
