// Cluster objects the chart installs beside the operator to bound what it, and the Patroni
// members it creates, may do: RBAC cannot express "only objects carrying these labels", "not
// in kube-system" or "only this label of your own pod", a ValidatingAdmissionPolicy can
// (admissionregistration.k8s.io/v1, Kubernetes >= 1.30). Written down once here; the chart's
// templates are generated from these functions (chart-files.ts) and the integration tests
// install the same objects.
//
// - <prefix> (the release's full name): requests of the operator's ServiceAccount.
//   Namespaced objects only, never in kube-system, kube-public or kube-node-lease; only
//   objects labelled with an app (scalable.dev/app, or Patroni's scalable.dev/database), and
//   on update only objects that already were (no taking over another's object by labelling
//   it); Secrets of type Opaque or kubernetes.io/tls only (never a ServiceAccount token);
//   RoleBindings only of the Patroni ClusterRole to the app's own <app>-db ServiceAccount; no
//   Roles; Deployments and StatefulSets only with the app's own ServiceAccounts. Exempt: its
//   ScalableApps, Events, and in its own namespace its Lease and CA Secret.
// - <prefix>-patroni: requests of a Patroni member (a ServiceAccount bound to the Patroni
//   ClusterRole, tiers/database/rbac.ts). Pods: update only, only its own (the pod its token
//   is bound to), only the role label and the status annotation. ConfigMaps: create and
//   update only its own shards' (<app>-db-<n>-config|leader|failover|sync), labelled with its
//   database and shard, no other label added.
// - <prefix>-apps: what a ScalableApp's author may claim beyond the namespace. A host only as
//   the namespace allows (annotation scalable.dev/ingress-hosts, set by whoever administers
//   the namespace: exact names or *.suffix patterns), so one tenant cannot take over another's
//   host or paths; required on every namespace when admissionPolicies.requireHostAnnotation;
//   and a ClusterIssuer only if the chart lists it (admissionPolicies.allowedClusterIssuers):
//   an issuer trusted cluster-wide would sign whatever names the app asks for.
import { DEFAULT_RBAC } from './api/model.ts';
import { CA_SECRET_NAME } from './reconcile/certificates.ts';
import {
  DATABASE_LABEL,
  PATRONI_CONFIGMAP_KEYS,
  ROLE_LABEL,
  SCOPE_LABEL,
} from './tiers/database/names.ts';
import { PATRONI_MARKER, PATRONI_RULES } from './tiers/database/rbac.ts';
import { POSTGRES_CONTAINER } from './tiers/database/shard-sql-exec.ts';
import { APP_LABEL } from './tiers/shared/meta.ts';

type Json = Record<string, unknown>;

export interface PolicyNames {
  /** Names the policies (<prefix>, <prefix>-patroni): the release's full name. */
  readonly prefix: string;
  /** The operator's user name: system:serviceaccount:<namespace>:<name>. */
  readonly operatorUser: string;
  /** Where its Lease and CA Secret live. */
  readonly operatorNamespace: string;
  readonly patroniClusterRole: string;
}

export const defaultPolicyNames = (operatorNamespace = 'scalable-system'): PolicyNames => ({
  prefix: 'scalable-operator',
  operatorUser: `system:serviceaccount:${operatorNamespace}:scalable-operator`,
  operatorNamespace,
  patroniClusterRole: DEFAULT_RBAC.patroniClusterRole,
});

/** Namespaces the operator never writes in. */
export const PROTECTED_NAMESPACES = ['kube-system', 'kube-public', 'kube-node-lease'] as const;

const str = (s: string) => `'${s}'`;
const list = (xs: readonly string[]) => `[${xs.map(str).join(', ')}]`;
const has = (obj: string, key: string) =>
  `(has(${obj}.metadata.labels) && ${str(key)} in ${obj}.metadata.labels)`;
const labelledBy = (obj: string) => `(${has(obj, APP_LABEL)} || ${has(obj, DATABASE_LABEL)})`;

/** A ValidatingAdmissionPolicy (failurePolicy Fail) matching `rules`; `spec` holds the rest. */
function policyOf(name: string, rules: readonly Json[], spec: Json): Json {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicy',
    metadata: { name },
    spec: { failurePolicy: 'Fail', matchConstraints: { resourceRules: rules }, ...spec },
  };
}

export function patroniClusterRole(names: PolicyNames): Json {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: names.patroniClusterRole },
    rules: PATRONI_RULES.map((r) => ({
      apiGroups: [...r.apiGroups],
      resources: [...r.resources],
      verbs: [...r.verbs],
    })),
  };
}

export function operatorPolicy(names: PolicyNames): Json {
  const res = 'request.resource.resource';
  const write = "request.operation != 'DELETE'";
  const v = (n: string) => `variables.${n}`;
  return policyOf(
    names.prefix,
    [
      {
        apiGroups: ['*'],
        apiVersions: ['*'],
        resources: ['*/*'],
        operations: ['CREATE', 'UPDATE', 'DELETE'],
      },
    ],
    {
      matchConditions: [
        {
          name: 'the-operator',
          expression: `request.userInfo.username == ${str(names.operatorUser)}`,
        },
      ],
      variables: [
        { name: 'obj', expression: "request.operation == 'DELETE' ? oldObject : object" },
        { name: 'labelled', expression: labelledBy('variables.obj') },
        {
          name: 'exempt',
          expression:
            `request.resource.group == 'scalable.dev' || ${res} == 'events' || ` +
            `(request.namespace == ${str(names.operatorNamespace)} && (${res} == 'leases' || ` +
            `(${res} == 'secrets' && request.name == ${str(CA_SECRET_NAME)})))`,
        },
      ],
      validations: [
        {
          expression: `request.namespace != '' && !(request.namespace in ${list(PROTECTED_NAMESPACES)})`,
          message: `scalable-operator writes only namespaced objects, never in ${PROTECTED_NAMESPACES.join(', ')}`,
          reason: 'Forbidden',
        },
        {
          expression: `${v('exempt')} || ${v('labelled')}`,
          message: `scalable-operator writes only objects labelled ${APP_LABEL} (Patroni's: ${DATABASE_LABEL})`,
          reason: 'Forbidden',
        },
        {
          expression: `request.operation != 'UPDATE' || ${v('exempt')} || ${labelledBy('oldObject')}`,
          message: `scalable-operator does not take over an object that was not labelled ${APP_LABEL}`,
          reason: 'Forbidden',
        },
        {
          expression: `${res} != 'secrets' || !(${write}) || !has(object.type) || object.type in ['Opaque', 'kubernetes.io/tls']`,
          message:
            'scalable-operator writes only Opaque and kubernetes.io/tls Secrets (never a ServiceAccount token)',
          reason: 'Forbidden',
        },
        {
          expression:
            `${res} != 'rolebindings' || !(${write}) || (object.roleRef.kind == 'ClusterRole' && ` +
            `object.roleRef.name == ${str(names.patroniClusterRole)} && has(object.subjects) && ` +
            `size(object.subjects) == 1 && object.subjects[0].kind == 'ServiceAccount' && ` +
            `object.subjects[0].namespace == request.namespace && ${has('object', APP_LABEL)} && ` +
            `object.subjects[0].name == object.metadata.labels[${str(APP_LABEL)}] + '-db')`,
          message: `scalable-operator binds only ${names.patroniClusterRole}, to its app's <app>-db ServiceAccount`,
          reason: 'Forbidden',
        },
        {
          expression: `${res} != 'roles' || !(${write})`,
          message: 'scalable-operator writes no Role (it only prunes those of earlier versions)',
          reason: 'Forbidden',
        },
        {
          expression:
            `!(${res} in ['deployments', 'statefulsets']) || !(${write}) || (${has('object', APP_LABEL)} && ` +
            `has(object.spec.template.spec.serviceAccountName) && ` +
            `object.spec.template.spec.serviceAccountName.startsWith(object.metadata.labels[${str(APP_LABEL)}] + '-'))`,
          message:
            "scalable-operator runs pods only as their app's own ServiceAccounts (<app>-...)",
          reason: 'Forbidden',
        },
      ],
    },
  );
}

/**
 * pods/exec (a CONNECT, which the write policy above does not see): the operator runs its
 * resharding SQL inside database pods (tiers/database/shard-sql-exec.ts), and RBAC cannot
 * limit exec to them; this policy does: only in an app's namespace (never kube-system), only
 * a shard member's Postgres container (<app>-db-<shard>-<ordinal>), only the helper's and
 * the schema copy's interpreters.
 */
export function operatorExecPolicy(names: PolicyNames): Json {
  return policyOf(
    `${names.prefix}-exec`,
    [
      {
        apiGroups: [''],
        apiVersions: ['v1'],
        resources: ['pods/exec'],
        operations: ['CONNECT'],
      },
    ],
    {
      matchConditions: [
        {
          name: 'the-operator',
          expression: `request.userInfo.username == ${str(names.operatorUser)}`,
        },
      ],
      validations: [
        {
          expression: `!(request.namespace in ${list(PROTECTED_NAMESPACES)})`,
          message: `scalable-operator runs no command in ${PROTECTED_NAMESPACES.join(', ')}`,
          reason: 'Forbidden',
        },
        {
          expression:
            `request.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?-db-[0-9]+-[0-9]+$') && ` +
            `has(object.container) && object.container == ${str(POSTGRES_CONTAINER)} && has(object.command) && ` +
            `size(object.command) > 0 && object.command[0] in ['python3', 'bash']`,
          message:
            "scalable-operator runs commands only in a database pod's postgres container (<app>-db-<shard>-<n>), and only python3 or bash",
          reason: 'Forbidden',
        },
      ],
    },
  );
}

export function patroniPolicy(names: PolicyNames): Json {
  const m = PATRONI_MARKER;
  const authz = (verb: string) =>
    `authorizer.group(${str(m.group)}).resource(${str(m.resource)}).namespace(request.namespace).check(${str(verb)}).allowed()`;
  const prefix = "'system:serviceaccount:' + request.namespace + ':'";
  const pods = "request.resource.resource == 'pods'";
  const cms = "request.resource.resource == 'configmaps'";
  /** Every key of a's map `field` but `except` is in b's with the same value. */
  const sameBut = (field: string, except: string, a: string, b: string) =>
    `(!has(${a}.metadata.${field}) || ${a}.metadata.${field}.all(k, k == ${str(except)} || ` +
    `(has(${b}.metadata.${field}) && k in ${b}.metadata.${field} && ${b}.metadata.${field}[k] == ${a}.metadata.${field}[k])))`;
  return policyOf(
    `${names.prefix}-patroni`,
    [
      {
        apiGroups: [''],
        apiVersions: ['v1'],
        resources: ['pods', 'pods/*', 'configmaps'],
        operations: ['CREATE', 'UPDATE', 'DELETE'],
      },
    ],
    {
      // A ServiceAccount of the request's namespace bound to the Patroni ClusterRole; an
      // admin holding every verb (so not-a-member too) is not a member.
      matchConditions: [
        {
          name: 'a-patroni-member',
          expression: `request.userInfo.username.startsWith(${prefix}) && ${authz(m.member)} && !${authz(m.notMember)}`,
        },
      ],
      variables: [
        // The member's ServiceAccount is its app's <app>-db (tiers/database/names.ts tierName).
        {
          name: 'sa',
          expression: `request.userInfo.username.substring(size(${prefix}))`,
        },
        {
          name: 'podName',
          expression:
            "'authentication.kubernetes.io/pod-name' in request.userInfo.extra && " +
            "size(request.userInfo.extra['authentication.kubernetes.io/pod-name']) == 1 ? " +
            "request.userInfo.extra['authentication.kubernetes.io/pod-name'][0] : ''",
        },
      ],
      validations: [
        {
          expression: `!(${pods}) || (request.operation == 'UPDATE' && (!has(request.subResource) || request.subResource == ''))`,
          message: 'a Patroni member may only update pods (no create, delete or subresource)',
          reason: 'Forbidden',
        },
        {
          expression: `!(${pods}) || (variables.podName != '' && request.name == variables.podName)`,
          message: 'a Patroni member may update only its own pod (the one its token is bound to)',
          reason: 'Forbidden',
        },
        {
          expression:
            `!(${pods}) || request.operation != 'UPDATE' || (` +
            `${sameBut('labels', ROLE_LABEL, 'object', 'oldObject')} && ${sameBut('labels', ROLE_LABEL, 'oldObject', 'object')} && ` +
            `${sameBut('annotations', 'status', 'object', 'oldObject')} && ${sameBut('annotations', 'status', 'oldObject', 'object')} && ` +
            'object.spec == oldObject.spec)',
          message: `a Patroni member may change only its pod's ${ROLE_LABEL} label and status annotation`,
          reason: 'Forbidden',
        },
        {
          expression: `!(${cms}) || request.operation != 'DELETE'`,
          message: 'a Patroni member may not delete ConfigMaps',
          reason: 'Forbidden',
        },
        {
          expression:
            `!(${cms}) || (variables.sa.endsWith('-db') && request.name.startsWith(variables.sa + '-') && ` +
            `request.name.substring(size(variables.sa) + 1).matches('^[0-9]+-(${PATRONI_CONFIGMAP_KEYS.join('|')})$'))`,
          message:
            "a Patroni member may write only its own shards' ConfigMaps (<app>-db-<n>-config|leader|failover|sync)",
          reason: 'Forbidden',
        },
        {
          expression:
            `!(${cms}) || request.operation == 'DELETE' || (has(object.metadata.labels) && ` +
            `${str(DATABASE_LABEL)} in object.metadata.labels && ` +
            `object.metadata.labels[${str(DATABASE_LABEL)}] + '-db' == variables.sa && ` +
            `${str(SCOPE_LABEL)} in object.metadata.labels && ` +
            `request.name.startsWith(object.metadata.labels[${str(SCOPE_LABEL)}] + '-') && ` +
            `request.name.substring(size(object.metadata.labels[${str(SCOPE_LABEL)}]) + 1).matches('^(${PATRONI_CONFIGMAP_KEYS.join('|')})$') && ` +
            `object.metadata.labels.all(k, k in ${list([DATABASE_LABEL, SCOPE_LABEL])} || ` +
            `(request.operation == 'UPDATE' && has(oldObject.metadata.labels) && k in oldObject.metadata.labels && ` +
            'oldObject.metadata.labels[k] == object.metadata.labels[k])))',
          message: `a Patroni member labels its ConfigMaps with its own ${DATABASE_LABEL} and ${SCOPE_LABEL}, and adds no other label`,
          reason: 'Forbidden',
        },
      ],
    },
  );
}

/** The namespace annotation listing the hosts (or *.suffix patterns) its apps may claim. */
export const INGRESS_HOSTS_ANNOTATION = 'scalable.dev/ingress-hosts';

export interface AppPolicyOptions {
  /** A CEL list literal of ClusterIssuer names apps may name, e.g. ["letsencrypt"]. */
  readonly allowedClusterIssuers: string;
  /** A CEL bool: true refuses a host in a namespace without the annotation. */
  readonly requireHostAnnotation: string;
}

export function appPolicy(names: PolicyNames, options: AppPolicyOptions): Json {
  const ann = `namespaceObject.metadata.annotations`;
  const host = 'object.spec.ingress.host';
  const issuer = 'object.spec.database.certificateIssuer';
  return policyOf(
    `${names.prefix}-apps`,
    [
      {
        apiGroups: ['scalable.dev'],
        apiVersions: ['*'],
        resources: ['scalableapps'],
        operations: ['CREATE', 'UPDATE'],
      },
    ],
    {
      variables: [
        {
          name: 'annotated',
          expression: `has(${ann}) && ${str(INGRESS_HOSTS_ANNOTATION)} in ${ann}`,
        },
        {
          name: 'hosts',
          expression: `variables.annotated ? ${ann}[${str(INGRESS_HOSTS_ANNOTATION)}].split(',').map(p, p.trim()) : []`,
        },
      ],
      validations: [
        {
          expression:
            `!has(object.spec.ingress) || !has(${host}) || ` +
            `(variables.annotated ? variables.hosts.exists(p, p == ${host} || ` +
            `(p.startsWith('*.') && ${host}.endsWith(p.substring(1)))) : !(${options.requireHostAnnotation}))`,
          messageExpression:
            `'spec.ingress.host: ' + ${host} + ' is not a host this namespace may serve (its annotation ${INGRESS_HOSTS_ANNOTATION}: ' + ` +
            `(variables.annotated ? ${ann}[${str(INGRESS_HOSTS_ANNOTATION)}] : 'none') + ')'`,
          reason: 'Forbidden',
        },
        {
          expression:
            `!has(object.spec.database) || !has(${issuer}) || ${issuer}.kind != 'ClusterIssuer' || ` +
            `${issuer}.name in ${options.allowedClusterIssuers}`,
          messageExpression: `'spec.database.certificateIssuer: ClusterIssuer ' + ${issuer}.name + ' is not one the operator was allowed to let apps use (admissionPolicies.allowedClusterIssuers)'`,
          reason: 'Forbidden',
        },
      ],
    },
  );
}

export function bindingOf(policy: Json): Json {
  const name = String((policy['metadata'] as Json)['name']);
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicyBinding',
    metadata: { name },
    spec: { policyName: name, validationActions: ['Deny'] },
  };
}

/** Everything in install order: the ClusterRole, then each policy before its binding. */
export function clusterObjects(names: PolicyNames, apps: AppPolicyOptions): Json[] {
  const op = operatorPolicy(names);
  const exec = operatorExecPolicy(names);
  const patroni = patroniPolicy(names);
  const app = appPolicy(names, apps);
  return [
    patroniClusterRole(names),
    op,
    bindingOf(op),
    exec,
    bindingOf(exec),
    patroni,
    bindingOf(patroni),
    app,
    bindingOf(app),
  ];
}
