import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  HANDOVER_SWITCH_WAIT_SECONDS,
  HANDOVER_SYNC_WAIT_SECONDS,
  PRE_STOP_REDIS_SH,
  REDIS_STOP_GRACE_SECONDS,
  START_REDIS_SH,
  START_SENTINEL_SH,
  cacheRedisConf,
  memoryLimitOf,
  sentinelConf,
  readyCommand,
  sessionsRedisConf,
} from './config.ts';
import { modelOf } from '../../tiers/shared/test-helpers.ts';

const directives = (conf: string) =>
  conf
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.split(' ')[0]);

describe('memoryLimitOf', () => {
  it.each([
    ['256Mi', '384Mi'],
    ['1Gi', '1344Mi'],
    ['100M', '184Mi'],
    [67108864, '144Mi'],
  ])('%s of data -> a %s container limit', (maxmemory, limit) => {
    expect(memoryLimitOf(maxmemory)).toBe(limit);
  });
});

describe('cacheRedisConf', () => {
  const cache = modelOf({ cache: { memory: '64Mi' } }).cache;
  if (!cache) throw new Error('cache is on');
  const conf = cacheRedisConf(cache);

  it('bounds memory, evicts by policy and persists nothing', () => {
    expect(conf).toContain('\nmaxmemory 67108864\n');
    expect(conf).toContain('\nmaxmemory-policy allkeys-lru\n');
    expect(conf).toContain('\nsave ""\n');
    expect(conf).toContain('\nappendonly no\n');
    expect(conf).toContain('\ndir /data\n');
  });

  it('serves TLS only on 6379 by default, with the mounted key pair, and replicates over TLS', () => {
    expect(conf).toContain('\nport 0\ntls-port 6379\n');
    expect(conf).toContain('\ntls-cert-file /etc/scalable/tls/tls.crt\n');
    expect(conf).toContain('\ntls-key-file /etc/scalable/tls/tls.key\n');
    expect(conf).toContain('\ntls-ca-cert-file /etc/scalable/ca/ca.crt\n');
    expect(conf).toContain('\ntls-auth-clients no\n');
    expect(conf).toContain('\ntls-replication yes\n');
  });

  it('serves plain TCP on 6379 with tls: false, and nothing of TLS', () => {
    const plain = cacheRedisConf({ ...cache, tls: false });
    expect(plain).toContain('\nport 6379\n');
    expect(plain).not.toMatch(/^tls-/m);
  });

  it('holds no password and no directive twice', () => {
    const d = directives(conf);
    expect(d).not.toContain('requirepass');
    expect(d).not.toContain('masterauth');
    expect(new Set(d).size).toBe(d.length);
  });
});

describe('sessionsRedisConf', () => {
  it('appends every write and never evicts', () => {
    const conf = sessionsRedisConf('128Mi', true);
    expect(conf).toContain('\nappendonly yes\n');
    expect(conf).toContain('\nmaxmemory-policy noeviction\n');
    expect(conf).toContain(`\nmaxmemory ${128 * 2 ** 20}\n`);
    expect(directives(conf)).not.toContain('requirepass');
  });
});

describe('sentinelConf', () => {
  const conf = sentinelConf('shop-cache', true);
  it('serves TLS only on 26379 and reaches Redis over TLS', () => {
    expect(conf).toContain('\nport 0\ntls-port 26379\n');
    expect(conf).toContain('\ntls-replication yes\n');
    expect(sentinelConf('shop-cache', false)).toContain('\nport 26379\n');
    expect(sentinelConf('shop-cache', false)).not.toMatch(/^tls-/m);
  });
  it('resolves hostnames before the monitor line needs them', () => {
    const lines = conf.split('\n');
    const at = (prefix: string) => lines.findIndex((l) => l.startsWith(prefix));
    expect(at('sentinel resolve-hostnames yes')).toBeGreaterThan(-1);
    expect(at('sentinel resolve-hostnames')).toBeLessThan(at('sentinel monitor'));
    expect(at('sentinel monitor')).toBeLessThan(at('sentinel down-after-milliseconds'));
  });
  it('needs 2 of 3 Sentinels to agree and calls a master down after 2 s', () => {
    expect(conf).toContain('sentinel monitor shop-cache @MASTER_HOST@ @MASTER_PORT@ 2\n');
    expect(conf).toContain('sentinel down-after-milliseconds shop-cache 2000\n');
    expect(conf).toContain('sentinel failover-timeout shop-cache 10000\n');
    expect(directives(conf)).not.toContain('requirepass');
  });
});

describe('start scripts', () => {
  it.each([
    ['start-redis.sh', START_REDIS_SH],
    ['start-sentinel.sh', START_SENTINEL_SH],
    ['pre-stop.sh', PRE_STOP_REDIS_SH],
    ['the readiness probe', readyCommand(6379)[2] ?? ''],
  ])('%s is valid POSIX sh and never puts the password in argv', (_name, script) => {
    const r = spawnSync('sh', ['-n'], { input: script });
    expect(r.status, r.stderr.toString()).toBe(0);
    // Only redis-cli via REDISCLI_AUTH and config lines read the password.
    expect(script).not.toMatch(/-a "\$REDIS_PASSWORD"|--requirepass|--masterauth/);
  });
});

describe('pre-stop.sh', () => {
  it('hands over only after the replicas Sentinel could promote are online and caught up', () => {
    const at = (text: string) => PRE_STOP_REDIS_SH.indexOf(text);
    // Sentinel's own candidates (down, disconnected and priority-0 replicas it skips).
    expect(PRE_STOP_REDIS_SH).toContain('sentinel replicas "$MASTER_NAME"');
    expect(PRE_STOP_REDIS_SH).toContain('f !~ /s_down|o_down|disconnected/ && p != "0"');
    // Online first (writes go on), then writes held until every one acknowledged the
    // master's offset, then the failover, through the Sentinel whose candidates were checked.
    expect(at('in_sync "$s" online')).toBeGreaterThan(-1);
    expect(at('in_sync "$s" online')).toBeLessThan(at('client pause 15000 write'));
    expect(at('client pause 15000 write')).toBeLessThan(at('until in_sync "$chosen" caught-up'));
    expect(at('until in_sync "$chosen" caught-up')).toBeLessThan(
      at('ask "$chosen" sentinel failover'),
    );
    expect(PRE_STOP_REDIS_SH).toContain('[ "$offset" -ge "$mine" ]');
  });

  it("ends within the pod's grace period, SIGTERM and the append-only file included", () => {
    // The sync wait, the catch-up (5 s) and the switch wait, with 5 s left for Redis.
    expect(HANDOVER_SYNC_WAIT_SECONDS + 5 + HANDOVER_SWITCH_WAIT_SECONDS + 5).toBeLessThanOrEqual(
      REDIS_STOP_GRACE_SECONDS,
    );
    expect(PRE_STOP_REDIS_SH).toContain(`+ ${HANDOVER_SYNC_WAIT_SECONDS}))`);
    expect(PRE_STOP_REDIS_SH).toContain(`while [ "$i" -lt ${HANDOVER_SWITCH_WAIT_SECONDS} ]`);
  });
});
