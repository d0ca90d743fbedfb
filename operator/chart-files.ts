// Files of charts/ generated from the operator's own definitions, so the charts cannot drift
// from what the operator needs (`npm run gen:chart` writes them; test/unit/chart-files.test.ts
// fails when one is stale):
// - scalable-operator's CRD: byte for byte the file `npm run gen:crd` writes into crds/;
// - scalable-operator's ClusterRole (or, with watchNamespaces, a Role per namespace) and
//   leader-election Role: the rules of operator/rbac.ts;
// - scalable-app's values.schema.json: the CRD's spec schema as JSON Schema, closed
//   (additionalProperties: false), so `helm install` rejects an unknown or mistyped field
//   by its path before the API server sees it.
import yaml from 'js-yaml';
import { crdYaml } from './api/crd-file.ts';
import { buildCrd } from './api/crd.ts';
import { clusterObjects, patroniClusterRole } from './admission.ts';
import { leaderElectionRules, operatorRules } from './rbac.ts';
import type { PolicyRule } from './rbac.ts';

type Json = Record<string, unknown>;

const GENERATED = 'Generated from operator/rbac.ts by `npm run gen:chart`. Do not edit.';
const FULLNAME = '{{ include "scalable-operator.fullname" $ }}';
/** The chart's Patroni ClusterRole, named after the release. */
const PATRONI_CLUSTER_ROLE = `${FULLNAME}-patroni`;

const rulesYaml = (rules: readonly PolicyRule[]): string =>
  yaml.dump(
    rules.map((r) => ({
      apiGroups: [...r.apiGroups],
      resources: [...r.resources],
      ...(r.resourceNames ? { resourceNames: [...r.resourceNames] } : {}),
      verbs: [...r.verbs],
      ...(r.resourceNames ? { resourceNames: [...r.resourceNames] } : {}),
    })),
    { lineWidth: -1, flowLevel: 2 },
  );

/** Cluster scope by default; with watchNamespaces, the same rules as a Role in each of them. */
function clusterRoleTemplate(): string {
  return `{{- /* ${GENERATED} */}}
{{- if not .Values.watchNamespaces }}
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ include "scalable-operator.fullname" . }}
  labels:
    {{- include "scalable-operator.labels" . | nindent 4 }}
rules:
${rulesYaml(operatorRules(PATRONI_CLUSTER_ROLE))}{{- else }}
{{- range $ns := .Values.watchNamespaces }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ include "scalable-operator.fullname" $ }}
  namespace: {{ $ns }}
  labels:
    {{- include "scalable-operator.labels" $ | nindent 4 }}
rules:
${rulesYaml(operatorRules(PATRONI_CLUSTER_ROLE))}{{- end }}
{{- end }}
`;
}

function leaderElectionRoleTemplate(): string {
  return `{{- /* ${GENERATED} */}}
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ include "scalable-operator.fullname" . }}-leader-election
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "scalable-operator.labels" . | nindent 4 }}
rules:
${rulesYaml(leaderElectionRules('{{ include "scalable-operator.fullname" . }}'))}`;
}

/**
 * The Patroni ClusterRole and the admission policies of operator/admission.ts, with the
 * release's names. The policies need admissionregistration.k8s.io/v1 (Kubernetes >= 1.30);
 * on an older cluster the install fails and says so, unless admissionPolicies.enabled is false.
 */
function admissionTemplate(): string {
  const ns = '{{ $.Release.Namespace }}';
  const names = {
    prefix: FULLNAME,
    operatorUser: `system:serviceaccount:${ns}:{{ include "scalable-operator.serviceAccountName" $ }}`,
    operatorNamespace: ns,
    patroniClusterRole: PATRONI_CLUSTER_ROLE,
  };
  const doc = (o: Json) => {
    const meta = o['metadata'] as Json;
    const text = yaml.dump(
      { ...o, metadata: { ...meta, labels: '__LABELS__' } },
      { lineWidth: -1, noRefs: true },
    );
    return text.replace(
      'labels: __LABELS__',
      'labels:\n    {{- include "scalable-operator.labels" $ | nindent 4 }}',
    );
  };
  const policies = clusterObjects(names, {
    allowedClusterIssuers: '{{ .Values.admissionPolicies.allowedClusterIssuers | toJson }}',
    requireHostAnnotation: '{{ .Values.admissionPolicies.requireHostAnnotation }}',
  }).filter((o) => o['kind'] !== 'ClusterRole');
  return `{{- /* Generated from operator/admission.ts by \`npm run gen:chart\`. Do not edit. */}}
${doc(patroniClusterRole(names))}{{- if .Values.admissionPolicies.enabled }}
{{- if semverCompare "<1.30-0" .Capabilities.KubeVersion.Version }}
{{- fail "admissionPolicies.enabled needs admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy (Kubernetes >= 1.30); set admissionPolicies.enabled=false to install without them (see docs/security.md)" }}
{{- end }}
${policies.map((o) => `---\n${doc(o)}`).join('')}{{- end }}
`;
}

/** OpenAPI v3 (structural, Kubernetes flavour) -> JSON Schema draft-07 with closed objects. */
function toJsonSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (typeof node !== 'object' || node === null) return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node as Json)) {
    if (k.startsWith('x-kubernetes-')) continue; // CEL rules etc.: the API server's job
    if (k === 'format' && v === 'int32') continue; // not a JSON Schema format
    out[k] =
      k === 'properties'
        ? Object.fromEntries(Object.entries(v as Json).map(([p, s]) => [p, toJsonSchema(s)]))
        : toJsonSchema(v);
  }
  if (out['properties'] !== undefined && out['additionalProperties'] === undefined) {
    out['additionalProperties'] = false;
  }
  return out;
}

function appValuesSchema(): string {
  const crd = buildCrd() as unknown as {
    spec: { versions: { schema: { openAPIV3Schema: { properties: { spec: Json } } } }[] };
  };
  const version = crd.spec.versions[0];
  if (!version) throw new Error('the CRD has no version');
  const spec = version.schema.openAPIV3Schema.properties.spec;
  const schema = {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $comment:
      'Generated from operator/api/schema.ts (the CRD spec) by `npm run gen:chart`. Do not edit.',
    title: 'ScalableApp spec (the values of the scalable-app chart)',
    ...(toJsonSchema(spec) as Json),
  };
  return `${JSON.stringify(schema, null, 2)}\n`;
}

/** Path (relative to the repository root) -> content. */
export function chartFiles(): Record<string, string> {
  return {
    'charts/scalable-operator/crds/scalableapps.scalable.dev.yaml': crdYaml(),
    'charts/scalable-operator/templates/clusterrole.yaml': clusterRoleTemplate(),
    'charts/scalable-operator/templates/leader-election-role.yaml': leaderElectionRoleTemplate(),
    'charts/scalable-operator/templates/admission.yaml': admissionTemplate(),
    'charts/scalable-app/values.schema.json': appValuesSchema(),
  };
}
