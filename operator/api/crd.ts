// Pure: the TypeBox schema -> the CustomResourceDefinition (structural OpenAPI v3).
import { RULES } from './rules.ts';
import type { CelRule } from './rules.ts';
import { GROUP, KIND, PLURAL, ScalableAppSpec, ScalableAppStatus, VERSION } from './schema.ts';

type Node = Record<string, unknown>;

/** TypeBox schema -> structural schema: defaulted fields are not required, records become
 *  additionalProperties, TypeBox's own markers (symbol keys) vanish in the JSON round trip. */
export function toStructural(schema: unknown, path: string): Node {
  const node = JSON.parse(JSON.stringify(schema)) as Node;
  return convert(node, path);
}

/** `path` addresses rules.ts: dots between fields, `[]` for list items. */
function convert(node: Node, path: string): Node {
  const out: Node = { ...node };
  const rules = RULES[path];
  if (rules) out['x-kubernetes-validations'] = rules.map(forApiServer);
  const props = node['properties'] as Record<string, Node> | undefined;
  if (props) {
    out['properties'] = Object.fromEntries(
      Object.entries(props).map(([k, v]) => [k, convert(v, `${path}.${k}`)]),
    );
    const required = ((node['required'] as string[] | undefined) ?? []).filter(
      (k) => props[k]?.['default'] === undefined,
    );
    if (required.length > 0) out['required'] = required;
    else delete out['required'];
  }
  const pattern = node['patternProperties'] as Record<string, Node> | undefined;
  if (pattern) {
    delete out['patternProperties'];
    out['additionalProperties'] = convert(Object.values(pattern)[0] as Node, `${path}{}`);
  }
  if (node['items']) out['items'] = convert(node['items'] as Node, `${path}[]`);
  if (isPlainObject(out['default']) && out['properties']) out['default'] = expandDefault(out);
  return out;
}

/** The rule as the API server takes it: the offline-only detail stays behind. */
const forApiServer = ({
  detail: _detail,
  whenWritten: _whenWritten,
  ...rule
}: CelRule): Omit<CelRule, 'detail' | 'whenWritten'> => rule;

const isPlainObject = (v: unknown): v is Node =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** `default: {}` spelled out with the nested defaults. The API server checks a default
 *  against the node's CEL rules as written, without applying nested defaults first, so
 *  `self.minReplicas <= self.maxReplicas` would fail on a bare `{}`. */
function expandDefault(node: Node): Node {
  const value: Node = { ...(node['default'] as Node) };
  for (const [k, child] of Object.entries((node['properties'] as Record<string, Node>) ?? {})) {
    if (value[k] !== undefined || child['default'] === undefined) continue;
    value[k] =
      isPlainObject(child['default']) && child['properties']
        ? expandDefault(child)
        : child['default'];
  }
  return value;
}

export function buildCrd(): Node {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${PLURAL}.${GROUP}`,
      labels: {
        'app.kubernetes.io/name': 'scalable-operator',
        'app.kubernetes.io/part-of': 'scalable-operator',
      },
    },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: PLURAL,
        singular: 'scalableapp',
        shortNames: ['sapp'],
        categories: ['scalable'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            {
              name: 'Ready',
              type: 'string',
              jsonPath: '.status.conditions[?(@.type=="Ready")].status',
              description: 'Whether every tier is ready.',
            },
            {
              name: 'Web',
              type: 'string',
              jsonPath: '.status.web.ready',
              description: 'Ready over desired web pods.',
            },
            {
              name: 'Shards',
              type: 'integer',
              jsonPath: '.spec.database.shards',
              description: 'Postgres shard groups.',
            },
            {
              name: 'URL',
              type: 'string',
              jsonPath: '.status.url',
              description: 'Where the app is served.',
            },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description:
                'ScalableApp turns one resource into the architecture of "Scale from zero to millions of users": a stateless autoscaled web tier behind an ingress, static assets with CDN caching, Redis cache and sessions, Postgres with replicas, failover and shards, a queue with KEDA-scaled workers, and monitoring.',
              required: ['spec'],
              properties: {
                apiVersion: {
                  type: 'string',
                  description: 'APIVersion of this representation: scalable.dev/v1alpha1.',
                },
                kind: { type: 'string', description: 'Kind of this object: ScalableApp.' },
                // Declared so that rules can report on metadata.name (fieldPath).
                metadata: {
                  type: 'object',
                  properties: {
                    name: {
                      type: 'string',
                      description: 'Name of the app; prefixes every object it gets.',
                    },
                  },
                },
                spec: toStructural(ScalableAppSpec, 'spec'),
                status: toStructural(ScalableAppStatus, 'status'),
              },
              'x-kubernetes-validations': (RULES[''] ?? []).map(forApiServer),
            },
          },
        },
      ],
    },
  };
}
