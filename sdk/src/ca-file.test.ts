import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { pgSsl } from './db/tls.ts';
import { forgetCa, liveCa, nextBundle } from './ca-file.ts';
import { redisTls } from './redis.ts';
// The kubelet's layout of a Secret volume and its update (shared with the engine tests).
import { caVolume } from '../../test/engines/ca-volume.ts';

const pem = (name: string) => `-----BEGIN CERTIFICATE-----\n${name}\n-----END CERTIFICATE-----\n`;

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
});

describe('liveCa: the mounted CA bundle, current at each new connection', () => {
  it('follows the kubelet swapping the file, in the one array every client holds', async () => {
    const v = caVolume(pem('old'));
    cleanup.push(() => (forgetCa(v.file), v.remove()));
    const ca = liveCa(v.file, 20);
    expect(ca).toEqual([pem('old')]);
    // What the clients were handed before the move: pg's ssl, ioredis' tls.
    const ssl = pgSsl({ mode: 'verify-full', caFile: v.file });
    const tls = redisTls({ kind: 'url', url: 'rediss://x:6379', tls: { caFile: v.file } });
    expect(ssl?.ca).toBe(ca);
    expect(tls?.ca).toBe(ca);
    expect(liveCa(v.file)).toBe(ca);

    v.swap(pem('old') + pem('new'));
    await vi.waitFor(() => expect(ca).toEqual([pem('old') + pem('new')]), { timeout: 30_000 });
    // What tls.connect reads when the client connects next (the clients copy the options
    // object, not the array).
    expect({ ...ssl }.ca).toEqual([pem('old') + pem('new')]);
    expect(Object.assign({}, tls).ca).toEqual([pem('old') + pem('new')]);
  });

  it('keeps the last good bundle over an emptied or half-written file', () => {
    expect(nextBundle(pem('a'), pem('b'))).toBe(pem('b'));
    expect(nextBundle(pem('a'), '')).toBe(pem('a'));
    expect(nextBundle(pem('a'), '-----BEGIN CERTIFICATE-----\nMII')).toBe(pem('a'));
  });

  it('fails at start on a missing file, naming it', () => {
    expect(() => liveCa(join(tmpdir(), 'no-such-dir', 'missing.crt'))).toThrow(/missing\.crt/);
  });
});
