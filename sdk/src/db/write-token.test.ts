import { describe, expect, it } from 'vitest';
import { formatLsn, formatWriteToken, parseLsn, parseWriteToken } from './write-token.ts';

describe('LSNs', () => {
  it('orders as Postgres orders pg_lsn: by the high word, then the low word', () => {
    expect(parseLsn('0/3000060')).toBe(0x3000060n);
    expect(parseLsn('16/B374D848')).toBe((0x16n << 32n) | 0xb374d848n);
    expect(parseLsn('1/0') > parseLsn('0/FFFFFFFF')).toBe(true);
    expect(formatLsn(parseLsn('16/b374d848'))).toBe('16/B374D848');
  });

  it('refuses what is not an LSN', () => {
    for (const bad of ['', '0', '0/', '/1', '0/123456789', 'x/1', '0/1 '])
      expect(() => parseLsn(bad)).toThrow(`not a Postgres LSN: ${JSON.stringify(bad)}`);
  });
});

describe('write tokens', () => {
  it('round-trip shard positions, in shard order, keeping the highest per shard', () => {
    const positions = parseWriteToken('1=0/1A2B3C8,0=0/3000060,1=0/1A2B000');
    expect([...positions]).toEqual([
      [1, 0x1a2b3c8n],
      [0, 0x3000060n],
    ]);
    expect(formatWriteToken(positions)).toBe('0=0/3000060,1=0/1A2B3C8');
  });

  it('are empty before any write', () => {
    expect(parseWriteToken(undefined).size).toBe(0);
    expect(parseWriteToken('').size).toBe(0);
    expect(formatWriteToken(new Map())).toBeUndefined();
  });

  it('refuse a token that does not parse instead of dropping the guarantee', () => {
    expect(() => parseWriteToken('0=0/1;1=0/2')).toThrow('not a Postgres LSN: "0/1;1=0/2"');
    expect(() => parseWriteToken('shard0=0/1')).toThrow('not a write token: "shard0=0/1"');
  });
});
