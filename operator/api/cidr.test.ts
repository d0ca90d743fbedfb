import { describe, expect, it } from 'vitest';
import { cidrContains, parseCidr } from './cidr.ts';

const must = (s: string) => {
  const c = parseCidr(s);
  if (!c) throw new Error(`not a CIDR: ${s}`);
  return c;
};

describe('parseCidr', () => {
  it.each([
    '10.0.0.0/8',
    '0.0.0.0/0',
    '10.1.2.3/32',
    '2001:db8::/32',
    '::/0',
    '::ffff:1.2.3.4/128',
  ])('accepts %s', (s) => expect(parseCidr(s)).toBeDefined());
  it.each([
    '10.0.0.0',
    '10.0.0.0/33',
    '2001:db8::/129',
    '10.0.0.0/08',
    '010.0.0.0/8',
    'fe80::1%eth0/64',
    '10.0.0.0/',
    'shop/8',
    '',
  ])('refuses %s', (s) => expect(parseCidr(s)).toBeUndefined());
});

describe('cidrContains', () => {
  it('holds for ranges within, not for ranges across or of the other family', () => {
    expect(cidrContains(must('10.0.0.0/8'), must('10.200.0.0/16'))).toBe(true);
    expect(cidrContains(must('10.0.0.0/8'), must('11.0.0.0/16'))).toBe(false);
    expect(cidrContains(must('10.0.0.0/16'), must('10.0.0.0/8'))).toBe(false);
    expect(cidrContains(must('2001:db8::/32'), must('2001:db8:ff::/48'))).toBe(true);
    expect(cidrContains(must('2001:db8::/32'), must('2001:db9::/48'))).toBe(false);
    expect(cidrContains(must('0.0.0.0/0'), must('::/0'))).toBe(false);
  });
});
