import { describe, expect, it } from 'vitest';
import { execUrl, exitCodeOf } from './pod-exec.ts';

describe('pod exec over the remotecommand WebSocket', () => {
  it('asks for the container, both output streams and each argument as its own command parameter', () => {
    const url = new URL(
      execUrl('https://10.0.0.1:6443', {
        namespace: 'ns',
        pod: 'shop-db-0-1',
        container: 'postgres',
        command: ['python3', '-c', 'print("a b&c")', '{"x":1}'],
      }),
    );
    expect(url.protocol).toBe('wss:');
    expect(url.pathname).toBe('/api/v1/namespaces/ns/pods/shop-db-0-1/exec');
    expect(url.searchParams.getAll('command')).toEqual([
      'python3',
      '-c',
      'print("a b&c")',
      '{"x":1}',
    ]);
    expect(url.searchParams.get('container')).toBe('postgres');
    expect(url.searchParams.get('stdout')).toBe('true');
    expect(url.searchParams.get('stdin')).toBeNull();
  });

  it('reads the exit code from the status channel, and throws on any other failure', () => {
    expect(exitCodeOf({ status: 'Success' })).toBe(0);
    expect(
      exitCodeOf({
        status: 'Failure',
        reason: 'NonZeroExitCode',
        details: { causes: [{ reason: 'ExitCode', message: '3' }] },
      }),
    ).toBe(3);
    expect(() =>
      exitCodeOf({ status: 'Failure', message: 'container not found ("postgres")' }),
    ).toThrow(/container not found/);
  });
});
