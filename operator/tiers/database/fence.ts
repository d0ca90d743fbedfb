// The database container's entrypoint, fence.py: a small supervisor that starts Patroni and
// fences the data path in the pod, so that no operator, API server or kubelet has to be
// alive for a stalled primary to stop taking writes.
//
// Patroni has a watchdog: while it leads, it feeds a device after every renewal of its lock
// (and, with failsafe_mode, after every member has confirmed it may go on while the API
// server is unreachable), and the device ends the machine if the feeding stops for
// ttl - safety_margin. /dev/watchdog needs privileges a restricted pod lacks, but Patroni's
// "testing" driver writes the same protocol to a named pipe ("Ctimeout=N" on arming, "1" per
// renewal, "V" to disarm). fence.py reads that pipe and, when Patroni has not renewed within
// the timeout it asked for (or died while leading), kills the postmaster's process group:
// every backend at once, so no further commit is acknowledged, and the standbys see the
// stream end. Patroni itself stays: if it still holds the lock it restarts Postgres after its
// next renewal; if not, it rejoins as a replica. The watchdog is added in a config file of
// fence.py's own (Patroni merges a directory of files), so it exists exactly where fence.py
// reads the pipe. With TLS, fence.py also sends Patroni SIGHUP when the certificate changes
// (the kubelet swaps a renewed Secret in): Patroni reloads Postgres and its REST API.
// Each time Patroni arms the watchdog (it has become the leader), fence.py makes sure
// pg_rewind's role exists with the password of the pod's env, over the local socket as the
// superuser: Patroni creates that role only when it bootstraps a cluster, so a cluster
// bootstrapped when pg_rewind still ran as the superuser gets it from its next leader.
// fence.py is the one process in the pod that still holds the passwords' env: Patroni
// removes its PATRONI_* variables from its own environment, and so from its callbacks'.
// The pooler's auth role and lookup function (issue 31) have the same history: made by
// post_bootstrap, so a database bootstrapped before database.pooler was turned on has none.
// With the pooler on, the ConfigMap holds their idempotent SQL and fence.py runs it in the
// app's database the same way, each time this member leads (the pooler's pod template
// change rolls the shard, so the next leader runs it).
// The engine tests run this very script with the real Patroni and Postgres.
import { ENV } from './patroni-config.ts';

/** The script's file name in the shard's Patroni ConfigMap. */
export const FENCE_FILE = 'fence.py';
/** Where fence.py keeps its pipe and Patroni's merged configuration (an emptyDir). */
export const FENCE_RUN_DIR = '/tmp/fence';

export interface FenceArgs {
  /** patroni.yml as mounted. */
  readonly config: string;
  /** PGDATA: postmaster.pid names the process to stop. */
  readonly pgdata: string;
  /** Patroni's watchdog safety_margin (s): the fence fires at ttl - margin. */
  readonly margin: number;
  readonly runDir?: string;
  readonly patroni?: string;
  /** The TLS certificate to watch, and how often (s). */
  readonly cert?: string;
  readonly every?: number;
  /** pg_rewind's role, created or updated as `superuser` whenever this member leads. */
  readonly superuser?: string;
  readonly rewindUser?: string;
  /** The pooler's auth SQL (a file of the ConfigMap), run as `superuser` in `appDatabase`. */
  readonly poolerSql?: string;
  readonly appDatabase?: string;
}

export function fenceArgs(a: FenceArgs): string[] {
  return [
    '--config',
    a.config,
    '--pgdata',
    a.pgdata,
    '--margin',
    String(a.margin),
    '--run',
    a.runDir ?? FENCE_RUN_DIR,
    ...(a.patroni ? ['--patroni', a.patroni] : []),
    ...(a.cert ? ['--cert', a.cert, '--every', String(a.every ?? 30)] : []),
    ...(a.superuser && a.rewindUser
      ? ['--superuser', a.superuser, '--rewind-user', a.rewindUser]
      : []),
    ...(a.superuser && a.poolerSql && a.appDatabase
      ? [
          ...(a.rewindUser ? [] : ['--superuser', a.superuser]),
          '--pooler-sql',
          a.poolerSql,
          '--pooler-db',
          a.appDatabase,
        ]
      : []),
  ];
}

/** fence.py (Python 3, standard library only: the image has it for Patroni). */
export function fenceScript(): string {
  return String.raw`#!/usr/bin/env python3
"""Start Patroni with a software watchdog; stop the postmaster when Patroni stops renewing."""
import argparse
import hashlib
import os
import select
import signal
import subprocess
import sys
import time

p = argparse.ArgumentParser()
p.add_argument('--config', required=True)
p.add_argument('--pgdata', required=True)
p.add_argument('--margin', type=int, required=True)
p.add_argument('--run', required=True)
p.add_argument('--patroni', default='patroni')
p.add_argument('--cert')
p.add_argument('--every', type=float, default=30)
p.add_argument('--superuser')
p.add_argument('--rewind-user')
p.add_argument('--pooler-sql')
p.add_argument('--pooler-db')
args = p.parse_args()


def log(msg):
    sys.stderr.write('fence: %s\n' % msg)
    sys.stderr.flush()


os.makedirs(args.run, exist_ok=True)
pipe = os.path.join(args.run, 'watchdog')
conf = os.path.join(args.run, 'patroni')
os.makedirs(conf, exist_ok=True)
for path in (pipe, os.path.join(conf, '00-patroni.yml')):
    if os.path.lexists(path):
        os.unlink(path)
os.mkfifo(pipe, 0o600)
# The read end, and a write end of our own: Patroni closing the pipe is no end of file.
rfd = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)
wfd = os.open(pipe, os.O_WRONLY)
os.symlink(os.path.abspath(args.config), os.path.join(conf, '00-patroni.yml'))
with open(os.path.join(conf, '99-fence.yml'), 'w') as f:
    f.write('watchdog:\n  mode: required\n  driver: testing\n  device: %s\n  safety_margin: %d\n'
            % (pipe, args.margin))


def digest(path):
    try:
        with open(path, 'rb') as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def postmaster():
    """The postmaster of PGDATA, by its pid file and its command line."""
    try:
        with open(os.path.join(args.pgdata, 'postmaster.pid')) as f:
            pid = int(f.readline().strip())
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            cmd = f.read().split(b'\0')
    except (OSError, ValueError):
        return None
    return pid if cmd and os.path.basename(cmd[0]).startswith(b'postgres') else None


def fence(why):
    pid = postmaster()
    if pid is None:
        log('%s; no postmaster running' % why)
        return
    try:
        group = os.getpgid(pid)
        if group != os.getpgid(0):
            os.killpg(group, signal.SIGKILL)  # the postmaster and every backend at once
        else:
            os.kill(pid, signal.SIGKILL)
        log('%s; killed the postmaster (pid %d) and its backends' % (why, pid))
    except OSError as e:
        log('%s; could not kill the postmaster %d: %s' % (why, pid, e))


# pg_rewind's role, as Patroni's bootstrap makes it. The password through \\getenv (never
# argv), no statement logged, terse errors (no query text in psql's messages), and a local
# commit: a synchronous standby that is gone must not hold this up.
REWIND_SQL = b'''\\set VERBOSITY terse
SET synchronous_commit = 'local';
SET log_statement = 'none';
SET log_min_duration_statement = -1;
SET log_min_error_statement = 'panic';
\\getenv password ${ENV.rewindPassword}
SELECT NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = :'user') AS missing \\gset
\\if :missing
CREATE ROLE :"user" LOGIN PASSWORD :'password';
\\else
ALTER ROLE :"user" LOGIN PASSWORD :'password';
\\endif
GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO :"user";
GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO :"user";
GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO :"user";
GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO :"user";
'''


def socket_of_postmaster():
    """The running postmaster's port and socket directory (lines 4 and 5 of postmaster.pid)."""
    try:
        with open(os.path.join(args.pgdata, 'postmaster.pid')) as f:
            lines = f.read().split('\n')
        return (lines[3].strip(), lines[4].strip()) if postmaster() and lines[4].strip() else None
    except (OSError, IndexError):
        return None


def rewind_script():
    return REWIND_SQL if os.environ.get('${ENV.rewindPassword}') else None


def pooler_script():
    """The pooler's auth SQL as the ConfigMap holds it now; terse errors, a local commit."""
    try:
        with open(args.pooler_sql, 'rb') as f:
            return (b"\\set VERBOSITY terse\nSET synchronous_commit = 'local';\n"
                    b"SET client_min_messages = 'warning';\n" + f.read())
    except OSError as e:
        log('cannot read %s: %s' % (args.pooler_sql, e))
        return None


def task(name, database, script, variables):
    """SQL run as the superuser each time this member leads, until it worked once."""
    return {'name': name, 'db': database, 'script': script, 'vars': variables,
            'pending': False, 'proc': None, 'at': 0.0, 'delay': 2.0}


tasks = []
if args.superuser and args.rewind_user:
    tasks.append(task('rewind role %s' % args.rewind_user, 'postgres', rewind_script,
                      ['-v', 'user=' + args.rewind_user]))
if args.superuser and args.pooler_sql and args.pooler_db:
    tasks.append(task('pooler auth role', args.pooler_db, pooler_script, []))


def ensure(t, now):
    """Start the task's psql if it is due, without blocking the loop."""
    if not t['pending'] or t['proc'] is not None or now < t['at']:
        return
    script = t['script']()
    if script is None:
        t['pending'] = False
        return
    where = socket_of_postmaster()
    if where is None:
        t['at'] = now + 1
        return
    env = dict(os.environ, PGHOST=where[1], PGPORT=where[0], PGUSER=args.superuser,
               PGDATABASE=t['db'], PGCONNECT_TIMEOUT='5', PGAPPNAME='fence',
               PGPASSWORD=os.environ.get('${ENV.superuserPassword}', ''))
    try:
        proc = subprocess.Popen(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1'] + t['vars'],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
    except OSError as e:
        log('could not run psql for the %s: %s' % (t['name'], e))
        t['pending'] = False
        return
    t['proc'] = proc
    try:
        proc.stdin.write(script)
        proc.stdin.close()
    except BrokenPipeError:
        pass  # psql ended early (no server yet): its exit status says so, and we try again


def task_done(t, code, now):
    t['proc'] = None
    if code == 0:
        t['pending'] = False
        t['delay'] = 2.0
        log('%s ready' % t['name'])
    elif t['pending']:
        log('%s: psql exited %d; trying again in %d s' % (t['name'], code, t['delay']))
        t['at'] = now + t['delay']
        t['delay'] = min(60.0, t['delay'] * 2)


def leads():
    for t in tasks:
        t['pending'] = True
        t['at'] = 0.0


patroni = subprocess.Popen([args.patroni, conf])
stopping = []


def forward(signum, _frame):
    stopping.append(signum)
    try:
        patroni.send_signal(signum)
    except OSError:
        pass


for s in (signal.SIGTERM, signal.SIGINT):
    signal.signal(s, forward)

timeout = None  # seconds, as Patroni asked
deadline = None  # monotonic time the fence fires, while armed
command = None  # bytes of a "C..." line being read
cert = digest(args.cert) if args.cert else None
next_cert = time.monotonic() + args.every

while True:
    now = time.monotonic()
    wait = 0.1 if deadline is None else max(0.0, min(0.1, deadline - now))
    try:
        ready, _, _ = select.select([rfd], [], [], wait)
    except InterruptedError:
        ready = []
    if ready:
        try:
            data = os.read(rfd, 4096)
        except BlockingIOError:
            data = b''
        now = time.monotonic()
        for b in data:
            c = bytes([b])
            if command is not None:
                if c == b'\n':
                    line = command.decode(errors='replace')
                    command = None
                    if line.startswith('timeout='):
                        timeout = int(line.split('=', 1)[1])
                        deadline = now + timeout
                        log('armed: Postgres is stopped %d s after the last renewal' % timeout)
                        leads()
                else:
                    command += c
            elif c == b'C':
                command = b''
            elif c == b'1' and timeout is not None:
                if deadline is None:
                    log('armed again')
                    leads()
                deadline = now + timeout
            elif c == b'V':
                if deadline is not None:
                    log('disarmed')
                deadline = None
                for t in tasks:
                    t['pending'] = False
    if deadline is not None and now >= deadline:
        fence('Patroni did not renew its leader lock for %d s' % timeout)
        deadline = None
    # Reap: Patroni, and orphans (a postmaster Patroni left) when this is PID 1.
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            pid, status = 0, 0
        if pid == 0:
            break
        mine = [t for t in tasks if t['proc'] is not None and pid == t['proc'].pid]
        if mine:
            mine[0]['proc'].returncode = os.waitstatus_to_exitcode(status)
            task_done(mine[0], mine[0]['proc'].returncode, now)
            continue
        if pid == patroni.pid:
            code = os.waitstatus_to_exitcode(status)
            patroni.returncode = code
            if deadline is not None:
                fence('Patroni exited (%d) while it led' % code)
            sys.exit(code if code >= 0 else 128 - code)
    for t in tasks:
        ensure(t, now)
    if args.cert and now >= next_cert:
        next_cert = now + args.every
        current = digest(args.cert)
        if current is not None and current != cert and not stopping:
            cert = current
            log('certificate changed: Patroni reloads')
            patroni.send_signal(signal.SIGHUP)
`;
}
