// Golden file for the queue tier alone (the whole-app goldens in test/golden cover the
// examples).
import { describe, expect, it } from 'vitest';
import { appWiring } from '../index.ts';
import { golden, goldenText } from '../shared/golden.ts';
import { modelOf } from '../shared/test-helpers.ts';
import { buildQueue } from './index.ts';

describe('queue tier golden file', () => {
  it('renders exactly as golden/queue.yaml', () => {
    const app = {
      ...modelOf({
        queue: {
          storage: { size: '5Gi', storageClassName: 'fast' },
          consumers: [
            { name: 'emails', image: 'shop-worker:1', maxReplicas: 20, targetBacklog: 50 },
            { name: 'thumbs', image: 'shop-worker:1', stream: 'photos', minReplicas: 1 },
          ],
        },
      }),
      uid: 'uid-1',
    };
    const text = goldenText(buildQueue(app, appWiring(app)));
    expect(text).toBe(golden(new URL('./golden/queue.yaml', import.meta.url), text));
  });

  it('renders exactly as golden/queue-sentinel.yaml with replicas', () => {
    const app = {
      ...modelOf({
        queue: { replicas: 2, consumers: [{ name: 'emails', image: 'shop-worker:1' }] },
      }),
      uid: 'uid-1',
    };
    const text = goldenText(buildQueue(app, appWiring(app)));
    expect(text).toBe(golden(new URL('./golden/queue-sentinel.yaml', import.meta.url), text));
  });
});
