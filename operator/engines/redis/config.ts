// Pure: the text of redis.conf, sentinel.conf and the start scripts the cache and session
// Redis pods run. The ConfigMaps hold exactly this text, and the engine tests start the real
// redis-server / redis-sentinel from it, so what is tested is what is deployed.
//
// Passwords are in none of it: the scripts read each role's password from the environment
// (secretKeyRefs, PASSWORD_ENV) and hand the ACL users to redis-server on stdin, so they are
// in no ConfigMap, file or argv.
// Sentinel has to keep its config in a writable file (it rewrites it on failover), so its
// copy lives in the pod's emptyDir, never in the ConfigMap.
// Directives checked against the redis.conf / sentinel.conf shipped with Redis 7.0 (the
// Debian package the engine tests use) and still valid in the Redis 8 image the pods run.
import type { AppModel } from '../../api/model.ts';
import { parseQuantity } from '../../tiers/shared/quantity.ts';
import { CA_FILE, SERVER_TLS_DIR, TLS_FILES } from '../../tiers/shared/tls/objects.ts';

export const REDIS_PORT = 6379;
export const SENTINEL_PORT = 26379;
export const EXPORTER_PORT = 9121;
/** Three Sentinels, two must agree that the master is down: one can be lost. */
export const SENTINEL_COUNT = 3;
export const SENTINEL_QUORUM = 2;
/**
 * How long a master may be unreachable before Sentinel calls it down: after kill -9 the
 * promotion follows about 1 s later, and ioredis writes again right after (BENCHMARKS.md,
 * bench:failover). Shorter risks failing over a master that only stalled (a fork for a
 * rewrite of a large dataset, a slow command) and so dropping its unreplicated writes.
 */
export const SENTINEL_DOWN_AFTER_MS = 2000;
/**
 * Bounds a failover's steps (an unanswered promotion, replicas reconfiguring); twice it is the
 * wait before Sentinel tries the same master again, two minutes with Redis's 60 s example.
 */
export const SENTINEL_FAILOVER_TIMEOUT_MS = 10000;

/** Where the pods mount the ConfigMap and the writable data directory. */
export const CONF_DIR = '/etc/redis';
export const DATA_DIR = '/data';

/**
 * The session store has no memory field in the API yet; a fixed budget with noeviction
 * makes a full store refuse writes (the app sees an error) instead of being OOM-killed.
 */

const MI = 2 ** 20;

/**
 * Container memory limit for a Redis with this maxmemory: maxmemory counts only the
 * dataset, not allocator fragmentation, client and replica output buffers, the replication
 * backlog or the process itself. 25% covers fragmentation and buffers, 64Mi the fixed
 * overhead, so Redis evicts (or refuses writes) before the kernel kills it.
 */
export function memoryLimitOf(maxmemory: string | number): string {
  const bytes = parseQuantity(maxmemory);
  return `${Math.ceil((bytes * 1.25 + 64 * MI) / MI)}Mi`;
}

export const maxmemoryBytes = (maxmemory: string | number): number =>
  Math.floor(parseQuantity(maxmemory));

/**
 * The port lines: with TLS the same port number serves TLS only (`port 0` closes the plain
 * one), so Services, NetworkPolicies and probes keep their ports. The server presents the
 * mounted certificate; clients need none (the password authenticates them); replicas and
 * Sentinels reach their peers over TLS too and verify them against the CA.
 */
export function portConf(port: number, tls: boolean): string[] {
  if (!tls) return [`port ${port}`];
  return [
    'port 0',
    `tls-port ${port}`,
    `tls-cert-file ${SERVER_TLS_DIR}/${TLS_FILES.cert}`,
    `tls-key-file ${SERVER_TLS_DIR}/${TLS_FILES.key}`,
    `tls-ca-cert-file ${CA_FILE}`,
    'tls-auth-clients no',
    'tls-replication yes',
  ];
}

/** How every Redis and Sentinel the operator runs listens and runs in its pod. */
function serverConf(port: number, tls: boolean): string[] {
  return [
    // "-::*": IPv6 only where the pod has it.
    'bind * -::*',
    // A password is always required and a NetworkPolicy admits only the app's pods.
    'protected-mode no',
    ...portConf(port, tls),
    `dir ${DATA_DIR}`,
    'daemonize no',
    'logfile ""',
  ];
}

/** Directives shared by every Redis the operator runs. */
function baseConf(title: string, tls: boolean): string[] {
  return [
    `# ${title}. Rendered by scalable-operator; edits are overwritten.`,
    '# ACL users, masteruser/masterauth (and replicaof) are added on stdin by start-redis.sh.',
    ...serverConf(REDIS_PORT, tls),
    'tcp-keepalive 60',
    'timeout 0',
  ];
}

/**
 * One ACL user per role (issue 36: one shared password let app pods CONFIG SET, REPLICAOF and
 * SENTINEL MONITOR). Each role's password is a key of the tier's generated Secret; the
 * containers get them as these env names (only the ones their role needs).
 */
export const ACL_USERS = {
  /** The pod's own scripts and probes (TLS reload, preStop's CLIENT PAUSE and failover). */
  admin: { user: 'admin', key: 'admin-password', env: 'ADMIN_PASSWORD' },
  /** A replica syncing from its master (masteruser). */
  replication: { user: 'replication', key: 'replication-password', env: 'REPLICATION_PASSWORD' },
  /** Sentinel watching and reconfiguring the Redis pods. */
  sentinel: { user: 'sentinel', key: 'sentinel-password', env: 'SENTINEL_PASSWORD' },
  /** App pods (and KEDA's scalers): data commands only. */
  app: { user: 'app', key: 'app-password', env: 'APP_PASSWORD' },
  /** redis_exporter: INFO and stream metadata, no values. */
  exporter: { user: 'exporter', key: 'exporter-password', env: 'EXPORTER_PASSWORD' },
} as const;
export type AclRole = keyof typeof ACL_USERS;

/**
 * The single password of tiers created before ACL users (key `password` of their -auth
 * Secret, which is no longer created; docs/security.md says how to finish). While it exists, the default user keeps it with full rights and the Redis/Sentinel
 * pods authenticate to each other with it, so pods still on the old config keep replicating
 * and failing over during the rollout; a tier created now never has it (default user off).
 */
export const LEGACY_PASSWORD = { key: 'password', env: 'REDIS_PASSWORD' } as const;

/**
 * Redis's ACL rules per role (after `on >password`). Rules apply left to right.
 * - replication and sentinel: what the Redis docs list for replicas and Sentinel ("ACL rules
 *   for Sentinel and Replicas"); replicaof too, Sentinel's name for slaveof on Redis 7+;
 * - app: every key, no channels (it could forge Sentinel's hello messages), data commands
 *   only: -@admin and -@dangerous drop CONFIG, REPLICAOF, DEBUG, SHUTDOWN, ACL SETUSER,
 *   MODULE, MONITOR, FLUSHALL, KEYS...; INFO back for ioredis's ready check;
 * - exporter: redis_exporter's documented list minus what reads values or secrets (GET, EVAL:
 *   key values are off; CONFIG GET would show masterauth; CLIENT only SETNAME): it still gets
 *   maxmemory and the rest from INFO, stream sizes from XINFO.
 */
export const REDIS_ACL: Readonly<Record<AclRole, string>> = {
  admin: '~* &* +@all',
  replication: 'resetchannels -@all +psync +replconf +ping',
  sentinel:
    'allchannels -@all +multi +exec +slaveof +replicaof +ping +subscribe +publish +config|rewrite +role +info +client|setname +client|kill +script|kill',
  app: '~* resetchannels -@all +@read +@write +@keyspace +@string +@hash +@list +@set +@sortedset +@stream +@hyperloglog +@bitmap +@geo +@transaction +@scripting +@connection -@admin -@dangerous +info',
  exporter:
    '~* resetchannels -@all +@connection -hello -echo -wait -reset -auth -asking -quit -readonly -readwrite -command +client|setname +info +ping +slowlog|get +slowlog|len +latency|latest +latency|histogram +memory|stats +xinfo +xlen +type +scan',
};

/**
 * Sentinel's users: admin (the scripts; Sentinels authenticate to each other as it) and app,
 * which may only ask where the master and the other Sentinels are (no SENTINEL MONITOR, SET,
 * FAILOVER, RESET) and hear about failovers.
 */
export const SENTINEL_ACL: Readonly<Record<'admin' | 'app', string>> = {
  admin: '~* &* +@all',
  app: 'allchannels -@all +auth +hello +ping +client|setname +client|getname +subscribe +unsubscribe +psubscribe +punsubscribe +sentinel|get-master-addr-by-name +sentinel|sentinels +sentinel|replicas +sentinel|slaves',
};

/** The cache: maxmemory + eviction policy, nothing written to disk. */
export function cacheRedisConf(cache: NonNullable<AppModel['cache']>): string {
  return lines([
    ...baseConf('Cache Redis: evictable data only, no persistence', cache.tls),
    `maxmemory ${maxmemoryBytes(cache.memory)}`,
    `maxmemory-policy ${cache.evictionPolicy}`,
    // 10 samples approximate true LRU/LFU closely for little CPU (default 5).
    'maxmemory-samples 10',
    'save ""',
    'appendonly no',
    // Replication without touching disk: the master streams, an empty replica loads directly.
    'repl-diskless-sync yes',
    'repl-diskless-load on-empty-db',
    'replica-read-only yes',
    'replica-serve-stale-data yes',
  ]);
}

/** The session store: every write goes to the append-only file, nothing is ever evicted. */
export const sessionsRedisConf = (maxmemory: string | number, tls: boolean): string =>
  persistentRedisConf(maxmemory, 'Session Redis: persistent, never evicts', tls);

/** A Redis whose data must survive (sessions, queued messages): AOF, noeviction. */
export function persistentRedisConf(
  maxmemory: string | number,
  title: string,
  tls: boolean,
): string {
  return lines([
    ...baseConf(title, tls),
    `maxmemory ${maxmemoryBytes(maxmemory)}`,
    'maxmemory-policy noeviction',
    'appendonly yes',
    // At most one second of writes lost on a crash; fsync per write would cap throughput.
    'appendfsync everysec',
    // The AOF is the persistence; RDB snapshots would only add fork pauses.
    'save ""',
    'aof-use-rdb-preamble yes',
  ]);
}

/** Name Sentinel knows the cache master by, handed to the app as REDIS_MASTER_NAME. */
export const masterNameOf = (app: AppModel): string => `${app.name}-cache`;

/**
 * sentinel.conf. @MASTER_HOST@/@MASTER_PORT@ are filled in by start-sentinel.sh with the
 * current master (resolve-hostnames must precede the monitor line, so the monitor line
 * stays here, in order, with placeholders).
 */
export function sentinelConf(masterName: string, tls: boolean): string {
  return lines([
    '# Redis Sentinel for the cache. Rendered by scalable-operator; edits are overwritten.',
    '# start-sentinel.sh fills @MASTER_HOST@/@MASTER_PORT@ and appends the ACL users and',
    '# announce-ip, then runs Sentinel on a writable copy in the data directory.',
    // With TLS, tls-replication makes Sentinel reach the Redis it watches over TLS too.
    ...serverConf(SENTINEL_PORT, tls),
    // Pod IPs change; stable StatefulSet hostnames don't, so everyone talks in hostnames.
    'sentinel resolve-hostnames yes',
    'sentinel announce-hostnames yes',
    `sentinel monitor ${masterName} @MASTER_HOST@ @MASTER_PORT@ ${SENTINEL_QUORUM}`,
    `sentinel down-after-milliseconds ${masterName} ${SENTINEL_DOWN_AFTER_MS}`,
    `sentinel failover-timeout ${masterName} ${SENTINEL_FAILOVER_TIMEOUT_MS}`,
    `sentinel parallel-syncs ${masterName} 1`,
    'sentinel deny-scripts-reconfig yes',
  ]);
}

// Shell shared by the scripts: redis-cli, over TLS verified against the CA when the pod has
// TLS_CA_FILE; how the scripts authenticate: to this pod's own Redis/Sentinel as admin
// (`local`), to the other pods as admin, or with the legacy password while the Secret holds
// one (`peer`: they may still run the old config, which knows only that password); a
// container started with the old env (the kubelet restarts it with the new scripts) has only
// the legacy password and uses it for both. And current_master, which asks the Sentinels
// (SENTINELS="host:port,...") who the master is. Prints host:port, or nothing when no
// Sentinel knows (a fresh set).
const CURRENT_MASTER_SH = `cli="redis-cli\${TLS_CA_FILE:+ --tls --cacert $TLS_CA_FILE}"
if [ -n "\${ADMIN_PASSWORD:-}" ]; then
  local_pass="$ADMIN_PASSWORD" local_user="--user admin"
else
  local_pass="\${REDIS_PASSWORD:-}" local_user=""
fi
if [ -n "\${REDIS_PASSWORD:-}" ]; then
  peer_pass="$REDIS_PASSWORD" peer_user=""
else
  peer_pass="$local_pass" peer_user="$local_user"
fi
current_master() {
  for s in $(printf '%s' "\${SENTINELS:-}" | tr ',' ' '); do
    reply="$(REDISCLI_AUTH="$peer_pass" timeout 3 $cli $peer_user -h "\${s%:*}" -p "\${s##*:}" \\
      sentinel get-master-addr-by-name "$MASTER_NAME" 2>/dev/null)" || continue
    host="$(printf '%s\\n' "$reply" | sed -n 1p)"
    port="$(printf '%s\\n' "$reply" | sed -n 2p)"
    case "$port" in '' | *[!0-9]*) continue ;; esac
    printf '%s:%s\\n' "$host" "$port"
    return 0
  done
}`;

/** A `user` line per role whose password the container has (none with the old env). */
const userLinesSh = (acl: Readonly<Partial<Record<AclRole, string>>>): string =>
  (Object.keys(acl) as AclRole[])
    .map((r) => {
      const u = ACL_USERS[r];
      return `\${${u.env}:+user ${u.user} on resetpass >$${u.env} ${acl[r] ?? ''}}`;
    })
    .join('\n');

/**
 * Upgrade from the single password: ACL SETUSER lines for every role this container has a
 * password for, fed to redis-cli on stdin (printf is a shell builtin: no password in argv).
 */
const pushUsersSh = (acl: Readonly<Partial<Record<AclRole, string>>>): string =>
  (Object.keys(acl) as AclRole[])
    .map((r) => {
      const u = ACL_USERS[r];
      return `      [ -z "\${${u.env}:-}" ] || printf 'ACL SETUSER ${u.user} on resetpass >%s ${acl[r] ?? ''}\\n' "$${u.env}"`;
    })
    .join('\n');

/**
 * start-redis.sh. Env: the roles' passwords (ACL_USERS; REDIS_PASSWORD, the legacy one, while
 * the Secret has it), CONF_DIR; with Sentinel also SENTINELS, MASTER_NAME, SELF_ADDR (this
 * pod's stable host:port) and SEED_ADDR (pod 0, the master of a fresh set).
 */
export const START_REDIS_SH = `#!/bin/sh
# Starts redis-server from $CONF_DIR/redis.conf; the passwords arrive on stdin, never in argv.
set -eu
${CURRENT_MASTER_SH}

# The default user keeps the legacy password while the Secret has one (pods on the old config
# replicate and watch with it); otherwise it is off and replicas sync as the replication user.
if [ -n "\${REDIS_PASSWORD:-}" ]; then
  default_user="user default on resetpass >$REDIS_PASSWORD ~* &* +@all"
  masterauth="masterauth $REDIS_PASSWORD"
else
  default_user="user default off resetpass -@all"
  masterauth="masteruser replication
masterauth \${REPLICATION_PASSWORD:?}"
fi

announce=""
role=""
if [ -n "\${SENTINELS:-}" ]; then
  # After a failover the Sentinels know the master; on a fresh set nobody does and pod 0 is.
  master="$(current_master || true)"
  [ -n "$master" ] || master="$SEED_ADDR"
  announce="replica-announce-ip \${SELF_ADDR%:*}"
  if [ "$master" != "$SELF_ADDR" ]; then
    role="replicaof \${master%:*} \${master##*:}"
  fi
  echo "start-redis: master is $master"
  if [ -n "\${REDIS_PASSWORD:-}" ] && [ -n "\${ADMIN_PASSWORD:-}" ] && [ "$master" != "$SELF_ADDR" ]; then
    # Upgrade from the single password: the master and the Sentinels may still run the old
    # config, which has no ACL users; teach them the new ones (with the legacy password), so
    # app pods already on the app user reach them before their own restart. Best effort.
    redis_users() {
${pushUsersSh(REDIS_ACL)}
    }
    sentinel_users() {
${pushUsersSh(SENTINEL_ACL)}
    }
    redis_users | REDISCLI_AUTH="$REDIS_PASSWORD" timeout 5 $cli -h "\${master%:*}" -p "\${master##*:}" >/dev/null 2>&1 || true
    for s in $(printf '%s' "$SENTINELS" | tr ',' ' '); do
      sentinel_users | REDISCLI_AUTH="$REDIS_PASSWORD" timeout 5 $cli -h "\${s%:*}" -p "\${s##*:}" >/dev/null 2>&1 || true
    done
  fi
fi

# TLS: Redis 7 re-reads its certificate only on CONFIG SET, so a background loop re-applies
# the configured paths when the kubelet swaps a renewed Secret in (every TLS_RELOAD_SECONDS).
# Open connections keep their session; new ones get the new certificate. $$ is Redis's pid
# once the exec below has run: the loop ends with it.
port="$(sed -n 's/^tls-port //p' "$CONF_DIR/redis.conf")"
cert="$(sed -n 's/^tls-cert-file //p' "$CONF_DIR/redis.conf")"
key="$(sed -n 's/^tls-key-file //p' "$CONF_DIR/redis.conf")"
if [ -n "$cert" ]; then
  (
    last="$(cksum <"$cert" 2>/dev/null || true)"
    while sleep "\${TLS_RELOAD_SECONDS:-30}" && kill -0 $$ 2>/dev/null; do
      now="$(cksum <"$cert" 2>/dev/null || true)"
      [ "$now" != "$last" ] || continue
      if REDISCLI_AUTH="$local_pass" timeout 3 $cli $local_user -p "$port" \\
        config set tls-cert-file "$cert" tls-key-file "$key" 2>&1 | grep -qx OK; then
        last="$now"
        echo "start-redis: reloaded the renewed certificate"
      fi
    done
  ) &
fi

exec redis-server "$CONF_DIR/redis.conf" - <<EOF
$default_user
${userLinesSh(REDIS_ACL)}
$masterauth
$announce
$role
EOF
`;

/** start-sentinel.sh. Env: as start-redis.sh, plus DATA_DIR (writable). */
export const START_SENTINEL_SH = `#!/bin/sh
# Writes a runnable sentinel.conf into $DATA_DIR (Sentinel rewrites it) and starts Sentinel.
set -eu
${CURRENT_MASTER_SH}

# Another Sentinel that is up knows the master after a failover; otherwise pod 0 is it.
master="$(current_master || true)"
[ -n "$master" ] || master="$SEED_ADDR"
host="\${master%:*}"
port="\${master##*:}"

# The monitor line must resolve the master's hostname: wait (bounded) until it answers.
i=0
until timeout 2 $cli -h "$host" -p "$port" ping >/dev/null 2>&1 || [ "$i" -ge 30 ]; do
  i=$((i + 1))
  sleep 2
done

umask 077
{
  sed -e "s/@MASTER_HOST@/$host/" -e "s/@MASTER_PORT@/$port/" "$CONF_DIR/sentinel.conf"
  printf 'sentinel announce-ip %s\\n' "\${SELF_ADDR%:*}"
  if [ -n "\${REDIS_PASSWORD:-}" ]; then
    # The legacy password (start-redis.sh): Sentinels use requirepass for each other too.
    printf 'sentinel auth-pass %s %s\\n' "$MASTER_NAME" "$REDIS_PASSWORD"
    printf 'requirepass %s\\n' "$REDIS_PASSWORD"
  else
    printf 'sentinel auth-user %s sentinel\\n' "$MASTER_NAME"
    printf 'sentinel auth-pass %s %s\\n' "$MASTER_NAME" "\${SENTINEL_PASSWORD:?}"
    printf 'sentinel sentinel-user admin\\nsentinel sentinel-pass %s\\n' "\${ADMIN_PASSWORD:?}"
    printf 'user default off resetpass -@all\\n'
  fi
  cat <<EOF
${userLinesSh(SENTINEL_ACL)}
EOF
} >"$DATA_DIR/sentinel.conf"
echo "start-sentinel: monitoring $master"
cert="$(sed -n 's/^tls-cert-file //p' "$DATA_DIR/sentinel.conf")"
[ -n "$cert" ] || exec redis-sentinel "$DATA_DIR/sentinel.conf"

# TLS: Sentinel cannot reload its certificate (no CONFIG SET), so when the kubelet swaps a
# renewed Secret in, Sentinel restarts in place from the file it keeps its state in (a few
# milliseconds; clients reconnect). Each pod sees the new file at its own time.
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit 0' TERM INT
while :; do
  last="$(cksum <"$cert" 2>/dev/null || true)"
  redis-sentinel "$DATA_DIR/sentinel.conf" &
  pid=$!
  renewed=""
  while [ -z "$renewed" ] && kill -0 "$pid" 2>/dev/null; do
    sleep "\${TLS_RELOAD_SECONDS:-30}" &
    wait $!
    if [ "$(cksum <"$cert" 2>/dev/null || true)" != "$last" ]; then
      renewed=1
      echo "start-sentinel: certificate renewed, restarting Sentinel"
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  status=0
  wait "$pid" || status=$?
  # Sentinel exited by itself: so does the container (the kubelet restarts it).
  [ -n "$renewed" ] || exit "$status"
done
`;

/**
 * How long a stopping master's pod may take (terminationGracePeriodSeconds of the Redis pods
 * with Sentinel): pre-stop.sh below waits up to HANDOVER_SYNC_WAIT_SECONDS for a replica in
 * sync, then up to HANDOVER_SWITCH_WAIT_SECONDS for the Sentinels to switch, and Redis still
 * has to write its append-only file after SIGTERM.
 */
export const HANDOVER_SYNC_WAIT_SECONDS = 30;
export const HANDOVER_SWITCH_WAIT_SECONDS = 20;
export const REDIS_STOP_GRACE_SECONDS = 60;
/** How long writes are held while the replicas catch up and Sentinel promotes one. */
const HANDOVER_PAUSE_MS = 15000;
/** Of that pause, how long the replicas get to catch up before the hand-over is given up. */
const HANDOVER_CATCH_UP_SECONDS = 5;

/**
 * pre-stop.sh (Sentinel mode): a master hands its role to a replica before it stops, so a
 * rollout or a node drain costs clients a reconnect instead of a failure detection
 * (down-after-milliseconds) plus an election. Bounded well under the grace period.
 *
 * Only to a replica in sync: SENTINEL FAILOVER promotes the replica Sentinel ranks first
 * among those it can reach (priority, then the replication offset from its last INFO, up to
 * 10 s old), and a replica still in its first full sync after a restart qualifies (its link
 * has been down for less than 10 x down-after-milliseconds). Promoted mid-sync, it keeps
 * the data it had before the sync (its old append-only file, or nothing) and the writes
 * since are lost. So the script first waits (writes go on) until every replica the Sentinel
 * could promote is online on this master, then holds writes until each has acknowledged
 * this master's last offset, and only then asks that Sentinel to fail over: whichever it
 * picks has every acknowledged write. No such replica before the deadline: no hand-over
 * (the pod stops as a master would without this hook).
 */
export const PRE_STOP_REDIS_SH = `#!/bin/sh
# preStop: if the Sentinels say this pod is the master, hand over to a replica in sync.
set -u
${CURRENT_MASTER_SH}

[ "$(current_master || true)" = "$SELF_ADDR" ] || exit 0
self() { REDISCLI_AUTH="$local_pass" timeout 3 $cli $local_user -p "\${SELF_ADDR##*:}" "$@"; }
ask() {
  at="$1"
  shift
  REDISCLI_AUTH="$peer_pass" timeout 3 $cli $peer_user -h "\${at%:*}" -p "\${at##*:}" "$@"
}

# The replicas Sentinel $1 could promote, as host:port: SENTINEL FAILOVER skips those it
# sees down or disconnected and those with priority 0 (redis-cli prints field, value, ...).
candidates() {
  ask "$1" sentinel replicas "$MASTER_NAME" 2>/dev/null | tr -d '\\r' | awk '
    function emit() { if (n != "" && f !~ /s_down|o_down|disconnected/ && p != "0") print n }
    NR % 2 == 1 { k = $0; next }
    k == "name" { emit(); n = $0; f = ""; p = "" }
    k == "flags" { f = $0 }
    k == "slave-priority" { p = $0 }
    END { emit() }'
}

# Whether every replica Sentinel $1 could promote is online on this master (its full sync
# done) and, with $2 = caught-up, has acknowledged this master's whole replication stream.
in_sync() {
  view="$(self info replication 2>/dev/null | tr -d '\\r')"
  mine="$(printf '%s\\n' "$view" | sed -n 's/^master_repl_offset://p')"
  [ -n "$mine" ] || return 1
  found=0
  for r in $(candidates "$1"); do
    line="$(printf '%s\\n' "$view" | grep -F "ip=\${r%:*},port=\${r##*:},")" || return 1
    case "$line" in *,state=online,*) ;; *) return 1 ;; esac
    if [ "$2" = caught-up ]; then
      offset="$(printf '%s\\n' "$line" | sed -n 's/.*,offset=\\([0-9]*\\),.*/\\1/p')"
      [ -n "$offset" ] && [ "$offset" -ge "$mine" ] || return 1
    fi
    found=$((found + 1))
  done
  [ "$found" -gt 0 ]
}

deadline=$(($(date +%s) + ${HANDOVER_SYNC_WAIT_SECONDS}))
while [ "$(date +%s)" -lt "$deadline" ]; do
  chosen=""
  for s in $(printf '%s' "$SENTINELS" | tr ',' ' '); do
    if in_sync "$s" online; then
      chosen="$s"
      break
    fi
  done
  if [ -z "$chosen" ]; then
    sleep 1
    continue
  fi
  # Hold writes (clients wait, nothing is lost) so the replicas catch up and no write lands
  # here between the promotion and this node's demotion; Sentinel's CLIENT KILL then sends
  # the clients to the new master. The pause lifts itself if no handover happens.
  self client pause ${HANDOVER_PAUSE_MS} write >/dev/null 2>&1
  i=0
  until in_sync "$chosen" caught-up || [ "$i" -ge ${HANDOVER_CATCH_UP_SECONDS * 5} ]; do
    i=$((i + 1))
    sleep 0.2
  done
  if in_sync "$chosen" caught-up &&
    ask "$chosen" sentinel failover "$MASTER_NAME" 2>/dev/null | grep -qx OK; then
    i=0
    while [ "$i" -lt ${HANDOVER_SWITCH_WAIT_SECONDS} ]; do
      master="$(current_master || true)"
      if [ -n "$master" ] && [ "$master" != "$SELF_ADDR" ]; then
        echo "pre-stop: handed over to $master"
        exit 0
      fi
      i=$((i + 1))
      sleep 1
    done
    self client unpause >/dev/null 2>&1
    echo "pre-stop: no handover, stopping anyway"
    exit 0
  fi
  self client unpause >/dev/null 2>&1
  sleep 1
done
echo "pre-stop: no replica in sync within ${HANDOVER_SYNC_WAIT_SECONDS}s, stopping without a handover"
`;

/**
 * Readiness of a Redis container: PONG as the admin user (its password from the environment;
 * REDISCLI_AUTH keeps it out of argv), over TLS verified against the CA when the container
 * has TLS_CA_FILE; and then a master (a standalone Redis too) is ready, a replica only once
 * its link to the master is up and no sync is in progress. A replica still loading its first
 * full sync holds none of the writes since its restart: as not ready it holds up a rollout
 * (the StatefulSet waits for it before it stops the next pod) and counts against the PDB,
 * so neither stops the master while no replica has its data. Sentinel does not read
 * readiness: a replica whose master is gone is not ready and can still be promoted.
 */
export const readyCommand = (port: number): string[] => [
  'sh',
  '-c',
  [
    `set -- --user admin \${TLS_CA_FILE:+--tls --cacert "$TLS_CA_FILE"} -p ${port}`,
    'export REDISCLI_AUTH="$ADMIN_PASSWORD"',
    'timeout 2 redis-cli "$@" ping | grep -qx PONG || exit 1',
    `r="$(timeout 2 redis-cli "$@" info replication | tr -d '\\r')"`,
    'printf "%s\\n" "$r" | grep -qx role:master && exit 0',
    'printf "%s\\n" "$r" | grep -qx role:slave &&',
    '  printf "%s\\n" "$r" | grep -qx master_link_status:up &&',
    '  printf "%s\\n" "$r" | grep -qx master_sync_in_progress:0',
  ].join('\n'),
];

/**
 * Sentinel's readiness command: PONG as the admin user, its password from the environment
 * (REDISCLI_AUTH keeps it out of argv), over TLS verified against the CA when the container
 * has TLS_CA_FILE.
 */
export const pingCommand = (port: number): string[] => [
  'sh',
  '-c',
  `REDISCLI_AUTH="$ADMIN_PASSWORD" timeout 3 redis-cli --user admin \${TLS_CA_FILE:+--tls --cacert "$TLS_CA_FILE"} -p ${port} ping | grep -qx PONG`,
];

const lines = (ls: readonly string[]): string => `${ls.join('\n')}\n`;
