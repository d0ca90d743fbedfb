import { describe, expect, it } from 'vitest';
import { applyCaEntryChanges, caEntryChanges, entryUidOf } from './ca-entries.ts';

const LIVE = '11111111-1111-4111-8111-111111111111';
const GONE = '22222222-2222-4222-8222-222222222222';
const ELSEWHERE = '33333333-3333-4333-8333-333333333333';
const UNRECORDED = '44444444-4444-4444-8444-444444444444';

/** The Secret's data as the store holds it (decoded): a full entry per uid. */
const entry = (uid: string, app?: string): Record<string, string> => ({
  [`${uid}.crt`]: `cert of ${uid}`,
  [`${uid}.key`]: `key of ${uid}`,
  ...(app ? { [`${uid}.app`]: app } : {}),
});

const data: Record<string, string> = {
  // The one CA of earlier versions: never an app's entry.
  'tls.crt': 'legacy cert',
  'tls.key': 'legacy key',
  ...entry(LIVE, 'shop/web'),
  ...entry(GONE, 'shop/old'),
  [`${GONE}.previous.crt`]: 'its previous CA',
  [`${GONE}.previous.key`]: 'its previous key',
  [`${GONE}.rotation`]: '1',
  ...entry(ELSEWHERE, 'other-team/api'),
  ...entry(UNRECORDED),
};
const apps = new Map([[LIVE, 'shop/web']]);
const pruned = (watched: readonly string[] | undefined) =>
  caEntryChanges(data, apps, watched).prune.map((p) => p.uid);

describe('caEntryChanges', () => {
  it('watching every namespace: removes every entry of an app it does not see, whole', () => {
    const changes = caEntryChanges(data, apps, undefined);
    expect(changes.prune).toEqual([
      {
        uid: GONE,
        app: 'shop/old',
        keys: [
          `${GONE}.app`,
          `${GONE}.crt`,
          `${GONE}.key`,
          `${GONE}.previous.crt`,
          `${GONE}.previous.key`,
          `${GONE}.rotation`,
        ],
      },
      {
        uid: ELSEWHERE,
        app: 'other-team/api',
        keys: [`${ELSEWHERE}.app`, `${ELSEWHERE}.crt`, `${ELSEWHERE}.key`],
      },
      // Written before entries recorded their app: it would be seen in any namespace.
      { uid: UNRECORDED, keys: [`${UNRECORDED}.crt`, `${UNRECORDED}.key`] },
    ]);
    expect(changes.record).toEqual({});
    const next = applyCaEntryChanges(data, changes);
    expect(next).toEqual({
      'tls.crt': 'legacy cert',
      'tls.key': 'legacy key',
      ...entry(LIVE, 'shop/web'),
    });
  });

  it('watching some namespaces: only entries recorded in one of them; unrecorded ones stay', () => {
    // Another operator sharing the Secret watches other-team; an unrecorded entry may be its.
    expect(pruned(['shop'])).toEqual([GONE]);
    expect(pruned(['other-team'])).toEqual([ELSEWHERE]);
    expect(pruned(['shop', 'other-team'])).toEqual([GONE, ELSEWHERE]);
    expect(pruned(['third'])).toEqual([]);
  });

  it('never removes the entry of an app it sees, whatever its record says', () => {
    const seen = new Map([
      [LIVE, 'shop/web'],
      [GONE, 'shop/old'],
      [ELSEWHERE, 'other-team/api'],
      [UNRECORDED, 'shop/new'],
    ]);
    for (const watched of [undefined, ['shop'], []])
      expect(caEntryChanges(data, seen, watched).prune).toEqual([]);
  });

  it('records the app of entries that lack it (or misstate it), and only of apps it sees', () => {
    const seen = new Map([
      [LIVE, 'shop/web'],
      [UNRECORDED, 'shop/new'],
      [ELSEWHERE, 'other-team/renamed'],
    ]);
    const changes = caEntryChanges(data, seen, ['shop']);
    expect(changes.record).toEqual({
      [`${UNRECORDED}.app`]: 'shop/new',
      [`${ELSEWHERE}.app`]: 'other-team/renamed',
    });
    expect(changes.prune.map((p) => p.uid)).toEqual([GONE]);
    const next = applyCaEntryChanges(data, changes) ?? {};
    expect(next[`${UNRECORDED}.app`]).toBe('shop/new');
    expect(next[`${UNRECORDED}.key`]).toBe(`key of ${UNRECORDED}`);
    expect(Object.keys(next).filter((k) => k.startsWith(GONE))).toEqual([]);
  });

  it('nothing to do: no new data to write', () => {
    const settled = { 'tls.crt': 'legacy cert', ...entry(LIVE, 'shop/web') };
    const changes = caEntryChanges(settled, apps, undefined);
    expect(changes).toEqual({ prune: [], record: {} });
    expect(applyCaEntryChanges(settled, changes)).toBeUndefined();
    // An empty Secret, an empty cluster.
    expect(caEntryChanges({}, new Map(), undefined)).toEqual({ prune: [], record: {} });
  });

  it("leaves keys that are no app's entry: the legacy CA, and names that are not a uid", () => {
    const odd = {
      'tls.crt': 'x',
      'tls.key': 'y',
      'backup.crt': 'z',
      'not-a-uid.key': 'w',
      [`${GONE}`]: 'v',
    };
    expect(caEntryChanges(odd, new Map(), undefined)).toEqual({ prune: [], record: {} });
    expect(entryUidOf(`${LIVE}.previous.crt`)).toBe(LIVE);
    expect(entryUidOf(`${LIVE.toUpperCase()}.crt`)).toBe(LIVE.toUpperCase());
    expect(entryUidOf('tls.crt')).toBeUndefined();
    expect(entryUidOf(`${LIVE}`)).toBeUndefined();
  });
});
