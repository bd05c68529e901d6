# SPDX-License-Identifier: ISC
"""Integration-test harness for sockserverd (Python 3 stdlib only).

A Daemon writes a per-test configuration into its own temporary directory,
starts the real binary in the foreground with its own NOTIFY_SOCKET, waits
for READY=1, reads the chosen addresses back from the log, and always stops
(and if need be kills) the process by PID, then checks the log for
sanitizer reports and removes the directory.

Rules kept everywhere here: every socket operation has a timeout, every loop
is bounded in iterations and in time, and nothing waits with a bare sleep:
waiting is polling for a condition until a deadline.

Placeholders in a configuration text:
    @DIR@   the daemon's temporary directory (unix socket paths go there)
    @UNIQ@  a string unique to this daemon (abstract socket names)
"""

import atexit
import os
import re
import resource
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# SSD_VALGRIND=1 (make check-valgrind) runs every Daemon and run_binary()
# under valgrind's memcheck, some 20 to 50 times slower: the waits below
# are multiplied by TIME_SCALE ($SSD_TIME_SCALE; 10 under valgrind, else 1).
VALGRIND = bool(os.environ.get("SSD_VALGRIND"))
TIME_SCALE = float(os.environ.get("SSD_TIME_SCALE") or
                   (10 if VALGRIND else 1))
VALGRIND_STATUS = 99    # what the daemon exits with after a memcheck error

READY_TIMEOUT = 15.0 * TIME_SCALE   # sanitizer builds start slowly
STOP_TIMEOUT = 15.0 * TIME_SCALE
CLEANUP_STOP_TIMEOUT = 5.0 * TIME_SCALE
IO_TIMEOUT = 5.0 * TIME_SCALE       # default for one client operation
QUIET = 0.3             # how long a negative check ("no reply") waits
MAX_ITER = 1000000      # upper bound on the iterations of any loop

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:",
                     "ERROR: LeakSanitizer", "WARNING: ThreadSanitizer",
                     "ERROR: ThreadSanitizer")

LISTENING_RE = re.compile(
    r"listener=([A-Za-z0-9_.-]+): listening on (.+?) \((stream|dgram), ")

# Environment variables of the service manager that a test must control.
SD_VARS = ("NOTIFY_SOCKET", "JOURNAL_STREAM", "LISTEN_FDS", "LISTEN_PID",
           "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID")


def binary():
    """The daemon under test: $SSD_BIN, else ./sockserverd of the tree."""
    b = os.environ.get("SSD_BIN")
    if not b:
        b = os.path.join(ROOT, "sockserverd")
    return os.path.abspath(b)


def _can_bind(family, addr):
    try:
        s = socket.socket(family, socket.SOCK_STREAM)
    except OSError:
        return False
    try:
        s.bind(addr)
        return True
    except OSError:
        return False
    finally:
        s.close()


HAVE_IPV6 = socket.has_ipv6 and _can_bind(socket.AF_INET6, ("::1", 0))
HAVE_127_0_0_2 = _can_bind(socket.AF_INET, ("127.0.0.2", 0))

skip_unless_ipv6 = unittest.skipUnless(HAVE_IPV6, "cannot bind ::1")


def skip_under_valgrind(reason):
    """A test that cannot work under valgrind (it measures CPU time, or
    depends on the daemon's speed): skipped there, with the reason."""
    return unittest.skipIf(VALGRIND, "under valgrind: " + reason)


# ---------------------------------------------------------------------------
# valgrind


def valgrind_command(cmd, log_dir):
    """cmd under memcheck when SSD_VALGRIND is set (else cmd itself): the
    process exits VALGRIND_STATUS after an error or a definite leak, and
    each process (the daemon, and each child it forks until that one
    execs) writes what memcheck found to log_dir/valgrind-PID.log, empty
    when there was nothing to say."""
    if not VALGRIND:
        return list(cmd)
    supp = os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "valgrind.supp")
    return [shutil.which("valgrind") or "valgrind", "--error-exitcode=%d" % VALGRIND_STATUS,
            "--suppressions=%s" % supp,
            "--leak-check=full", "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite", "--track-fds=no", "-q",
            "--vgdb=no",    # no FIFOs in $TMPDIR, which tests check
            "--log-file=%s" % os.path.join(log_dir, "valgrind-%p.log")
            ] + list(cmd)


def _without_leaks(text):
    """text less its leak records: a child forked by a process with
    threads inherits their buffers in flight, which no thread of the child
    can free; memcheck calls them lost there.  Its errors still count."""
    records = re.split(r"(?m)^==\d+== ?\n", text)
    return "\n".join(r for r in records
                     if "definitely lost in loss record" not in r)


def valgrind_reports(log_dir, main_pid=None):
    """What memcheck reported in the logs of log_dir ("" if nothing): the
    logs holding an error or a definite leak, whole; each comes with a
    stack ("==PID==    at 0x...").  Valgrind's own remarks (an unhandled
    system call, no writable $TMPDIR for its files) fail no test.  With
    main_pid, the logs of other processes (children it forked) count
    their errors, not their leaks."""
    out = []
    try:
        names = sorted(n for n in os.listdir(log_dir)
                       if n.startswith("valgrind-") and n.endswith(".log"))
    except OSError:
        return ""
    for n in names:
        try:
            with open(os.path.join(log_dir, n), "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        judged = text
        if main_pid is not None and n != "valgrind-%d.log" % main_pid:
            judged = _without_leaks(text)
        if re.search(r"^==\d+==\s+(at|by) 0x", judged, re.M):
            out.append("--- %s\n%s" % (n, text.rstrip()))
    return "\n".join(out)


class Deadline:
    """A point in time; remaining() is what is left of it (never < 0)."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self):
        return max(0.0, self.end - time.monotonic())

    def expired(self):
        return time.monotonic() >= self.end


def wait_for(pred, timeout=IO_TIMEOUT, interval=0.01, what="condition"):
    """Polls pred() until it returns a true value (returned) or fails."""
    dl = Deadline(timeout)
    for _ in range(MAX_ITER):
        v = pred()
        if v:
            return v
        if dl.expired():
            break
        time.sleep(min(interval, dl.remaining()))
    raise AssertionError("timed out after %gs waiting for %s"
                         % (timeout, what))


# ---------------------------------------------------------------------------
# Client helpers.


def _settimeout(sock, dl):
    r = dl.remaining()
    if r <= 0:
        raise socket.timeout("deadline passed")
    sock.settimeout(r)


def send_all(sock, data, timeout=IO_TIMEOUT):
    """Sends all of data before the deadline (raises socket.timeout)."""
    dl = Deadline(timeout)
    view = memoryview(data)
    for _ in range(MAX_ITER):
        if not view:
            return
        _settimeout(sock, dl)
        n = sock.send(view)
        view = view[n:]
    raise AssertionError("send_all: too many iterations")


def recv_until_eof(sock, timeout=IO_TIMEOUT, limit=64 << 20):
    """Everything until the peer closes; raises if not closed in time."""
    dl = Deadline(timeout)
    chunks, total = [], 0
    for _ in range(MAX_ITER):
        _settimeout(sock, dl)
        b = sock.recv(65536)
        if not b:
            return b"".join(chunks)
        chunks.append(b)
        total += len(b)
        if total > limit:
            raise AssertionError("recv_until_eof: more than %d bytes"
                                 % limit)
    raise AssertionError("recv_until_eof: too many iterations")


def recv_exactly(sock, n, timeout=IO_TIMEOUT):
    """Exactly n bytes (raises on EOF or timeout before that)."""
    dl = Deadline(timeout)
    chunks, got = [], 0
    for _ in range(MAX_ITER):
        if got >= n:
            return b"".join(chunks)
        _settimeout(sock, dl)
        b = sock.recv(min(65536, n - got))
        if not b:
            raise AssertionError("EOF after %d of %d bytes" % (got, n))
        chunks.append(b)
        got += len(b)
    raise AssertionError("recv_exactly: too many iterations")



def exchange(sock, payload):
    """Sends payload and reads the same number of bytes back."""
    send_all(sock, payload)
    return recv_exactly(sock, len(payload))


def finish(sock):
    """EOF to the server, then the server's EOF: what came before it."""
    sock.shutdown(socket.SHUT_WR)
    rest = recv_until_eof(sock)
    sock.close()
    return rest

def recv_within(sock, timeout=IO_TIMEOUT, size=65536):
    """One recv() (a datagram, or what a stream has), with a timeout."""
    sock.settimeout(timeout)
    return sock.recv(size)


def nothing_arrives(sock, wait=QUIET):
    """True if nothing (no data, no EOF, no error) arrives within wait."""
    r, _, _ = select.select([sock], [], [], wait)
    return not r


def closed_by_peer(sock, timeout=IO_TIMEOUT):
    """True if the peer closes without sending data (EOF or a reset)."""
    try:
        return recv_within(sock, timeout, 1) == b""
    except ConnectionResetError:
        return True


def reset_close(sock):
    """Closes with SO_LINGER 0: the peer sees a reset, not an EOF."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))
    sock.close()


class Exchanger:
    """Sends a payload from a thread while the caller reads the reply, so
    that neither side's buffers fill up (for payloads larger than them)."""

    def __init__(self, sock, data, timeout=IO_TIMEOUT):
        self.sock, self.data, self.timeout = sock, data, timeout
        self.error = None
        self.thread = threading.Thread(target=self._send, daemon=True)

    def _send(self):
        try:
            send_all(self.sock, self.data, self.timeout)
            self.sock.shutdown(socket.SHUT_WR)
        except Exception as e:      # reported by run()
            self.error = e

    def run(self, expect_len):
        # The socket is shared: give it one blocking timeout and never
        # change it while the sender runs (settimeout is per socket).
        self.sock.settimeout(self.timeout)
        self.thread.start()
        dl = Deadline(self.timeout)
        chunks, got = [], 0
        try:
            for _ in range(MAX_ITER):
                if got >= expect_len or dl.expired():
                    break
                b = self.sock.recv(65536)
                if not b:
                    break
                chunks.append(b)
                got += len(b)
        finally:
            self.thread.join(self.timeout)
        if self.thread.is_alive():
            raise AssertionError("sender thread did not finish")
        if self.error is not None:
            raise AssertionError("sending failed: %r" % (self.error,))
        return b"".join(chunks)


# ---------------------------------------------------------------------------
# Listener addresses, as the daemon logs them.


class Listener:
    """A bound listener: family, type and the Python socket address."""

    def __init__(self, name, text, kind):
        self.name = name
        self.text = text
        self.type = socket.SOCK_STREAM if kind == "stream" \
            else socket.SOCK_DGRAM
        if text.startswith("["):
            host, _, port = text[1:].rpartition("]:")
            self.family, self.addr = socket.AF_INET6, (host, int(port))
        elif text.startswith("/"):
            self.family, self.addr = socket.AF_UNIX, text
        elif text.startswith("@"):
            self.family, self.addr = socket.AF_UNIX, "\0" + text[1:]
        else:
            host, _, port = text.rpartition(":")
            self.family, self.addr = socket.AF_INET, (host, int(port))

    @property
    def port(self):
        return self.addr[1] if self.family != socket.AF_UNIX else None

    def __repr__(self):
        return "<Listener %s %s>" % (self.name, self.text)


def parse_listeners(log):
    out = {}
    for m in LISTENING_RE.finditer(log):
        out[m.group(1)] = Listener(m.group(1), m.group(2), m.group(3))
    return out


# ---------------------------------------------------------------------------
# The daemon.


class DaemonExited(AssertionError):
    pass


_live = set()           # started daemons not yet closed
_live_lock = threading.Lock()
_kill_hooks = set()     # callables ending daemons that are not our children


def register_kill(fn):
    """fn() ends a daemon that is not a child of ours (-D) by its PID:
    run by kill_all() unless unregister_kill(fn) came first."""
    with _live_lock:
        _kill_hooks.add(fn)


def unregister_kill(fn):
    with _live_lock:
        _kill_hooks.discard(fn)


def kill_all():
    """SIGKILLs every daemon still running (by PID): at exit, and from the
    runner's watchdog."""
    with _live_lock:
        procs = list(_live)
        hooks = list(_kill_hooks)
    for p in procs:
        _kill_proc(p)
    for fn in hooks:
        try:
            fn()
        except Exception:
            pass


def _group_has_members(pgid):
    """True if a live process is in process group pgid (Linux /proc)."""
    try:
        pids = [d for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return False
    for pid in pids:
        try:
            with open("/proc/%s/stat" % pid) as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def _kill_proc(p):
    """SIGKILL to a daemon not yet reaped, by its process group: each
    daemon leads a session of its own, so the group holds only it and
    what it started (fork-model children).  Only while the daemon is not
    reaped (returncode None, not even polled) is its id surely still
    its own; after that, nothing is sent."""
    if p.returncode is not None:
        # Reaped: the group id is still this daemon's only while members
        # of it (orphaned children) live and hold it.
        if _group_has_members(p.pid):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        return
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        pass


atexit.register(kill_all)


def _rlimit_setter(rlimits):
    """A preexec_fn setting the resource limits (None if there are none):
    only setrlimit calls, safe between fork and exec."""
    if not rlimits:
        return None
    items = sorted(rlimits.items())

    def setter():
        for res, lim in items:
            resource.setrlimit(res, lim)
    return setter


# Socket activation the way systemd does it: the service's own process
# finds its sockets at fds 3, 4, ... and LISTEN_PID set to its own pid,
# which only the process itself can know.  subprocess cannot arrange that
# (a preexec_fn's environment changes do not reach execve when env= is
# given, and dup2 onto 3.. in the child would clobber whatever subprocess
# keeps there): this launcher, exec'd in the child, moves the passed
# sockets above the targets, then onto 3.., sets the variables named in
# argv[2] to its pid, and execs the daemon, which keeps that pid.
#   argv: -c LAUNCHER SRC_FDS(a,b,..) PID_VARS(X,Y,..) COMMAND...
_LAUNCHER = r"""
import fcntl, os, sys
src = [int(x) for x in sys.argv[1].split(",") if x]
pid_vars = [x for x in sys.argv[2].split(",") if x]
high = [fcntl.fcntl(f, fcntl.F_DUPFD_CLOEXEC, 64 + len(src)) for f in src]
for f in src:
    os.close(f)
for i, h in enumerate(high):
    os.dup2(h, 3 + i, inheritable=True)
    os.close(h)
env = dict(os.environ)
for k in pid_vars:
    env[k] = str(os.getpid())
os.execve(sys.argv[3], sys.argv[3:], env)
"""


def launcher_command(cmd, fds=(), pid_vars=()):
    """cmd run through the launcher: fds (in this process; pass them as
    pass_fds) become 3.., and each of pid_vars is set to the pid of the
    process that runs cmd."""
    return [sys.executable, "-I", "-S", "-c", _LAUNCHER,
            ",".join(str(f) for f in fds), ",".join(pid_vars)] + list(cmd)


def sanitizer_report(text):
    for marker in SANITIZER_MARKERS:
        if marker in text:
            return marker
    return None


def log_tail(text, lines=60):
    t = text.splitlines()
    if len(t) > lines:
        t = ["... (%d earlier lines)" % (len(t) - lines)] + t[-lines:]
    return "\n".join(t)


class Daemon:
    """One sockserverd process on a configuration of its own.

    with Daemon(conf) as d:          # started, READY=1 received
        s = d.connect("echo")
        ...
        rc = d.stop()                 # SIGTERM, wait: the exit status
    """

    def __init__(self, conf, args=(), env=None, journal=False,
                 log_level="debug", ready=True, conf_name="sockserverd.conf",
                 rlimits=None, listen_fds=(), pid_env=()):
        self.dir = tempfile.mkdtemp(prefix="ssd-")
        self.uniq = "ssdtest-%d-%s" % (os.getpid(),
                                       os.path.basename(self.dir))
        self.conf_path = os.path.join(self.dir, conf_name)
        self.log_path = os.path.join(self.dir, "stderr.log")
        self.out_path = os.path.join(self.dir, "stdout.log")
        self.notify_path = os.path.join(self.dir, "notify")
        # memcheck's logs; writable by a daemon (or child) that dropped
        # its privileges.
        self.vg_dir = os.path.join(self.dir, "valgrind")
        self.args = list(args)
        self.extra_env = dict(env or {})
        self.journal = journal
        self.log_level = log_level
        self.want_ready = ready
        # {resource.RLIMIT_*: (soft, hard)}, set in the child before exec
        self.rlimits = dict(rlimits or {})
        # Socket activation: descriptors (of this process) the daemon gets
        # at 3.., and variables set to its own pid (LISTEN_PID...).
        self.listen_fds = [f if isinstance(f, int) else f.fileno()
                           for f in listen_fds]
        self.pid_env = tuple(pid_env)
        self.proc = None
        self.returncode = None
        self.messages = []          # every notify datagram, as text
        self.listeners = {}
        self._clients = []
        self._nclient = 0
        self._closed = False
        self.notify = None
        try:
            with open(self.conf_path, "w") as f:
                f.write(self.expand(conf))
            self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.notify.bind(self.notify_path)
            self.notify.setblocking(False)
        except BaseException:
            self.close()
            raise

    def expand(self, text):
        return text.replace("@DIR@", self.dir).replace("@UNIQ@", self.uniq)

    def path(self, name):
        return os.path.join(self.dir, name)

    # -- life cycle --------------------------------------------------------

    def environment(self):
        env = dict(os.environ)
        for k in SD_VARS:
            env.pop(k, None)
        env["NOTIFY_SOCKET"] = self.notify_path
        if self.journal:
            env["JOURNAL_STREAM"] = "8:%d" % os.getpid()
        for k, v in self.extra_env.items():    # None removes k
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def command(self):
        cmd = [binary(), "-c", self.conf_path]
        if self.log_level is not None:
            cmd += ["-l", self.log_level]
        if VALGRIND and not os.path.isdir(self.vg_dir):
            os.mkdir(self.vg_dir)
            os.chmod(self.vg_dir, 0o1777)
        return valgrind_command(cmd + self.args, self.vg_dir)

    def start(self, ready=None):
        """Starts the process; waits for READY=1 unless ready is false
        (default: as given to the constructor)."""
        if ready is not None:
            self.want_ready = ready
        cmd = self.command()
        if self.listen_fds or self.pid_env:
            cmd = launcher_command(cmd, self.listen_fds, self.pid_env)
        with open(self.log_path, "wb") as err, \
                open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out,
                stderr=err, env=self.environment(), cwd=self.dir,
                close_fds=True, start_new_session=True,
                pass_fds=self.listen_fds,
                preexec_fn=_rlimit_setter(self.rlimits))
        with _live_lock:
            _live.add(self.proc)
        if self.want_ready:
            self.wait_ready()
        return self

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.close(raise_on_sanitizer=exc[0] is None)
        return False

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def read_notify(self):
        """Collects every datagram waiting on the notify socket."""
        for _ in range(10000):
            try:
                b = self.notify.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            self.messages.append(b.decode("utf-8", "replace"))

    def notify_lines(self):
        self.read_notify()
        return [ln for m in self.messages for ln in m.split("\n") if ln]

    def has_notify(self, line_or_prefix):
        return any(ln == line_or_prefix or
                   (line_or_prefix.endswith("=") and
                    ln.startswith(line_or_prefix))
                   for ln in self.notify_lines())

    def wait_notify(self, line_or_prefix, timeout=READY_TIMEOUT):
        """Waits for a notify line (or "KEY=" prefix) to arrive."""
        dl = Deadline(timeout)
        for _ in range(MAX_ITER):
            if self.has_notify(line_or_prefix):
                return
            if self.proc is not None and self.proc.poll() is not None:
                self.read_notify()
                if self.has_notify(line_or_prefix):
                    return
                break
            if dl.expired():
                break
            select.select([self.notify], [], [], min(0.05, dl.remaining()))
        raise AssertionError("no %r on NOTIFY_SOCKET (within %gs, exit "
                             "status %s); got %r\nlog:\n%s"
                             % (line_or_prefix, timeout,
                                self.proc and self.proc.poll(),
                                self.messages, log_tail(self.log())))

    def wait_ready(self, timeout=READY_TIMEOUT):
        """Waits for READY=1; fails with the log if the process exits."""
        dl = Deadline(timeout)
        for _ in range(MAX_ITER):
            if self.has_notify("READY=1"):
                self.listeners = parse_listeners(self.log())
                return
            if self.proc.poll() is not None:
                self.read_notify()
                if self.has_notify("READY=1"):
                    continue
                raise DaemonExited(
                    "sockserverd exited with status %s before READY=1; "
                    "log:\n%s" % (self.proc.returncode,
                                  log_tail(self.log())))
            if dl.expired():
                break
            select.select([self.notify], [], [], min(0.05, dl.remaining()))
        raise AssertionError("no READY=1 within %gs; log:\n%s"
                             % (timeout, log_tail(self.log())))

    def rewrite(self, conf):
        """Replaces the configuration file (placeholders expanded)."""
        tmp = self.conf_path + ".new"
        with open(tmp, "w") as f:
            f.write(self.expand(conf))
        os.replace(tmp, self.conf_path)

    def reload(self, conf=None, timeout=READY_TIMEOUT):
        """Rewrites the configuration if conf is given, sends SIGHUP and
        waits for the READY=1 that ends the reload (whether it took or
        not); re-reads the listeners' addresses from the log.  Returns the
        notify lines that arrived meanwhile (RELOADING=1 ... READY=1)."""
        if conf is not None:
            self.rewrite(conf)
        mark = len(self.notify_lines())
        self.signal(signal.SIGHUP)
        return self.wait_reloaded(mark, timeout)

    def wait_reloaded(self, mark, timeout=READY_TIMEOUT):
        """Waits for a READY=1 among the notify lines after the first
        mark ones (mark = len(notify_lines()) before the SIGHUP): the
        lines after mark; re-reads the listeners from the log."""
        dl = Deadline(timeout)
        for _ in range(MAX_ITER):
            new = self.notify_lines()[mark:]
            if "READY=1" in new:
                # The reload's own STATUS= travels with its READY=1.
                self.listeners = parse_listeners(self.log())
                return new
            if self.proc.poll() is not None or dl.expired():
                break
            select.select([self.notify], [], [], min(0.05, dl.remaining()))
        raise AssertionError("no READY=1 after SIGHUP within %gs (exit "
                             "status %s); got %r\nlog:\n%s"
                             % (timeout, self.proc.poll(),
                                self.notify_lines()[mark:],
                                log_tail(self.log())))

    def signal(self, sig):
        if self.running():
            os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """The exit status, once the process has exited (or fails)."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("sockserverd (pid %d) still running after "
                                 "%gs; log:\n%s" % (self.proc.pid, timeout,
                                                     log_tail(self.log())))
        return self.returncode

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM by PID, then waits: the exit status."""
        self.signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def kill(self):
        """SIGKILL, by PID (and process group), whatever its state."""
        if self.proc is None:
            return
        _kill_proc(self.proc)
        if self.proc.poll() is not None:
            with _live_lock:
                _live.discard(self.proc)

    def close(self, raise_on_sanitizer=True):
        """Kills the process if still there, closes the sockets, checks
        the log for sanitizer reports and removes the directory."""
        if self._closed:
            return
        self._closed = True
        report = None
        try:
            # Clients first, so that nothing is left to drain; then a
            # graceful stop (the leak checker runs at a normal exit only),
            # and SIGKILL if that does not end it.
            for s in self._clients:
                try:
                    s.close()
                except OSError:
                    pass
            if self.running():
                try:
                    os.kill(self.proc.pid, signal.SIGTERM)
                    self.proc.wait(CLEANUP_STOP_TIMEOUT)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
            self.kill()
            if self.notify is not None:
                self.notify.close()
            text = self.log()
            self.final_log = text
            report = sanitizer_report(text)
            if VALGRIND and report is None:
                vg = valgrind_reports(
                    self.vg_dir, self.proc.pid if self.proc else None)
                if not vg and self.proc is not None and \
                        self.proc.returncode == VALGRIND_STATUS:
                    vg = "exit status %d, and no valgrind log" \
                        % VALGRIND_STATUS
                if vg:
                    report = "valgrind"
                    text = text + "\n" + vg
        finally:
            if os.environ.get("SSD_KEEP"):
                print("ssdtest: kept %s" % self.dir)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
        if report is not None and raise_on_sanitizer:
            raise AssertionError("sanitizer report (%s) in the log:\n%s"
                                 % (report, log_tail(text, 200)))

    # -- logs --------------------------------------------------------------

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return getattr(self, "final_log", "")

    def stdout(self):
        try:
            with open(self.out_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=IO_TIMEOUT):
        """Polls the log until the regular expression matches: the match."""
        rx = re.compile(pattern)
        try:
            return wait_for(lambda: rx.search(self.log()), timeout,
                            interval=0.02, what="log line /%s/" % pattern)
        except AssertionError as e:
            raise AssertionError("%s; log:\n%s"
                                 % (e, log_tail(self.log()))) from None

    def log_has(self, pattern):
        return re.search(pattern, self.log()) is not None

    # -- clients -----------------------------------------------------------

    def listener(self, name):
        try:
            return self.listeners[name]
        except KeyError:
            raise AssertionError("no \"listening on\" line for listener %s;"
                                 " log:\n%s" % (name, log_tail(self.log())))

    def _track(self, s):
        self._clients.append(s)
        return s

    def client_path(self, tag="client"):
        self._nclient += 1
        return os.path.join(self.dir, "%s-%d" % (tag, self._nclient))

    def connect(self, name, timeout=IO_TIMEOUT, bind=None):
        """A stream client connected to listener name."""
        ln = self.listener(name)
        return connect_to(ln.family, ln.addr, timeout, bind,
                          track=self._track)

    def dgram(self, name, timeout=IO_TIMEOUT, bind=None, unbound=False):
        """A datagram client connected to listener name.  A unix client
        binds a path of its own in the temp dir (the reply goes there)
        unless bind is given or unbound is true."""
        ln = self.listener(name)
        s = self._track(socket.socket(ln.family, socket.SOCK_DGRAM))
        if bind is not None:
            s.bind(bind)
        elif ln.family == socket.AF_UNIX and not unbound:
            s.bind(self.client_path())
        s.settimeout(timeout)
        s.connect(ln.addr)
        return s

    def echo_once(self, name, payload=b"ping\n", timeout=IO_TIMEOUT):
        """One complete echo exchange on a stream or dgram listener."""
        ln = self.listener(name)
        if ln.type == socket.SOCK_DGRAM:
            s = self.dgram(name, timeout)
            try:
                s.send(payload)
                return recv_within(s, timeout)
            finally:
                s.close()
        s = self.connect(name, timeout)
        try:
            send_all(s, payload, timeout)
            s.shutdown(socket.SHUT_WR)
            return recv_until_eof(s, timeout)
        finally:
            s.close()


def connect_to(family, addr, timeout=IO_TIMEOUT, bind=None, track=None):
    s = socket.socket(family, socket.SOCK_STREAM)
    if track is not None:
        track(s)
    try:
        if bind is not None:
            s.bind(bind)
        s.settimeout(timeout)
        s.connect(addr)
    except BaseException:
        s.close()
        raise
    return s


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A port that is free now (only for negative checks: never bind it
    in a configuration, which uses port = 0)."""
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def run_binary(args, timeout=READY_TIMEOUT, env=None, cwd=None):
    """Runs sockserverd to completion (-t, -V, usage errors...)."""
    e = dict(os.environ)
    for k in SD_VARS:
        e.pop(k, None)
    e.update(env or {})
    vg_dir = tempfile.mkdtemp(prefix="ssd-vg-") if VALGRIND else None
    try:
        r = subprocess.run(valgrind_command([binary()] + list(args), vg_dir),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout, env=e,
                           cwd=cwd or ROOT)
        vg = valgrind_reports(vg_dir) if VALGRIND else ""
    finally:
        if vg_dir is not None:
            shutil.rmtree(vg_dir, ignore_errors=True)
    err = r.stderr.decode("utf-8", "replace")
    report = sanitizer_report(err)
    if report is None and (vg or (VALGRIND and
                                  r.returncode == VALGRIND_STATUS)):
        report, err = "valgrind", err + "\n" + (vg or "exit status %d"
                                                 % VALGRIND_STATUS)
    if report is not None:
        raise AssertionError("sanitizer report (%s) from sockserverd %s:\n%s"
                             % (report, " ".join(args), log_tail(err, 200)))
    return r


# ---------------------------------------------------------------------------
# Processes, as Linux /proc shows them.


def proc_stat(pid):
    """The fields of /proc/PID/stat after "(comm)": [state, ppid, pgrp,
    session, ...] (stat(5) field 3 is index 0), or None if it is gone."""
    try:
        with open("/proc/%s/stat" % pid) as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()


def _all_stats():
    try:
        pids = [d for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return
    for pid in pids:
        st = proc_stat(pid)
        if st is not None and len(st) > 3:
            yield int(pid), st


def children_of(ppid):
    """{pid: state} of the processes whose parent is ppid (zombies too)."""
    return {pid: st[0] for pid, st in _all_stats() if st[1] == str(ppid)}


def session_members(sid):
    """{pid: state} of the processes of session sid (each daemon leads a
    session of its own: it and the children it forks)."""
    return {pid: st[0] for pid, st in _all_stats() if st[3] == str(sid)}


def fd_count(pid):
    """How many descriptors pid has open."""
    return len(os.listdir("/proc/%d/fd" % pid))


def socket_count(pid):
    """How many of pid's descriptors are sockets."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            n += os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith(
                "socket:")
        except OSError:
            pass
    return n


def self_signed_cert(directory, timeout=60):
    """An ECDSA P-256 certificate for CN=localhost and its key, made with
    the openssl command in directory: (certificate path, key path)."""
    key = os.path.join(directory, "k.pem")
    pem = os.path.join(directory, "c.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", key, "-out", pem],
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=timeout)
    return pem, key


def cpu_seconds(pid):
    """User + system CPU time pid has used, in seconds."""
    st = proc_stat(pid)
    if st is None:
        raise AssertionError("process %d is gone" % pid)
    # utime and stime are stat(5) fields 14 and 15.
    return (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")


def raise_nofile(want):
    """Raises this process's soft RLIMIT_NOFILE to its hard limit; returns
    the old limits (to restore), or None when the hard limit is below
    want.  Descriptors above 1023 do not work with select.select: use
    socket timeouts (poll) or selectors with many sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        return None
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return soft, hard


# ---------------------------------------------------------------------------
# Plugins built beside the binary.


def plugin_dir():
    """Where the example plugins are (lower.so): $SSD_PLUGIN_DIR, which
    run.py sets, else next to $SSD_TEST_PLUGINS or the binary."""
    d = os.environ.get("SSD_PLUGIN_DIR")
    if d:
        return d
    t = os.environ.get("SSD_TEST_PLUGINS")
    if t:
        return os.path.normpath(os.path.join(t, "..", "..", "plugins"))
    b = os.path.dirname(os.path.realpath(binary()))
    if os.path.isdir(os.path.join(b, "plugins")):
        return os.path.join(b, "plugins")
    return os.path.join(ROOT, "build", "plugins")


def fixture_plugin(name):
    """The absolute path of fixture plugin name.so in $SSD_TEST_PLUGINS,
    or None when that is not set (make integration sets it)."""
    d = os.environ.get("SSD_TEST_PLUGINS")
    if not d:
        return None
    return os.path.join(os.path.abspath(d), name + ".so")


# ---------------------------------------------------------------------------
# Test case base.


class DaemonTestCase(unittest.TestCase):
    """Gives self.daemon(conf, ...): started, stopped and checked for
    sanitizer reports in cleanup whatever happens in the test."""

    def daemon(self, conf, start=True, **kw):
        d = Daemon(conf, **kw)
        self.addCleanup(self._close_daemon, d)
        if start:
            d.start()
        return d

    def _close_daemon(self, d):
        try:
            d.close()
        finally:
            logs = self.__dict__.setdefault("ssd_logs", [])
            logs.append((d.conf_path, getattr(d, "final_log", "")))

    def assertEcho(self, d, name, payload=b"hello\n"):
        self.assertEqual(d.echo_once(name, payload), payload)

    def assertStopsCleanly(self, d, timeout=STOP_TIMEOUT):
        rc = d.stop(timeout)
        self.assertEqual(rc, 0, "exit status %s; log:\n%s"
                         % (rc, log_tail(d.log())))


# The concurrency model of listener_conf() when a test does not name one:
# "sync" (this suite's subject), or $SSD_TEST_CONCURRENCY to run the
# model-independent tests under another model.
DEFAULT_CONCURRENCY = os.environ.get("SSD_TEST_CONCURRENCY") or "sync"


def listener_conf(name, handler="echo", address="127.0.0.1", port=0,
                  type="stream", extra="", concurrency=None):
    """One listener group in libconfig syntax."""
    s = '{ name = "%s"; address = "%s"; ' % (name, address)
    if port is not None and not address.startswith(("/", "@")):
        s += "port = %d; " % port
    s += 'type = "%s"; handler = "%s"; concurrency = "%s"; %s }' % (
        type, handler, concurrency or DEFAULT_CONCURRENCY, extra)
    return s


def conf(*listeners, globals_=""):
    """A whole configuration: global settings, then the listeners."""
    return "%s\nlisteners = (\n  %s\n);\n" % (globals_,
                                              ",\n  ".join(listeners))


# The models a test can run under: the four of SPEC, and event with two
# loop threads (workers = 2), which accepts and serves on other threads.
MODELS = ("sync", "thread", "fork", "event", "event-workers")


def model_conf(name, model, extra="", **kw):
    """listener_conf() under one of MODELS."""
    if model == "event-workers":
        model, extra = "event", "workers = 2; " + extra
    return listener_conf(name, concurrency=model, extra=extra, **kw)
