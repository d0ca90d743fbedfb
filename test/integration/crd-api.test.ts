// The ScalableApp CRD judged by a real API server: it installs, examples are accepted and
// defaulted exactly as `scalable validate` defaults them offline, every invalid input of the
// offline table is rejected too (CEL rules with the very same message), and transition
// rules guard updates.
import { readFileSync } from 'node:fs';
import { CustomObjectsApi } from '@kubernetes/client-node';
import yaml from 'js-yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  clients,
  eventually,
  printLogDirOnFailure,
  testKubectl,
  uniqueName,
} from '../../devcluster/testing.ts';
import { GROUP, PLURAL, VERSION } from '../../operator/api/schema.ts';
import { validateApp } from '../../operator/api/validate.ts';
import { INVALID, VALID_EDGES } from '../unit/invalid-cases.ts';
import { RULES } from '../../operator/api/rules.ts';

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const kubectl = testKubectl;

type Doc = { metadata: { name: string; namespace?: string }; spec: Record<string, unknown> };

let namespace = '';
const api = () => clients().kc.makeApiClient(CustomObjectsApi);

async function create(doc: Doc) {
  return api().createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: PLURAL,
    body: { ...doc, metadata: { ...doc.metadata, namespace } },
    fieldValidation: 'Strict',
  });
}

interface Rejection {
  readonly message: string;
  /** One per field error (none for a strict-decoding error: an unknown field). */
  readonly causes: ReadonlyArray<{ field?: string; message: string; reason?: string }>;
}

/** The API server's refusal: the Status body's message and its per-field causes. */
async function rejection(doc: Doc): Promise<Rejection> {
  try {
    await create(doc);
  } catch (e) {
    const body = (e as { body?: string }).body;
    if (!body) throw e;
    const status = JSON.parse(body) as {
      message: string;
      details?: { causes?: Rejection['causes'] };
    };
    return { message: status.message, causes: status.details?.causes ?? [] };
  }
  throw new Error(`the API server accepted ${JSON.stringify(doc)}`);
}

beforeAll(async () => {
  await kubectl('apply', '--server-side', '-f', 'crds/');
  await kubectl('wait', '--for=condition=Established', '--timeout=60s', `crd/${PLURAL}.${GROUP}`);
  namespace = uniqueName('crd');
  await clients().core.createNamespace({ body: { metadata: { name: namespace } } });
  // Discovery of a new CRD takes a moment even after Established.
  await eventually('the ScalableApp API to be served', async () => {
    await api().listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
    });
    return true;
  });
});

describe('the ScalableApp CRD on a real API server', () => {
  printLogDirOnFailure();

  // `apply --dry-run=client` would diff against the CRD already installed here; `create`
  // with strict validation checks the manifest itself against the server's OpenAPI.
  it('is accepted by kubectl create --dry-run=client --validate=strict', async () => {
    const { stdout } = await kubectl(
      'create',
      '--dry-run=client',
      '--validate=strict',
      '-f',
      'crds/',
    );
    expect(stdout).toContain(
      'customresourcedefinition.apiextensions.k8s.io/scalableapps.scalable.dev',
    );
  });

  it.each(['minimal', 'full'])(
    'accepts the %s example and defaults it as the offline path does',
    async (name) => {
      const doc = yaml.load(readFileSync(`manifests/examples/${name}.yaml`, 'utf8')) as Doc;
      const created = (await create(doc)) as Doc;
      const offline = validateApp(doc);
      if (!offline.ok) throw new Error(JSON.stringify(offline.errors));
      expect(created.spec).toEqual(offline.app.spec);
    },
  );

  it.each(VALID_EDGES)('accepts %s as the offline path does', async (_name, doc) => {
    const created = (await create(doc as Doc).catch((e: { body?: string }) => {
      throw new Error(`rejected: ${e.body ?? String(e)}`);
    })) as Doc;
    const offline = validateApp(doc);
    if (!offline.ok) throw new Error(JSON.stringify(offline.errors));
    expect(created.spec).toEqual(offline.app.spec);
  });

  // Envelope checks (kind, apiVersion, namespace) belong to kubectl and the API machinery;
  // every other case goes to the API server too, and the list of those left out is fixed.
  const messagesOf = (expected: string | readonly string[]): readonly string[] =>
    typeof expected === 'string' ? [expected] : expected;
  const isEnvelope = (m: string) => !m.startsWith('spec') && !m.startsWith('metadata.name:');
  const specCases = INVALID.filter(([, , expected]) => !messagesOf(expected).some(isEnvelope));
  const CEL_MESSAGES = new Set(
    Object.values(RULES)
      .flat()
      .map((r) => r.message),
  );

  it('leaves out only the envelope cases', () => {
    expect(INVALID.filter((c) => !specCases.includes(c)).map(([name]) => name)).toEqual([
      'wrong kind',
      'wrong apiVersion',
      'bad namespace',
    ]);
  });

  it.each(specCases)('rejects %s, naming the fields the offline path names', async (_name, doc) => {
    const refused = await rejection(doc as Doc);
    const offline = validateApp(doc);
    if (offline.ok) throw new Error('the offline path accepted it');
    const paths = new Set(offline.errors.map((e) => e.path));
    for (const e of offline.errors) {
      const message = e.message.replace(/ \(got [^)]*\)$/, '');
      const onField = refused.causes.filter((c) => c.field === e.path).map((c) => c.message);
      if (message === 'field not declared in schema')
        expect(refused.message).toContain(`unknown field "${e.path}"`);
      // CEL errors: the same rule, so the very same message on the same field (after the
      // value, for a rule on a scalar).
      else if (CEL_MESSAGES.has(message))
        expect(onField).toContainEqual(
          expect.stringMatching(
            new RegExp(`^[A-Za-z ]+: (("[^"]*"|-?\\d+): )?${escapeRegExp(message)}$`),
          ),
        );
      // Schema errors: the API server words them its own way but names the same field.
      else expect(onField, JSON.stringify(refused.causes)).not.toEqual([]);
    }
    // And nothing else: every field the API server names, the offline path names too (a
    // list's duplicate element is reported on the element, and "some rules were not
    // checked" on no field).
    const others = refused.causes.filter(
      (c) =>
        c.field !== undefined &&
        c.field !== '<nil>' &&
        !paths.has(c.field) &&
        !(c.reason === 'FieldValueDuplicate' && paths.has(c.field.replace(/\[\d+\]$/, ''))),
    );
    expect(others).toEqual([]);
    // A rule that could not be evaluated ("... evaluating rule: ...") is noise to the user.
    expect(refused.causes.filter((c) => c.message.includes('evaluating rule'))).toEqual([]);
  });

  it('guards updates with transition rules', async () => {
    const doc = {
      apiVersion: 'scalable.dev/v1alpha1',
      kind: 'ScalableApp',
      metadata: { name: 'grow' },
      spec: {
        web: { image: 'x' },
        sessions: { storage: { size: '1Gi' } },
        database: { shards: 2, shardKey: 'tenant_id' },
      },
    };
    await create(doc).catch((e: { body?: string }) => {
      throw new Error(`create failed: ${e.body ?? String(e)}`);
    });
    const patch = async (database: Record<string, unknown>, section = 'database') => {
      try {
        await kubectl(
          'patch',
          '-n',
          namespace,
          'sapp',
          'grow',
          '--type=merge',
          '-p',
          JSON.stringify({ spec: { [section]: database } }),
        );
        return 'accepted';
      } catch (e) {
        return String((e as Error).message);
      }
    };
    // Fewer shards is accepted: the operator moves the departing shards' buckets first.
    expect(await patch({ shards: 1 })).toBe('accepted');
    expect(await patch({ version: '18' })).toContain('version is immutable');
    expect(await patch({ storage: { size: '50Gi' } })).toContain(
      'storage.size cannot be changed yet',
    );
    // The session store's volume comes from a volumeClaimTemplate: immutable in Kubernetes.
    const sessions = (storage: Record<string, unknown>) => patch({ storage }, 'sessions');
    expect(await sessions({ size: '5Gi' })).toContain('spec.sessions.storage');
    expect(await sessions({ size: '5Gi' })).toContain('storage.size cannot be changed yet');
    expect(await sessions({ storageClassName: 'fast' })).toContain(
      'storage.storageClassName is immutable',
    );
    expect(await patch({ shards: 3 })).toBe('accepted');
    // Offline, `scalable validate --previous` says the same, naming the field.
    const changed = structuredClone(doc);
    changed.spec.sessions.storage.size = '5Gi';
    const offline = validateApp(changed, doc);
    expect(offline.ok ? [] : offline.errors.map((e) => `${e.path}: ${e.message}`)).toEqual([
      'spec.sessions.storage: storage.size cannot be changed yet: volume expansion is not supported yet',
    ]);
  });

  // Its own object: `kubectl get` of an empty list prints no header, and this case must not
  // lean on an earlier one having created something.
  it('shows the printer columns and the short name', async () => {
    await create({
      apiVersion: 'scalable.dev/v1alpha1',
      kind: 'ScalableApp',
      metadata: { name: 'columns' },
      spec: { web: { image: 'x' } },
    } as Doc);
    const { stdout } = await kubectl('get', 'sapp', 'columns', '-n', namespace);
    const [header, row] = stdout.split('\n');
    expect(header).toMatch(/^NAME\s+READY\s+WEB\s+SHARDS\s+URL\s+AGE$/);
    expect(row).toMatch(/^columns\s/);
  });

  it('explains every field', async () => {
    const { stdout } = await kubectl('explain', 'scalableapp.spec.cache.evictionPolicy');
    expect(stdout).toContain('maxmemory-policy');
  });
});
