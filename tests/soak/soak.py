#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""Soak test for sockserverd (Python 3 stdlib only): `make soak`.

Starts the built daemon on a configuration of its own (port 0 listeners,
every model: sync, thread, fork, event, event with workers = 2; stream and
dgram) and, for SOAK_SECONDS, drives at once:

  well-behaved clients  echo (stream and dgram), exec (/bin/cat) and the
                        lower plugin: each request checked, each failure
                        counted;
  abuse                 connection churn, resets (SO_LINGER 0), slow
                        readers and slow writers, datagram floods;
  changes               SIGHUP every 2 s, alternating two configurations
                        (a listener added and removed, a timeout and exec's
                        options changed), and lower.so replaced by rename
                        every 10 s.

Every second it samples the daemon's descriptors (/proc/PID/fd), threads
(/proc/PID/task), children, zombies, RSS and loaded plugin copies into a
CSV.  When the load stops it goes back to the first configuration, polls
until the daemon is idle again (or a deadline passes), stops it, and
prints a verdict: no failed well-behaved request, no failed reload, fds and
threads back to their baseline, no child left, no zombie that outlived two
samples, RSS growth below 5% over the last half of the load, a clean exit
with no sanitizer report.  Exits 1 when any of these fails, 2 on a usage
or start-up error.

Environment: SOAK_SECONDS (default 600), SOAK_CSV (default
build/soak.csv), SSD_BIN (default ./sockserverd), SSD_PLUGIN_DIR (where
lower.so is; default as in tests/integration/ssdtest.py), SSD_KEEP=1 keeps
the daemon's temporary directory.  Readiness and reloads go through
NOTIFY_SOCKET, with ssdtest.py's Daemon.

Every loop is bounded in time, every socket operation has a timeout, and
nothing waits with a bare sleep for a condition: it polls until a
deadline.
"""

import csv
import os
import random
import shutil
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import ssdtest  # noqa: E402
from ssdtest import (Daemon, Deadline, children_of, model_conf,  # noqa: E402
                     recv_exactly, recv_until_eof, reset_close, send_all)

MODELS = ssdtest.MODELS         # sync thread fork event event-workers
RELOAD_EVERY = 2.0              # seconds between two SIGHUPs
PLUGIN_EVERY = 10.0             # seconds between two plugin replacements
SAMPLE_EVERY = 1.0
SETTLE_TIMEOUT = 60.0           # after the load: back to baseline by then
IO = 10.0 * ssdtest.TIME_SCALE  # one well-behaved operation
RSS_LIMIT = 5.0                 # % growth allowed over the last half
SLOW_TIMEOUT = (2, 3)           # the slow listeners' timeout, configs A/B


def now():
    return time.monotonic()


# ---------------------------------------------------------------------------
# Configuration.


def config(variant):
    """Configuration A (variant 0) or B (1).  B adds listener "extra",
    gives the slow listeners a longer timeout and exec other arguments;
    every other listener is unchanged and keeps its socket."""
    ls = []
    for m in MODELS:
        ls.append(model_conf("echo-" + m, m))
        ls.append(model_conf("udp-" + m, m, type="dgram"))
        ls.append(model_conf("flood-" + m, m, type="dgram"))
        ls.append(model_conf("slow-" + m, m, extra="timeout = %d;"
                             % SLOW_TIMEOUT[variant]))
        args = '"cat"' if variant == 0 else '"cat", "-u"'
        ls.append(model_conf(
            "exec-" + m, m, handler="exec",
            extra='options = { program = "/bin/cat"; args = [ %s ]; };'
            % args))
        ls.append(model_conf("lower-" + m, m, handler="lower"))
    if variant == 1:
        ls.append(model_conf("extra", "event"))
    return ssdtest.conf(*ls, globals_='handler_dir = "@DIR@/h";\n'
                        'shutdown_timeout = 5;')


# ---------------------------------------------------------------------------
# Counters.


class Stats:
    """Per-class ok/failed counters and the first failures, thread-safe."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ok = {}
        self.fail = {}
        self.first = {}         # class -> [(t, message)] (up to 5)

    def good(self, what, n=1):
        with self.lock:
            self.ok[what] = self.ok.get(what, 0) + n

    def bad(self, what, msg):
        with self.lock:
            self.fail[what] = self.fail.get(what, 0) + 1
            lst = self.first.setdefault(what, [])
            if len(lst) < 5:
                lst.append((now(), msg))

    def total(self, classes, which):
        with self.lock:
            d = self.ok if which == "ok" else self.fail
            return sum(v for k, v in d.items() if k in classes)


WELL_BEHAVED = ("echo", "dgram", "exec", "lower")
ABUSE = ("churn", "reset", "slow-read", "slow-write", "flood")


# ---------------------------------------------------------------------------
# Clients: each op is one bounded exchange; errors raise.


def connect(d, name, timeout=IO):
    ln = d.listener(name)
    s = socket.socket(ln.family, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect(ln.addr)
    except BaseException:
        s.close()
        raise
    return s


def payload(rng, lo=1, hi=8192):
    n = rng.randint(lo, hi)
    return bytes(rng.getrandbits(8) for _ in range(min(n, 64))) * \
        (n // 64) + bytes(rng.getrandbits(8) for _ in range(n % 64))


def op_echo(d, m, rng):
    s = connect(d, "echo-" + m)
    try:
        for _ in range(rng.randint(1, 3)):
            p = payload(rng)
            send_all(s, p, IO)
            got = recv_exactly(s, len(p), IO)
            if got != p:
                raise AssertionError("echo: %d bytes differ" % len(p))
        s.shutdown(socket.SHUT_WR)
        rest = recv_until_eof(s, IO)
        if rest:
            raise AssertionError("echo: %d bytes after EOF" % len(rest))
    finally:
        s.close()


def op_dgram(d, m, rng):
    ln = d.listener("udp-" + m)
    s = socket.socket(ln.family, socket.SOCK_DGRAM)
    try:
        s.settimeout(IO)
        s.connect(ln.addr)
        p = payload(rng, 1, 1024)
        s.send(p)
        got = s.recv(65536)
        if got != p:
            raise AssertionError("dgram: reply of %d bytes for %d"
                                 % (len(got), len(p)))
    finally:
        s.close()


def op_exec(d, m, rng):
    s = connect(d, "exec-" + m)
    try:
        p = b"".join(b"line %d %d\n" % (i, rng.getrandbits(32))
                     for i in range(rng.randint(1, 50)))
        send_all(s, p, IO)
        s.shutdown(socket.SHUT_WR)
        got = recv_until_eof(s, IO)
        if got != p:
            raise AssertionError("exec: %d bytes back for %d"
                                 % (len(got), len(p)))
    finally:
        s.close()


def op_lower(d, m, rng):
    s = connect(d, "lower-" + m)
    try:
        p = b"HELLO Soak %d\n" % rng.getrandbits(32)
        send_all(s, p, IO)
        got = recv_exactly(s, len(p), IO)
        if got != p.lower():
            raise AssertionError("lower: %r for %r" % (got, p))
        s.shutdown(socket.SHUT_WR)
        rest = recv_until_eof(s, IO)
        if rest:
            raise AssertionError("lower: %d bytes after EOF" % len(rest))
    finally:
        s.close()


STREAM_TARGETS = ("echo-", "lower-", "exec-")


def op_churn(d, m, rng):
    s = connect(d, rng.choice(STREAM_TARGETS) + m, 5.0)
    s.close()


def op_reset(d, m, rng):
    s = connect(d, rng.choice(STREAM_TARGETS) + m, 5.0)
    try:
        if rng.random() < 0.7:
            s.send(payload(rng, 1, 2048))
        if rng.random() < 0.3:
            s.settimeout(0.05)
            try:
                s.recv(100)
            except OSError:
                pass
    finally:
        reset_close(s)


def op_slow_read(d, m, rng, stop):
    """Sends up to 1 MiB while reading 1 KiB every 50 ms, for 1-5 s."""
    s = connect(d, "slow-" + m, 5.0)
    try:
        s.settimeout(0.05)
        dl = Deadline(rng.uniform(1, 5))
        chunk = b"r" * 16384
        sent = 0
        for _ in range(100000):
            if dl.expired() or stop.is_set():
                break
            if sent < (1 << 20):
                try:
                    sent += s.send(chunk)
                except (socket.timeout, BlockingIOError):
                    pass
            try:
                if s.recv(1024) == b"":
                    break       # the server ended it (its timeout)
            except (socket.timeout, BlockingIOError):
                pass
            time.sleep(0.05)
    except OSError:
        pass                    # a cut by the server is what may happen
    finally:
        s.close()


def op_slow_write(d, m, rng, stop):
    """One byte every 0.3 s for 1-4 s (now and then a pause longer than
    the listener's timeout), then reads what comes back."""
    s = connect(d, "slow-" + m, 5.0)
    try:
        dl = Deadline(rng.uniform(1, 4))
        pause = 0.3 if rng.random() < 0.8 else SLOW_TIMEOUT[1] + 0.5
        for _ in range(1000):
            if dl.expired() or stop.is_set():
                break
            s.settimeout(1.0)
            s.send(b"w")
            time.sleep(min(pause, dl.remaining()))
        s.shutdown(socket.SHUT_WR)
        recv_until_eof(s, 5.0)
    except (OSError, AssertionError):
        pass
    finally:
        s.close()


def op_flood(d, m, rng):
    """A burst of 300 datagrams, as fast as they go; replies unread."""
    ln = d.listener("flood-" + m)
    s = socket.socket(ln.family, socket.SOCK_DGRAM)
    n = 0
    try:
        s.setblocking(False)
        s.connect(ln.addr)
        p = payload(rng, 64, 1024)
        for _ in range(300):
            try:
                s.send(p)
                n += 1
            except (BlockingIOError, ConnectionRefusedError):
                pass
    finally:
        s.close()
    return n


# ---------------------------------------------------------------------------
# Workers.


class Soak:
    def __init__(self, seconds, csv_path):
        self.seconds = seconds
        self.csv_path = csv_path
        self.stats = Stats()
        self.stop_load = threading.Event()
        self.stop_all = threading.Event()
        self.threads = []
        self.samples = []       # dicts, as written to the CSV
        self.phase = "start"
        self.variant = 0
        self.reloads = 0
        self.reload_fail = []
        self.reload_times = []  # SIGHUP to READY=1, seconds
        self.swaps = 0
        self.flood_sent = 0
        self.zombie_seen = {}   # pid -> consecutive samples seen as zombie
        self.persistent_zombies = set()
        self.max_zombies = 0
        self.errors = []        # problems of the harness itself
        self.d = None

    # -- the daemon ----------------------------------------------------------

    def start(self):
        src = os.path.join(ssdtest.plugin_dir(), "lower.so")
        if not os.path.isfile(src):
            raise SystemExit("soak: %s not found (make first, or set "
                             "SSD_PLUGIN_DIR)" % src)
        self.plugin_src = src
        d = Daemon(config(0), log_level="info")
        self.d = d
        os.mkdir(d.path("h"))
        os.mkdir(d.path("tmp"))
        d.extra_env["TMPDIR"] = d.path("tmp")
        self.hdir = d.path("h")
        self.install_plugin()
        d.start()
        self.pid = d.pid

    def install_plugin(self):
        """lower.so replaced the safe way: copy, then rename over it."""
        dst = os.path.join(self.hdir, "lower.so")
        tmp = os.path.join(self.hdir, ".lower.so.new")
        shutil.copyfile(self.plugin_src, tmp)
        os.chmod(tmp, 0o755)
        os.rename(tmp, dst)

    # -- /proc ---------------------------------------------------------------

    def fds(self):
        """{fd: target} of the daemon's descriptors."""
        out = {}
        base = "/proc/%d/fd" % self.pid
        for f in os.listdir(base):
            try:
                out[int(f)] = os.readlink(os.path.join(base, f))
            except OSError:
                pass
        return out

    def threads_n(self):
        return len(os.listdir("/proc/%d/task" % self.pid))

    def rss_kb(self):
        with open("/proc/%d/status" % self.pid) as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1])
        return 0

    def plugin_copies(self):
        """Distinct files of handler_dir mapped at offset 0: how many
        versions of lower.so are loaded."""
        inos = set()
        with open("/proc/%d/maps" % self.pid) as f:
            for ln in f:
                fields = ln.split(None, 5)
                if len(fields) == 6 and int(fields[2], 16) == 0 and \
                        fields[5].startswith(self.hdir + "/"):
                    inos.add(fields[4])
        return len(inos)

    def sample(self):
        kids = children_of(self.pid)
        zombies = [p for p, st in kids.items() if st == "Z"]
        for p in list(self.zombie_seen):
            if p not in zombies:
                del self.zombie_seen[p]
        for p in zombies:
            self.zombie_seen[p] = self.zombie_seen.get(p, 0) + 1
            if self.zombie_seen[p] >= 3:
                self.persistent_zombies.add(p)
        self.max_zombies = max(self.max_zombies, len(zombies))
        st = self.stats
        row = {
            "t": round(now() - self.t0, 2),
            "phase": self.phase,
            "fds": len(self.fds()),
            "threads": self.threads_n(),
            "children": len(kids),
            "zombies": len(zombies),
            "rss_kb": self.rss_kb(),
            "plugin_copies": self.plugin_copies(),
            "tmp_files": len(os.listdir(self.d.path("tmp"))),
            "reloads": self.reloads,
            "reload_fail": len(self.reload_fail),
            "swaps": self.swaps,
            "ok": st.total(WELL_BEHAVED, "ok"),
            "failed": st.total(WELL_BEHAVED, "fail"),
            "abuse": st.total(ABUSE, "ok"),
            "flood_sent": self.flood_sent,
        }
        self.samples.append(row)
        return row

    # -- threads -------------------------------------------------------------

    def spawn(self, fn, *args):
        t = threading.Thread(target=self.guard, args=(fn,) + args,
                             daemon=True)
        self.threads.append(t)
        t.start()

    def guard(self, fn, *args):
        try:
            fn(*args)
        except Exception as e:      # a bug of the harness: reported
            self.errors.append("%s: %r" % (fn.__name__, e))
            self.stop_load.set()

    def well_behaved(self, kind, op, m, seed):
        rng = random.Random(seed)
        for _ in range(10 ** 8):
            if self.stop_load.is_set():
                return
            try:
                op(self.d, m, rng)
                self.stats.good(kind)
            except (OSError, AssertionError) as e:
                self.stats.bad(kind, "%s %s: %r" % (kind, m, e))
            time.sleep(rng.uniform(0.002, 0.02))

    def abuser(self, kind, seed):
        rng = random.Random(seed)
        for i in range(10 ** 8):
            if self.stop_load.is_set():
                return
            m = MODELS[i % len(MODELS)]
            try:
                if kind == "churn":
                    op_churn(self.d, m, rng)
                elif kind == "reset":
                    op_reset(self.d, m, rng)
                elif kind == "slow-read":
                    op_slow_read(self.d, m, rng, self.stop_load)
                elif kind == "slow-write":
                    op_slow_write(self.d, m, rng, self.stop_load)
                elif kind == "flood":
                    self.flood_sent += op_flood(self.d, m, rng)
                    self.stop_load.wait(0.2)
                self.stats.good(kind)
            except (OSError, AssertionError) as e:
                # A refused or failed connect is still worth a look.
                self.stats.bad(kind, "%s %s: %r" % (kind, m, e))
            time.sleep(rng.uniform(0.001, 0.01))

    def reloader(self):
        """SIGHUP every RELOAD_EVERY seconds, alternating A and B; ends on
        configuration A."""
        nxt = now() + RELOAD_EVERY
        for _ in range(10 ** 7):
            if self.stop_load.wait(max(0.0, nxt - now())):
                break
            nxt += RELOAD_EVERY
            self.reload_to(1 - self.variant)

    def reload_to(self, variant):
        t = now()
        try:
            lines = self.d.reload(config(variant))
            self.reload_times.append(now() - t)
        except AssertionError as e:
            self.reload_fail.append("reload %d: %s"
                                    % (self.reloads + 1, str(e)[:400]))
            self.stop_load.set()
            return
        self.reloads += 1
        st = [ln for ln in lines if ln.startswith("STATUS=")]
        if not st or "reloaded" not in st[-1] or "not serving" in st[-1]:
            self.reload_fail.append("reload %d: %r" % (self.reloads, st))
        else:
            self.variant = variant

    def swapper(self):
        for _ in range(10 ** 7):
            if self.stop_load.wait(PLUGIN_EVERY):
                return
            self.install_plugin()
            self.swaps += 1

    def sampler(self, writer, f):
        nxt = now()
        for _ in range(10 ** 8):
            if self.stop_all.wait(max(0.0, nxt - now())):
                return
            nxt += SAMPLE_EVERY
            if not self.d.running():
                self.errors.append("the daemon exited (status %s)"
                                   % self.d.proc.poll())
                self.stop_load.set()
                return
            try:
                writer.writerow(self.sample())
                f.flush()
            except OSError as e:
                self.errors.append("sample: %r" % (e,))

    # -- the run -------------------------------------------------------------

    def run(self):
        self.t0 = now()
        self.start()
        # Baseline: idle, on configuration A, before any client.
        time.sleep(1.0)
        self.base_fds = self.fds()
        self.base_threads = self.threads_n()
        os.makedirs(os.path.dirname(os.path.abspath(self.csv_path)),
                    exist_ok=True)
        f = open(self.csv_path, "w", newline="")
        writer = csv.DictWriter(f, fieldnames=list(self.sample().keys()))
        writer.writeheader()
        writer.writerow(self.samples[-1])
        sampler = threading.Thread(target=self.sampler, args=(writer, f),
                                   daemon=True)
        sampler.start()

        print("soak: pid %d, %d listeners, %gs of load; baseline %d fds, "
              "%d threads; samples in %s"
              % (self.pid, len(self.d.listeners), self.seconds,
                 len(self.base_fds), self.base_threads, self.csv_path),
              flush=True)
        self.phase = "load"
        self.load_start = now()
        seed = int(os.environ.get("SOAK_SEED", "1"))
        for i, m in enumerate(MODELS):
            for kind, op in (("echo", op_echo), ("dgram", op_dgram),
                             ("exec", op_exec), ("lower", op_lower)):
                self.spawn(self.well_behaved, kind, op, m,
                           seed * 1000 + i * 10 + len(kind))
        for j, kind in enumerate(("churn", "reset", "slow-read",
                                  "slow-read", "slow-write", "slow-write",
                                  "flood")):
            self.spawn(self.abuser, kind, seed * 1000 + 500 + j)
        self.spawn(self.reloader)
        self.spawn(self.swapper)

        end = self.load_start + self.seconds
        last_report = now()
        for _ in range(10 ** 7):
            if self.stop_load.wait(min(1.0, max(0.0, end - now()))):
                break
            if now() >= end:
                break
            if now() - last_report >= 30:
                last_report = now()
                r = self.samples[-1]
                print("soak: %4.0fs  ok %d  failed %d  reloads %d  fds %d  "
                      "threads %d  children %d  rss %d KiB"
                      % (now() - self.load_start, r["ok"], r["failed"],
                         r["reloads"], r["fds"], r["threads"],
                         r["children"], r["rss_kb"]), flush=True)
        self.load_end = now()
        self.stop_load.set()
        self.phase = "settle"
        join_dl = Deadline(60)
        for t in self.threads:
            t.join(join_dl.remaining())
        stuck = [t for t in self.threads if t.is_alive()]
        if stuck:
            self.errors.append("%d client threads still running after 60s"
                               % len(stuck))
        if self.variant != 0 and self.d.running():
            self.reload_to(0)

        # Settle: poll until back at the baseline, or the deadline.
        dl = Deadline(SETTLE_TIMEOUT)
        for _ in range(10 ** 6):
            if not self.d.running():
                break
            if len(self.fds()) <= len(self.base_fds) and \
                    self.threads_n() <= self.base_threads and \
                    not children_of(self.pid):
                break
            if dl.expired():
                break
            time.sleep(min(0.5, dl.remaining()))
        self.settle_time = now() - self.load_end
        # Let one more sample land, then stop sampling.
        time.sleep(SAMPLE_EVERY * 1.1)
        self.phase = "end"
        self.final = self.sample() if self.d.running() else self.samples[-1]
        self.final_fds = self.fds() if self.d.running() else {}
        self.stop_all.set()
        sampler.join(5)
        writer.writerow(self.final)
        f.close()

        # Stop: exit status and sanitizer reports.
        self.exit_status = None
        self.san = None
        try:
            if self.d.running():
                self.exit_status = self.d.stop()
            else:
                self.exit_status = self.d.proc.poll()
        except AssertionError as e:
            self.errors.append(str(e)[:400])
        try:
            self.d.close()
        except AssertionError as e:
            self.san = str(e)
        log_copy = os.path.join(os.path.dirname(
            os.path.abspath(self.csv_path)), "soak-daemon.log")
        with open(log_copy, "w") as lf:
            lf.write(getattr(self.d, "final_log", ""))
        self.log_copy = log_copy
        return self.verdict()

    # -- the verdict ---------------------------------------------------------

    def rss_growth(self):
        """(growth %, rss early, rss late) over the last half of the load
        phase: the medians of its first and last quarters, so that
        threads coming and going (their stacks) do not count as growth."""
        load = [r for r in self.samples if r["phase"] == "load"]
        if len(load) < 20:
            return None
        half = load[len(load) // 2:]
        k = max(5, len(half) // 4)

        def med(rows):
            v = sorted(r["rss_kb"] for r in rows)
            return v[len(v) // 2]
        a, b = med(half[:k]), med(half[-k:])
        return 100.0 * (b - a) / a, a, b

    def verdict(self):
        rows = []

        def check(name, value, ok):
            rows.append((name, value, "PASS" if ok else "FAIL"))

        st = self.stats
        nok = st.total(WELL_BEHAVED, "ok")
        nfail = st.total(WELL_BEHAVED, "fail")
        check("well-behaved requests failed",
              "%d of %d" % (nfail, nok + nfail), nfail == 0 and nok > 0)
        check("reloads failed (of %d)" % self.reloads,
              str(len(self.reload_fail)), not self.reload_fail)
        fin = self.final
        check("fds: end / baseline", "%d / %d" % (fin["fds"],
                                                   len(self.base_fds)),
              fin["fds"] <= len(self.base_fds))
        check("threads: end / baseline", "%d / %d" % (fin["threads"],
                                                       self.base_threads),
              fin["threads"] <= self.base_threads)
        check("children at the end", str(fin["children"]),
              fin["children"] == 0)
        check("zombies outliving 2 samples",
              "%d (at most %d in a sample)" % (len(self.persistent_zombies),
                                                self.max_zombies),
              not self.persistent_zombies and fin["zombies"] == 0)
        g = self.rss_growth()
        if g is None:
            check("RSS growth, last half of load", "too few samples", False)
        else:
            check("RSS growth, last half of load",
                  "%+.1f%% (%d -> %d KiB)" % g, g[0] < RSS_LIMIT)
        check("plugin copies loaded at the end", str(fin["plugin_copies"]),
              fin["plugin_copies"] <= 1)
        check("exit status, sanitizer reports",
              "%s, %s" % (self.exit_status,
                          "a report" if self.san else "none"),
              self.exit_status == 0 and self.san is None)
        check("harness errors", str(len(self.errors)), not self.errors)

        load_s = self.load_end - self.load_start
        print()
        print("soak: %.0fs of load, %d reloads, %d plugin replacements, "
              "settled in %.1fs" % (load_s, self.reloads, self.swaps,
                                    self.settle_time))
        print("%-12s %10s %8s" % ("client", "ok", "failed"))
        for k in WELL_BEHAVED + ABUSE:
            print("%-12s %10d %8d" % (k, st.ok.get(k, 0), st.fail.get(k, 0)))
        print("%-12s %10d" % ("datagrams", self.flood_sent))
        if self.reload_times:
            rt = sorted(self.reload_times)
            print("reloads: SIGHUP to READY=1 median %.0f ms, max %.0f ms"
                  % (1000 * rt[len(rt) // 2], 1000 * rt[-1]))
        rs = [r["rss_kb"] for r in self.samples]
        print("peaks: fds %d, threads %d, children %d, rss %d KiB; "
              "log %s" % (max(r["fds"] for r in self.samples),
                          max(r["threads"] for r in self.samples),
                          max(r["children"] for r in self.samples),
                          max(rs), self.log_copy))
        print()
        w = max(len(r[0]) for r in rows)
        for name, value, v in rows:
            print("%-*s  %-32s %s" % (w, name, value, v))
        failed = [r for r in rows if r[2] == "FAIL"]
        if failed:
            print()
        for k, lst in sorted(st.first.items()):
            if k in WELL_BEHAVED:
                for t, msg in lst:
                    print("first failures: %6.1fs %s"
                          % (t - self.t0, msg[:200]))
        for msg in self.reload_fail[:5]:
            print("reload failure: %s" % msg)
        if fin["fds"] > len(self.base_fds):
            extra = sorted(set(self.final_fds.items()) -
                           set(self.base_fds.items()))
            for fd, target in extra[:20]:
                print("fd %d -> %s (not there at the baseline)"
                      % (fd, target))
        for e in self.errors:
            print("harness: %s" % e)
        if self.san:
            print(self.san[-3000:])
        print("\nsoak: %s" % ("FAILED" if failed else "passed"))
        return 1 if failed else 0


def main():
    try:
        seconds = float(os.environ.get("SOAK_SECONDS") or 600)
    except ValueError:
        sys.stderr.write("soak: SOAK_SECONDS must be a number\n")
        return 2
    if seconds < 20:
        sys.stderr.write("soak: SOAK_SECONDS must be at least 20\n")
        return 2
    csv_path = os.environ.get("SOAK_CSV") or os.path.join(ROOT, "build",
                                                           "soak.csv")
    os.chdir(ROOT)
    s = Soak(seconds, csv_path)
    try:
        return s.run()
    except ssdtest.DaemonExited as e:
        sys.stderr.write("soak: the daemon did not start: %s\n" % e)
        return 2
    finally:
        s.stop_load.set()
        s.stop_all.set()
        if s.d is not None:
            try:
                s.d.close(raise_on_sanitizer=False)
            except Exception:
                pass


if __name__ == "__main__":
    sys.exit(main())
