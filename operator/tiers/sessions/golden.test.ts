// Golden file for the session store alone (the whole-app goldens in test/golden cover the
// examples).
import { describe, expect, it } from 'vitest';
import { golden, goldenText } from '../shared/golden.ts';
import { modelOf } from '../shared/test-helpers.ts';
import { buildSessions } from './build.ts';

describe('sessions tier golden file', () => {
  it('renders exactly as golden/sessions.yaml', () => {
    const app = modelOf({
      sessions: { ttlSeconds: 3600, storage: { size: '2Gi', storageClassName: 'fast' } },
    });
    const text = goldenText(buildSessions({ ...app, uid: 'uid-1' }));
    expect(text).toBe(golden(new URL('./golden/sessions.yaml', import.meta.url), text));
  });
});
