// isUnavailable against the errors node-postgres really raises (messages copied from pg 8 and
// pg-pool 3): a replica that cannot answer falls back to the primary; a wrong query does not.
import { describe, expect, it } from 'vitest';
import { isStatementError, isUnavailable } from './errors.ts';

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe('isUnavailable', () => {
  it.each([
    ['a refused socket', withCode('connect ECONNREFUSED 10.0.0.1:5432', 'ECONNREFUSED')],
    ['a replica still starting (57P03)', withCode('the database system is starting up', '57P03')],
    ['an admin shutdown (57P01)', withCode('terminating connection', '57P01')],
    ['a recovery conflict (40001)', withCode('canceling statement due to conflict', '40001')],
    ['a connection exception (08006)', withCode('connection failure', '08006')],
    ['the pool timing out', new Error('timeout exceeded when trying to connect')],
    ["a client's connect timeout", new Error('timeout expired')],
    ['a dropped connection', new Error('Connection terminated unexpectedly')],
    ['a pooled connect timeout', new Error('Connection terminated due to connection timeout')],
    [
      'no Postgres behind the address',
      new Error('There was an error establishing an SSL connection'),
    ],
    ['a peer that refuses TLS', new Error('The server does not support SSL connections')],
  ])('is true for %s', (_name, e) => {
    expect(isUnavailable(e)).toBe(true);
  });

  it.each([
    ['a syntax error (42601)', withCode('syntax error at or near "SELEC"', '42601')],
    ['a missing table (42P01)', withCode('relation "users" does not exist', '42P01')],
    ['a unique violation (23505)', withCode('duplicate key value', '23505')],
    ['a plain error', new Error('something else')],
    ['a non-error', 'timeout expired'],
  ])('is false for %s', (_name, e) => {
    expect(isUnavailable(e)).toBe(false);
  });
});

describe('isStatementError', () => {
  it('is a SQLSTATE the server answered over a sound connection', () => {
    expect(isStatementError(withCode('duplicate key value', '23505'))).toBe(true);
    expect(isStatementError(withCode('bucket 7 is moving', 'SB001'))).toBe(true);
    expect(isStatementError(withCode('terminating connection', '57P01'))).toBe(false);
    expect(isStatementError(withCode('connection failure', '08006'))).toBe(false);
    expect(isStatementError(withCode('connect ECONNREFUSED', 'ECONNREFUSED'))).toBe(false);
    expect(isStatementError(new Error('Connection terminated unexpectedly'))).toBe(false);
  });
});
